"""Local search of the meta-loss edge weights by unrolled differentiation (EvoMAL §4.5).

Raymond et al. 2023 (TPAMI, arXiv 2209.08907) §4.5 / Algorithm 1 lines 9-16: for each meta-step
the base network is re-initialised, trained for K inner SGD steps with the meta-loss network, and
the task loss (CE or MSE) of the updated network on a validation batch is back-propagated through
the K steps into the edge weights, which Adam [lr 1e-3] updates. The reference uses the
unmaintained ``higher`` library; here the inner loop is functional: ``torch.func.functional_call``
runs the base network on a dict of parameters, ``torch.autograd.grad(create_graph=True)`` gives
differentiable inner gradients and SGD (momentum, Nesterov, weight decay, ``torch.optim.SGD``
semantics) is written out as tensor algebra, so the whole unroll stays on the autograd tape.

A non-finite inner loss, validation loss or meta-gradient raises :class:`UnrolledDivergence`; the
fitness evaluator turns it into a rejected candidate (fitness ∞ with its reason, §4.6).
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from deapnn.config import FLOAT32_MAX, ConfigError, Interval, Options
from deapnn.models.init import INITS, initialise
from deapnn.runtime import derive_seed
from deapnn.sgd import SGDSettings, scheduled_lr


class UnrolledDivergence(FloatingPointError):
    """A NaN/inf appeared during the unrolled local search (inner loss, task loss or
    meta-gradient)."""


@dataclass
class LocalSearchConfig(SGDSettings):
    """Local-search hyper-parameters (Raymond et al. 2023 §4.5 and the reference code's diabetes /
    MNIST configurations): ``meta_steps`` Adam steps at ``meta_lr`` on the edge weights, each
    unrolling ``inner_steps`` (K) SGD steps of the base network with the
    :class:`~deapnn.sgd.SGDSettings` (lr at inner step k: :func:`~deapnn.sgd.scheduled_lr` over
    the K steps; constant by default), validated on a batch of ``val_batch_size``; the base
    network re-drawn every meta-step with ``init`` (:func:`deapnn.models.init.initialise`:
    the reference's Xavier-uniform weights and zero biases by default).
    ``inner_lr`` is the former name of ``lr`` (deprecated, removed in 0.3.0)."""
    meta_steps: int = 250
    inner_steps: int = 1
    meta_lr: float = 1e-3
    val_batch_size: int = 128
    init: str = "xavier"
    inner_lr: InitVar[float | None] = None

    #: the reference code's base learner in its diabetes configuration (SGD lr 0.01, momentum
    #: 0.9, Nesterov, weight decay 5e-4, batch 128, constant learning rate)
    SGD_DEFAULTS = {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                    "batch_size": 128, "schedule": "constant", "milestones": (), "gamma": 0.1}

    _parameter_constraints = {
        **SGDSettings._parameter_constraints,
        "meta_steps": [Interval(int, 0, None)],
        "inner_steps": [Interval(int, 1, None)],
        "meta_lr": [Interval(float, 0, FLOAT32_MAX, closed="neither")],
        "val_batch_size": [Interval(int, 1, None)],
        "init": [Options(INITS)],
    }

    def __post_init__(self, inner_lr: float | None = None) -> None:
        if inner_lr is not None:
            from deapnn.deprecation import renamed
            renamed("LocalSearchConfig(inner_lr=)", "LocalSearchConfig(lr=)", stacklevel=4)
            if self.lr is not None and self.lr != inner_lr:
                raise ConfigError("lr and inner_lr (its former name) disagree; give lr only",
                                  "lr")
            self.lr = inner_lr
        super().__post_init__()


def task_loss_fn(task: str):
    """The meta-objective: cross-entropy (classification) or MSE (regression)."""
    if task == "classification":
        return F.cross_entropy
    if task == "regression":
        return lambda out, y: F.mse_loss(out, y.reshape(out.shape).to(out.dtype))
    raise ValueError(f"unknown task {task!r}; valid: classification, regression")


def sgd_step(params: dict, grads, buffers: dict | None, lr: float, momentum: float = 0.0,
             nesterov: bool = False, weight_decay: float = 0.0) -> tuple[dict, dict | None]:
    """One differentiable SGD step over a parameter dict (``torch.optim.SGD`` semantics,
    dampening 0).

    ``buffers`` are the momentum buffers (``None`` before the first step, where the buffer becomes
    the gradient, as in torch). Returns the new parameters and buffers; nothing is done in place.
    """
    new_params, new_bufs = {}, ({} if momentum else None)
    for (name, p), g in zip(params.items(), grads):
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf = g if buffers is None else momentum * buffers[name] + g
            new_bufs[name] = buf
            g = g + momentum * buf if nesterov else buf
        new_params[name] = p - lr * g
    return new_params, new_bufs


def unrolled_validation_loss(meta_loss: nn.Module, meta_params: dict, model: nn.Module,
                             params: dict, train_batches, val_batch, cfg: LocalSearchConfig,
                             task: str, model_buffers: dict | None = None) -> torch.Tensor:
    """Task loss on ``val_batch`` after ``len(train_batches)`` differentiable inner SGD steps.

    The result is differentiable w.r.t. ``meta_params`` (a dict for ``functional_call`` on
    ``meta_loss``). Raises :class:`UnrolledDivergence` on a non-finite inner loss.
    """
    state = (lambda p: (p, model_buffers)) if model_buffers else (lambda p: p)
    names = list(params)
    momentum_bufs = None
    own = dict(meta_loss.named_parameters())     # the module's own tensors: skip the swap
    direct = own.keys() == meta_params.keys() and all(own[k] is meta_params[k] for k in own)
    for step, (xb, yb) in enumerate(train_batches):
        out = functional_call(model, state(params), (xb,), tie_weights=False)
        inner = meta_loss(out, yb) if direct else functional_call(meta_loss, meta_params, (out, yb))
        if not torch.isfinite(inner):
            raise UnrolledDivergence(f"non-finite meta-loss {float(inner.detach())} "
                                     f"at inner step {step}")
        grads = torch.autograd.grad(inner, [params[n] for n in names], create_graph=True)
        lr = scheduled_lr(cfg, step, cfg.inner_steps)
        params, momentum_bufs = sgd_step(params, grads, momentum_bufs, lr, cfg.momentum,
                                         cfg.nesterov, cfg.weight_decay)
    xv, yv = val_batch
    return task_loss_fn(task)(functional_call(model, state(params), (xv,), tie_weights=False), yv)


def reinitialise(model: nn.Module, seed: int, init: str = "xavier") -> None:
    """Re-draw every parameter of ``model`` with ``init`` (:func:`deapnn.models.init.initialise`)
    from a seeded CPU RNG, leaving the global RNG untouched (a fresh base network per
    meta-step, EvoMAL Algorithm 1; the reference's ``reset()``)."""
    with torch.random.fork_rng(devices=[]):
        # the CPU generator only: torch.manual_seed would also queue lazy seeding of every
        # accelerator backend, which costs more than a small model's whole re-initialisation
        torch.default_generator.manual_seed(seed)
        initialise(model, init)


@dataclass
class LocalSearchResult:
    """Per-meta-step validation task losses and the learned edge weights."""
    losses: list = field(default_factory=list)
    weights: list = field(default_factory=list)


def _sample(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=gen)[:size] if size < n else torch.randperm(n, generator=gen)


def local_search(meta_loss: nn.Module, model: nn.Module, train: tuple, val: tuple, task: str,
                 cfg: LocalSearchConfig | None = None, seed: int = 0,
                 device: torch.device | None = None) -> LocalSearchResult:
    """Train ``meta_loss.weights`` in place by unrolled differentiation (EvoMAL §4.5).

    ``model`` is a template base network (kept on CPU for seeded re-initialisation; its parameters
    are re-drawn every meta-step); ``train``/``val`` are ``(x, y)`` tensor pairs. Batches and
    initialisations come from generators seeded with ``seed``. Raises ``ValueError`` for invalid
    ``cfg`` and :class:`UnrolledDivergence` on NaN/inf.
    """
    cfg = (cfg or LocalSearchConfig()).validate()
    device = device or torch.device("cpu")
    model = model.cpu()
    run_model = _device_copy(model, device)
    meta_loss.to(device)
    dtype = next(model.parameters()).dtype
    x_tr, y_tr = (t.to(device) for t in train)
    x_va, y_va = (t.to(device) for t in val)
    x_tr, x_va = x_tr.to(dtype), x_va.to(dtype)
    gen = torch.Generator().manual_seed(derive_seed(seed, "batches"))
    meta_params = dict(meta_loss.named_parameters())
    opt = torch.optim.Adam(meta_params.values(), lr=cfg.meta_lr)
    buffers = {k: v for k, v in run_model.named_buffers()}
    result = LocalSearchResult()
    for step in range(cfg.meta_steps):
        reinitialise(model, derive_seed(seed, "init", step), cfg.init)
        params = {k: v.detach().to(device).requires_grad_(True)
                  for k, v in model.named_parameters()}
        batches = []
        for _ in range(cfg.inner_steps):
            idx = _sample(len(x_tr), cfg.batch_size, gen).to(device)
            batches.append((x_tr[idx], y_tr[idx]))
        vidx = _sample(len(x_va), cfg.val_batch_size, gen).to(device)
        val_loss = unrolled_validation_loss(meta_loss, meta_params, run_model, params, batches,
                                            (x_va[vidx], y_va[vidx]), cfg, task,
                                            {k: b.clone() for k, b in buffers.items()})
        grads = torch.autograd.grad(val_loss, list(meta_params.values()))
        if not torch.isfinite(val_loss) or not all(torch.isfinite(g).all() for g in grads):
            raise UnrolledDivergence(f"non-finite task loss or meta-gradient at meta-step {step}")
        for p, g in zip(meta_params.values(), grads):
            p.grad = g
        opt.step()
        opt.zero_grad(set_to_none=True)
        result.losses.append(float(val_loss.detach()))
    result.weights = [float(w) for w in meta_loss.weights.detach().cpu()]
    return result


def _device_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """The module that runs the functional calls (its own parameters are never used)."""
    if device.type == "cpu":
        return model
    import copy
    return copy.deepcopy(model).to(device)
