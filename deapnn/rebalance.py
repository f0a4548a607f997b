"""Class-rebalancing SGD baselines for a long-tailed training split (issue 25): the two answers
to class imbalance that a GLS comparison sets beside GLS (``--compare sgd_balanced,
sgd_resampled``; :mod:`deapnn.data.regimes` makes the long tail).

* **Re-weighting** (``sgd_balanced``): cross-entropy with every example weighted by the inverse
  frequency of its class, the classic baseline of Cui et al. 2019 ("Class-Balanced Loss Based
  on Effective Number of Samples", §1–3: weights ∝ 1/n_c). The weights are normalised as
  scikit-learn's ``class_weight="balanced"`` (King & Zeng 2001): ``w_c = n / (C · n_c)``, so
  the mean weight over the training examples is 1 and the loss keeps the scale of plain
  cross-entropy (the learning-rate grid means the same for both); the batch loss is the mean of
  ``w_{y_i} · CE_i`` (:class:`WeightedCrossEntropy`).
* **Re-sampling** (``sgd_resampled``): class-balanced sampling (Kang et al. 2020, "Decoupling
  Representation and Classifier for Long-Tailed Recognition", §3.1, q = 0; Shen et al. 2016):
  every epoch draws ``n`` examples with replacement, each class with probability 1/C and
  uniformly within its class (:func:`balanced_order`).

Both count the labels the run trains on (noisy ones under ``--label-noise``); a class without
a training example gets weight 0 and is never sampled.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def class_counts(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Examples per class of labels ``y`` (an int64 tensor of ``num_classes`` counts)."""
    return torch.bincount(y.detach().cpu().long(), minlength=num_classes)[:num_classes]


def class_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights ``w_c = n / (C · n_c)`` of labels ``y`` (0 for a class
    without examples, ``C`` counting the classes present): float32, mean weight over the
    examples 1.

    >>> class_weights(torch.tensor([0, 1, 1, 1, 1]), 2).tolist()
    [2.5, 0.625]
    """
    counts = class_counts(y, num_classes).double()
    present = int((counts > 0).sum())
    w = torch.where(counts > 0, len(y) / (max(present, 1) * counts.clamp(min=1)),
                    torch.zeros_like(counts))
    return w.float()


class WeightedCrossEntropy:
    """The loss of ``sgd_balanced``: ``mean_i(w[y_i] · CE(logits_i, y_i))`` with the class
    weights ``weights`` (:func:`class_weights`; moved to the logits' device once)."""

    def __init__(self, weights: torch.Tensor):
        self.weights = weights

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.weights.device != logits.device:
            self.weights = self.weights.to(logits.device)
        return (F.cross_entropy(logits, y, reduction="none") * self.weights[y]).mean()


def balanced_order(y: torch.Tensor, num_classes: int):
    """The epoch order of ``sgd_resampled``, a ``sampler(n, generator)`` for
    :func:`deapnn.training.train`: ``n`` indices drawn with replacement, example ``i`` with
    probability ``1 / (C · n_{y_i})`` (every class equally likely, uniform within a class),
    from the epoch's generator (a resumed run draws the same)."""
    y = y.detach().cpu().long()
    counts = class_counts(y, num_classes).double()
    present = int((counts > 0).sum())
    probs = (1.0 / (present * counts[y])).float()

    def sampler(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(probs, n, replacement=True, generator=generator)
    return sampler


__all__ = ["class_counts", "class_weights", "WeightedCrossEntropy", "balanced_order"]
