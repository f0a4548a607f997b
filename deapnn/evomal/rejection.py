"""The EvoMAL rejection protocol (Raymond et al. 2023, TPAMI §4.6 "Loss function filters").

A candidate loss is used to optimise ``n`` free predictions directly (no network): the predictions
are a leaf tensor trained with Adam under the loss for ``steps`` steps. If the task metric (error
rate for classification, MSE for regression) of the predictions does not improve, the loss cannot
be minimised towards the targets and the candidate is rejected (fitness ∞) before any expensive
training. The reference code runs SGD on network outputs; here Adam [lr 0.01] optimises 100
seeded random predictions towards seeded random targets for 1,000 steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from deapnn.loss_training import prediction_error


@dataclass
class RejectionResult:
    accepted: bool
    before: float
    after: float
    reason: str | None = None


def rejection_protocol(loss_fn, task: str, num_classes: int, n: int = 100, steps: int = 1000,
                       lr: float = 0.01, seed: int = 0) -> RejectionResult:
    """Optimise ``n`` free predictions under ``loss_fn(pred, target)`` with Adam; accept when the
    task metric improves. A non-finite loss or prediction rejects (with the reason)."""
    if n < 1 or steps < 1:
        raise ValueError(f"rejection protocol needs n >= 1 and steps >= 1, got n={n}, steps={steps}")
    gen = torch.Generator().manual_seed(seed)
    width = num_classes if task == "classification" else 1
    pred0 = torch.randn(n, width, generator=gen)
    if task == "classification":
        target = torch.randint(0, max(num_classes, 2), (n,), generator=gen)
    else:
        target = torch.randn(n, 1, generator=gen)
    before = prediction_error(pred0, target, task)
    pred = pred0.clone().requires_grad_(True)
    opt = torch.optim.Adam([pred], lr=lr)
    for step in range(steps):
        loss = loss_fn(pred, target)
        if not torch.isfinite(loss):
            return RejectionResult(False, before, float("nan"),
                                   f"rejected: non-finite loss at rejection step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        if not torch.isfinite(pred).all():
            return RejectionResult(False, before, float("nan"), "rejected: non-finite predictions")
        after = prediction_error(pred.detach(), target, task)
    if after < before:
        return RejectionResult(True, before, after)
    return RejectionResult(False, before, after,
                           f"rejected: task metric did not improve ({before:.4g} -> {after:.4g})")
