"""The EvoMAL rejection protocol (Raymond et al. 2023, TPAMI §4.6 "Loss function filters").

A candidate loss is used to optimise a set of predictions directly (no network): the predictions
are a leaf tensor trained with Adam under the loss; if the task metric (error rate for
classification, MSE for regression) of the optimised predictions is not strictly lower than that
of the starting predictions, the loss cannot be minimised towards the targets and the candidate
is rejected (fitness ∞). A non-finite loss or prediction also rejects.

Two protocols share that core (:func:`optimise_predictions`); ``EvoMALConfig.rejection``
chooses (``docs/faithfulness.md``, EvoMAL table):

* ``"reference"`` (default, the reference code's): **after** the local search, the *learned*
  loss (edge weights included) optimises the outputs of a freshly initialised, untrained base
  network for the first ``n`` training rows (in order) towards their real labels
  (:func:`reference_rejection`); Adam with the base learning rate [0.01] for 100 steps on
  MNIST-like tasks, 1,000 otherwise.
* ``"before"`` (the cheaper screen deapnn used first): **before** the local search, the
  unweighted tree optimises ``n`` seeded N(0, 1) predictions towards seeded random targets
  (:func:`rejection_protocol`), so a rejected tree costs no local search.
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


def optimise_predictions(loss_fn, pred0: torch.Tensor, target: torch.Tensor, task: str,
                         steps: int, lr: float) -> RejectionResult:
    """Optimise a copy of ``pred0`` under ``loss_fn(pred, target)`` with Adam for ``steps``
    steps; accept when the task metric of the predictions strictly improves. A non-finite loss
    or prediction rejects (with the reason). The loss's own parameters are not updated."""
    if steps < 1:
        raise ValueError(f"the rejection protocol needs steps >= 1, got {steps}")
    pred0 = pred0.detach()
    before = prediction_error(pred0, target, task)
    pred = pred0.clone().requires_grad_(True)
    opt = torch.optim.Adam([pred], lr=lr)
    for step in range(steps):
        loss = loss_fn(pred, target)
        if not torch.isfinite(loss):
            return RejectionResult(False, before, float("nan"),
                                   f"rejected: non-finite loss at rejection step {step}")
        opt.zero_grad(set_to_none=True)
        (grad,) = torch.autograd.grad(loss, [pred])    # the loss's weights get no gradient
        pred.grad = grad
        opt.step()
    with torch.no_grad():
        if not torch.isfinite(pred).all():
            return RejectionResult(False, before, float("nan"), "rejected: non-finite predictions")
        after = prediction_error(pred.detach(), target, task)
    if after < before:
        return RejectionResult(True, before, after)
    return RejectionResult(False, before, after,
                           f"rejected: task metric did not improve ({before:.4g} -> {after:.4g})")


def rejection_protocol(loss_fn, task: str, num_classes: int, n: int = 100, steps: int = 1000,
                       lr: float = 0.01, seed: int = 0) -> RejectionResult:
    """The ``"before"`` protocol: optimise ``n`` seeded N(0, 1) predictions towards seeded
    random targets (class labels, or N(0, 1) values for regression) under ``loss_fn``."""
    if n < 1 or steps < 1:
        raise ValueError(f"rejection protocol needs n >= 1 and steps >= 1, "
                         f"got n={n}, steps={steps}")
    gen = torch.Generator().manual_seed(seed)
    width = num_classes if task == "classification" else 1
    pred0 = torch.randn(n, width, generator=gen)
    if task == "classification":
        target = torch.randint(0, max(num_classes, 2), (n,), generator=gen)
    else:
        target = torch.randn(n, 1, generator=gen)
    return optimise_predictions(loss_fn, pred0, target, task, steps, lr)


def reference_rejection(loss_fn, model, x: torch.Tensor, y: torch.Tensor, task: str,
                        n: int = 100, steps: int = 1000, lr: float = 0.01) -> RejectionResult:
    """The ``"reference"`` protocol: the outputs of ``model`` (a freshly initialised base
    network, as the reference builds one, left in its training mode) for the first ``n`` rows
    of ``x`` are the starting predictions, the first ``n`` labels of ``y`` the targets."""
    if n < 1:
        raise ValueError(f"the rejection protocol needs n >= 1, got {n}")
    xb, yb = x[:n], y[:n]
    with torch.no_grad():
        pred0 = model(xb.to(next(model.parameters()).dtype))
    return optimise_predictions(loss_fn, pred0, yb, task, steps, lr)


__all__ = ["RejectionResult", "optimise_predictions", "rejection_protocol", "reference_rejection"]
