"""Training a network with a candidate loss for a fixed number of SGD steps: the one
training-with-loss function of the loss searches, and the lower-is-better task metrics they use.

Both searches score a candidate loss by what a network trained with it achieves:

* NLFS (Morgan & Hougen 2024 §3.5): a short *regularised* surrogate training — mini-batches drawn
  uniformly with replacement, Gaussian input noise and the dataset's crop augmentation, cosine
  learning rate over the budget, early abort on a failed pre-screen;
* EvoMAL (Raymond et al. 2023, TPAMI §4.7): the base network trained for ``fitness_steps`` SGD
  steps over successive shuffled passes of the training split, constant learning rate.

:func:`train_with_loss` runs either recipe (a :class:`LossTraining` says which) and returns the
learning curve; the caller turns it into a fitness. Metric convention: every function here that
scores a model or predictions returns a value where **lower is better** — :func:`task_error` (the
error rate for classification, the MSE for regression; non-finite outputs score ∞). Accuracy,
where a method reports it, is ``deapnn.training.accuracy`` (higher is better) and is named so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .config import Interval, Options
from .sgd import SGDSettings, make_optimizer, scheduled_lr, set_lr

WORST = math.inf


@dataclass
class LossTraining(SGDSettings):
    """One training recipe: ``steps`` SGD steps with the :class:`~deapnn.sgd.SGDSettings`
    (``schedule`` per step: ``"cosine"`` from ``lr`` to 0 over ``steps``, ``"constant"``, or
    ``"step"``: ``lr`` times ``gamma`` per step index in ``milestones`` already reached, as
    ``torch.optim.lr_scheduler.MultiStepLR`` stepped once per SGD step). ``sampling``:
    ``"uniform"`` (each step draws ``batch_size`` indices with replacement) or ``"passes"``
    (successive shuffled passes over the training split)."""
    steps: int = 500
    sampling: str = "passes"
    noise: float = 0.0
    augment: str | None = None
    eval_every: int = 0

    #: a bare recipe's SGD (the length and batch of EvoMAL's fitness training, Raymond et al.
    #: 2023, TPAMI §4.7); each loss search passes its own settings
    SGD_DEFAULTS = {"lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
                    "batch_size": 128, "schedule": "constant", "milestones": (), "gamma": 0.1}

    _parameter_constraints = {
        **SGDSettings._parameter_constraints,
        "steps": [Interval(int, 0, None)],
        "sampling": [Options(("uniform", "passes"))],
        "noise": [Interval(float, 0, None)],
        "augment": [None, str],
        "eval_every": [Interval(int, 0, None)],
    }

    def to_dict(self) -> dict:
        """The recipe as plain data; ``milestones`` and ``gamma`` only for the step schedule,
        so a stored recipe written before that schedule keeps its identity."""
        d = super().to_dict()
        if self.schedule != "step":
            d.pop("milestones"), d.pop("gamma")
        else:
            d["milestones"] = list(self.milestones)
        return d


@dataclass
class LossTrainingResult:
    """``curve``: ``(step, metric of each evaluated split…)`` at every evaluation; ``steps``:
    SGD steps done; ``reason``: why training stopped early (None: it ran to the end)."""
    curve: list = field(default_factory=list)
    steps: int = 0
    reason: str | None = None


def prediction_error(pred: torch.Tensor, target: torch.Tensor, task: str) -> float:
    """Error rate (classification; one output: logit > 0 means class 1) or MSE (regression) of
    raw predictions; lower is better."""
    if task == "classification":
        if pred.shape[1] == 1:
            wrong = (pred.reshape(-1) > 0).long() != target.reshape(-1).long()
        else:
            wrong = pred.argmax(1) != target
        return float(wrong.double().mean())
    return float(((pred - target.reshape(pred.shape)) ** 2).mean())


@torch.no_grad()
def task_error(model, x: torch.Tensor, y: torch.Tensor, task: str, fast=None) -> float:
    """The model's error rate (classification) or MSE (regression) on ``x``, evaluated in
    batches of 1,024 in eval mode (the model is left in train mode); non-finite outputs → ∞.
    ``fast`` with ``compile``: through the compiled float32 forward pass."""
    model.eval()
    forward = fast.infer_forward(model, float32=True) if fast is not None else model
    out = torch.cat([forward(xb) for xb in x.split(1024)])
    model.train()
    if not torch.isfinite(out).all():
        return WORST
    if task == "classification":
        pred = (out.reshape(-1) > 0).long() if out.shape[1] == 1 else out.argmax(1)
        return float((pred != y.reshape(pred.shape)).double().mean())
    value = float(F.mse_loss(out, y.reshape(out.shape).to(out.dtype)))
    return value if math.isfinite(value) else WORST


def shuffled_passes(n: int, batch_size: int, steps: int, gen: torch.Generator):
    """``steps`` index batches from successive shuffled passes over ``n`` examples."""
    done, order = 0, torch.empty(0, dtype=torch.long)
    while done < steps:
        if len(order) < min(batch_size, n):
            order = torch.randperm(n, generator=gen)
        yield order[:batch_size]
        order = order[batch_size:]
        done += 1


def uniform_batches(n: int, batch_size: int, steps: int, gen: torch.Generator):
    """``steps`` index batches, each drawn uniformly with replacement."""
    for _ in range(steps):
        yield torch.randint(0, n, (batch_size,), generator=gen)


def train_with_loss(model, loss_fn: Callable, data, recipe: LossTraining, *, batch_seed: int,
                    device, evaluate: Callable | None = None, stop: Callable | None = None,
                    eval_steps=(), eval_at_start: bool = False, fast=None) -> LossTrainingResult:
    """Train ``model`` (moved to ``device``) on ``data.train`` with ``loss_fn(outputs, targets)``
    for ``recipe.steps`` SGD steps.

    ``batch_seed`` seeds the one generator that draws batches, augmentation and noise (the
    global RNGs are used only by the model itself, e.g. dropout). With ``recipe.eval_every > 0``,
    after every ``eval_every`` steps and after the last one, and after each step listed in
    ``eval_steps``, ``evaluate(model, step)`` returns a tuple of metrics appended to the curve
    (with step 0 first when ``eval_at_start``); ``stop(step, metrics)`` may return a reason to stop
    there. Evaluation must draw no random numbers, so the trained network does not depend on
    where it is evaluated. A non-finite training loss stops training before that step's update
    (reason recorded); errors raised by the loss or the model propagate to the caller.
    ``fast``: a :class:`~deapnn.fastpath.FastPath` (compiled forward pass, shared by every
    candidate's network of one architecture; mixed precision; default eager float32). The
    candidate loss itself runs eagerly, on float32 outputs.
    """
    from .data import augment_batch
    from .fastpath import Stepper
    recipe.validate()
    model.to(device)
    x, y = data.train.x.to(device), data.train.y.to(device)
    opt = make_optimizer(model.parameters(), recipe)
    gen = torch.Generator().manual_seed(batch_seed)
    draw = uniform_batches if recipe.sampling == "uniform" else shuffled_passes
    every, extra_points = recipe.eval_every, set(eval_steps)
    result = LossTrainingResult()
    with Stepper(fast, model, opt, loss_fn, device) as stepper:
        if eval_at_start:
            result.curve.append((0, *evaluate(model, 0)))
        for step, idx in enumerate(draw(len(x), recipe.batch_size, recipe.steps, gen)):
            if recipe.schedule != "constant":
                set_lr(opt, scheduled_lr(recipe, step, recipe.steps))
            idx = idx.to(device)
            xb, yb = x[idx], y[idx]
            if recipe.augment:
                xb = augment_batch(xb, recipe.augment, gen, padding=max(1, xb.shape[-1] // 8))
            if recipe.noise:
                xb = xb + recipe.noise * torch.randn(xb.shape, generator=gen).to(device)
            model.train()
            loss = stepper.loss(xb, yb)
            if not torch.isfinite(loss):
                result.reason = f"non-finite loss at step {step}"
                break
            stepper.update(loss)
            result.steps = done = step + 1
            if (every and (done % every == 0 or done == recipe.steps)) or done in extra_points:
                metrics = tuple(evaluate(model, done))
                result.curve.append((done, *metrics))
                reason = stop(done, metrics) if stop is not None else None
                if reason:
                    result.reason = reason
                    break
    return result


__all__ = ["LossTraining", "LossTrainingResult", "train_with_loss", "task_error",
           "prediction_error", "shuffled_passes", "uniform_batches", "WORST"]
