"""A toy dataset shared by the EvoMAL evaluator tests."""
import torch

from deapnn.data.base import Dataset, Split


def toy_data(task="regression", n=120, seed=0):
    """60 / 30 / 30 rows of 5 features: a noisy linear target (regression) or the argmax of
    three noisy features (3 classes)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    if task == "regression":
        y, c = x @ torch.randn(5, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g), 1
    else:
        y, c = (x[:, :3] + 0.3 * torch.randn(n, 3, generator=g)).argmax(1), 3
    parts = [Split(x[i:j], y[i:j]) for i, j in ((0, 60), (60, 90), (90, 120))]
    return Dataset("toy", task, (5,), c, *parts)
