"""The one train / evaluate loop shared by every method (SGD baselines, GLS SubGD, loss searches).

A NaN/inf loss stops training and is reported as divergence (``TrainResult.reason``), never raised:
a failure is data, recorded where the run's results are.
"""
from __future__ import annotations

# a module import: `from collections.abc import Callable` would make Callable (a class without a
# docstring) a public name of this module (it has no __all__), which the API reference's docstring
# check flags (docs/conf.py)
import collections.abc
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import restoring
from .config import Interval
from .fastpath import restore_scaler, scaler_state
from .sgd import SGDSettings, make_optimizer, scheduled_lr, set_lr


@dataclass
class TrainConfig(SGDSettings):
    """The SGD loop of :func:`train`: ``epochs`` and the :class:`~deapnn.sgd.SGDSettings`
    (defaults: the SGD settings of Ding & Spector 2022, §4: lr 0.1, momentum 0.9, weight decay
    1e-4, batch 64, cosine schedule; milestones in epochs)."""
    epochs: int = 20

    _parameter_constraints = {**SGDSettings._parameter_constraints,
                              "epochs": [Interval(int, 0, None)]}


@dataclass
class TrainResult:
    """Outcome of :func:`train`: per-epoch mean losses and divergence status."""
    losses: list = field(default_factory=list)
    diverged: bool = False
    reason: str | None = None
    history: list = field(default_factory=list)   # per-epoch dicts from the eval callback


def default_loss(task: str) -> collections.abc.Callable:
    """Cross-entropy for classification, MSE for regression."""
    return F.cross_entropy if task == "classification" else F.mse_loss


def batch_order(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """One shuffled pass over ``n`` examples (CPU permutation: identical on every device)."""
    return torch.randperm(n, generator=generator)


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, loss_fn: collections.abc.Callable, batches, augment=None,
                generator: torch.Generator | None = None, fast=None) -> tuple[float, str | None]:
    """Run SGD over the given index batches; return (mean loss, divergence reason or None).

    ``x``/``y`` already live on the model's device; ``batches`` is an iterable of index tensors.
    Stops at the first non-finite loss (the model is then left as it was before that step).
    ``fast``: a :class:`~deapnn.fastpath.FastPath` (compiled step, mixed precision; default
    eager float32).
    """
    from .data import augment_batch   # local: data is a sibling concern, imported lazily
    from .fastpath import Stepper
    model.train()
    device = x.device
    total, count = torch.zeros((), device=device), 0
    with Stepper(fast, model, optimizer, loss_fn, device) as step:
        for idx in batches:
            idx = idx.to(device)
            xb, yb = x[idx], y[idx]
            if augment:
                xb = augment_batch(xb, augment, generator)
            loss = step.loss(xb, yb)
            if not torch.isfinite(loss):
                return ((float(total) / max(count, 1)),
                        f"non-finite loss {float(loss.detach())} at step {count}")
            step.update(loss)
            total += loss.detach()
            count += 1
    mean = float(total) / max(count, 1)
    if not math.isfinite(mean):
        return mean, "non-finite mean loss"
    return mean, None


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
          loss_fn: collections.abc.Callable | None = None, task: str = "classification",
          augment=None, device: torch.device | None = None, seed: int = 0,
          on_epoch: collections.abc.Callable[[int, float], dict | None] | None = None,
          progress=None, checkpoint: collections.abc.Callable[[dict], None] | None = None,
          resume_state: dict | None = None, momentum_reset: int | None = None,
          sampler: collections.abc.Callable | None = None, fast=None) -> TrainResult:
    """Train ``model`` in place with SGD for ``cfg.epochs`` epochs (the SGD baseline loop).

    Epoch ``e`` shuffles and augments with generators seeded by ``derive_seed(seed, "sgd", e)``,
    so a run resumed from ``checkpoint(state)`` (called after every epoch with model, optimizer
    and history) by passing that state as ``resume_state`` ends bit-identical on CPU.
    ``on_epoch(epoch, mean_loss)`` may return a dict (e.g. validation accuracy) kept in
    ``history``; ``progress`` is an optional ``tqdm``-like object updated once per epoch.

    ``momentum_reset=T`` (the ``sgd_reset`` control of a GLS comparison): the momentum buffers
    are zeroed every T optimizer steps (counted over the whole run), as a GLS child starts every
    generation from a fresh optimizer, and the learning rate is held constant within blocks that
    end at every such reset and at every epoch end, each block taking the schedule's value at
    its start (in fractional epochs), as GLS holds it constant within a generation (Ding &
    Spector 2022, §3). ``None`` (T = ∞) is plain SGD.

    ``sampler(n, generator)``: the example indices of an epoch, in batch order, drawn from the
    epoch's generator (default :func:`batch_order`, one shuffled pass; e.g. class-balanced
    sampling with replacement, :func:`deapnn.rebalance.balanced_order`).

    ``fast``: a :class:`~deapnn.fastpath.FastPath` (``--compile``, ``--precision``; default
    eager float32), refused before any step when the device cannot run it (fp16 on CPU).
    """
    cfg.validate()
    from .runtime import derive_seed, get_device
    device = device or get_device()
    model.to(device)
    loss_fn = loss_fn or default_loss(task)
    x, y = x.to(device), y.to(device)
    if fast is not None:
        fast.check(device)
    optimizer = make_optimizer(model.parameters(), cfg)
    result, start = TrainResult(), 0
    if resume_state is not None:
        with restoring():
            model.load_state_dict(resume_state["model"])
            optimizer.load_state_dict(resume_state["optimizer"])
            restore_scaler(optimizer, resume_state.get("grad_scaler"), device)
            result.losses = list(resume_state["losses"])
            result.history = list(resume_state["history"])
            start = int(resume_state["epoch"])
            if not 0 <= start <= cfg.epochs:
                raise ValueError(f"epoch {start} is outside 0..{cfg.epochs}")
        if progress is not None:
            progress.update(start)
    for epoch in range(start, cfg.epochs):
        e_seed = derive_seed(seed, "sgd", epoch)
        torch.manual_seed(e_seed)
        set_lr(optimizer, scheduled_lr(cfg, epoch, cfg.epochs))
        order = (sampler or batch_order)(len(x), torch.Generator().manual_seed(e_seed))
        aug_gen = torch.Generator(device=device).manual_seed(e_seed + 1) if augment else None
        if momentum_reset is None:
            loss, reason = train_steps(model, optimizer, x, y, loss_fn,
                                       order.split(cfg.batch_size), augment, aug_gen, fast)
        else:
            loss, reason = _reset_blocks(model, optimizer, x, y, loss_fn,
                                         order.split(cfg.batch_size), augment, aug_gen, cfg,
                                         epoch, momentum_reset, fast)
        result.losses.append(loss)
        if reason:
            result.diverged, result.reason = True, f"epoch {epoch}: {reason}"
            break
        if on_epoch is not None:
            record = on_epoch(epoch, loss)
            if record:
                result.history.append(record)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}")
        if checkpoint is not None:
            checkpoint({"epoch": epoch + 1, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "grad_scaler": scaler_state(optimizer), "losses": list(result.losses),
                        "history": [dict(r) for r in result.history]})
    return result


def zero_momentum(optimizer: torch.optim.Optimizer) -> None:
    """Zero every momentum buffer of ``optimizer`` in place (with dampening 0, SGD's next step
    is then the one a fresh optimizer takes)."""
    for state in optimizer.state.values():
        buf = state.get("momentum_buffer")
        if buf is not None:
            buf.zero_()


def _reset_blocks(model, optimizer, x, y, loss_fn, batches, augment, generator, cfg, epoch,
                  period: int, fast=None) -> tuple[float, str | None]:
    """One epoch of :func:`train` with ``momentum_reset=period``: the epoch's batches split at
    every multiple of ``period`` steps (global count), momentum zeroed there, lr set per block."""
    if int(period) < 1:
        raise ValueError(f"momentum_reset must be >= 1 steps, got {period}")
    n = len(batches)
    first = epoch * n
    total = weighted = 0.0
    start = 0
    while start < n:
        step = first + start
        if step and step % period == 0:
            zero_momentum(optimizer)
        end = min(n, start + period - step % period)
        set_lr(optimizer, scheduled_lr(cfg, epoch + start / n, cfg.epochs))
        loss, reason = train_steps(model, optimizer, x, y, loss_fn, batches[start:end], augment,
                                   generator, fast)
        if reason:
            return loss, reason
        if end - start == n:
            return loss, None          # one block: exactly plain SGD's epoch
        weighted += loss * (end - start)
        total += end - start
        start = end
    return weighted / max(total, 1), None


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024,
            device: torch.device | None = None, fast=None) -> torch.Tensor:
    """Model outputs for ``x`` in eval mode, computed in batches, returned on CPU (float32).
    ``fast`` with ``compile``: the compiled float32 forward pass (reported metrics are never
    computed in lower precision)."""
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    forward = fast.infer_forward(model, float32=True) if fast is not None else model
    outs = [forward(xb.to(device)).float().cpu() for xb in x.split(batch_size)]
    model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
             device: torch.device | None = None, fast=None) -> float:
    """Top-1 accuracy of a classifier (higher is better)."""
    return float((predict(model, x, batch_size, device, fast).argmax(1) == y.cpu())
                 .float().mean())


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str = "classification",
             batch_size: int = 1024, device: torch.device | None = None, fast=None) -> float:
    """The metric a run reports for its task, named in its outputs: ``accuracy`` (higher is
    better) for classification, ``mse`` (lower is better) for regression; NaN outputs give NaN
    MSE. Fitness functions that need one direction for both tasks use
    :func:`deapnn.loss_training.task_error` (lower is better) instead. ``fast``: see
    :func:`predict`."""
    if task == "classification":
        return accuracy(model, x, y, batch_size, device, fast)
    return float(F.mse_loss(predict(model, x, batch_size, device, fast), y.cpu().float()))
