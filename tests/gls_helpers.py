"""Test doubles for GLS: networks whose top-1 correctness on each case is fixed by a table."""
import torch
from torch import nn


class TableModel(nn.Module):
    """Input rows carry a case id in column 0; the prediction is right iff ``correct[id]``.

    Records the ids it was evaluated on, in order, in ``seen``.
    """

    def __init__(self, correct, labels, num_classes):
        super().__init__()
        self.register_buffer("correct", torch.as_tensor(correct, dtype=torch.bool))
        self.register_buffer("labels", torch.as_tensor(labels))
        self.num_classes = num_classes
        self.dummy = nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x):
        ids = x[:, 0].long()
        self.seen.extend(ids.tolist())
        y = self.labels[ids]
        pred = torch.where(self.correct[ids], y, (y + 1) % self.num_classes)
        return nn.functional.one_hot(pred, self.num_classes).float() + 0 * self.dummy


def table_population(table, num_classes=3, seed=0):
    """Models for a (p, n) pass table (True = passes) and the case tensors (x holds ids)."""
    table = torch.as_tensor(table, dtype=torch.bool)
    n = table.shape[1]
    labels = torch.randint(num_classes, (n,), generator=torch.Generator().manual_seed(seed))
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    return [TableModel(row, labels, num_classes) for row in table], x, labels
