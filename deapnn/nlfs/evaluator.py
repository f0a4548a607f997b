"""Surrogate fitness for NLFS (Morgan & Hougen 2024 §3.5).

A candidate loss trains a small network for a fixed step budget **with regularisation and
augmentation** (weight decay, Gaussian input noise, the dataset's crop augmentation when it has
one): the paper found that losses selected without regularisation transferred poorly to large
regularised models.  Fitness = best validation accuracy seen during the budget.  Early abort
(fitness 0, reason recorded): a non-finite loss, or a short pre-screen whose validation accuracy
stays below a threshold.

Each evaluation seeds its own RNGs from ``derive_seed(run_seed, genome expression)``, so the result
does not depend on which worker runs it or in which order; :class:`SurrogateEvaluator` is a
picklable callable (it holds only a plain config) usable with SCOOP's ``futures.map``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace
from functools import lru_cache

import torch

from ..evaluation import Evaluation
from ..losses.graph import LossGraph
from ..runtime import derive_seed, get_device
from ..training import evaluate
from .config import SurrogateConfig


@lru_cache(maxsize=4)
def _dataset(name: str, seed: int, root):
    from ..data import load_dataset
    return load_dataset(name, root=root, seed=seed)


def train_with_loss(loss_fn, cfg: SurrogateConfig, seed: int, test: bool = False) -> dict:
    """Train ``cfg.model`` on ``cfg.dataset`` with ``loss_fn`` for ``cfg.steps`` SGD steps.

    Returns ``{"fitness", "val_acc", "steps", "reason"[, "test_acc"]}``: ``fitness`` is the best
    validation accuracy, 0 on divergence or a failed pre-screen; ``test_acc`` (when ``test``) is
    the test accuracy of the best-validation weights.  Never raises for a bad loss.
    """
    from ..data import augment_batch
    from ..models import build_model
    cfg.validate()
    ds = _dataset(cfg.dataset, cfg.seed, cfg.root)
    if ds.task != "classification":
        raise ValueError(f"NLFS needs a classification dataset, {cfg.dataset} is {ds.task}")
    device = get_device()
    torch.manual_seed(seed)
    model = build_model(cfg.model, ds.input_shape, ds.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = ds.train.x.to(device), ds.train.y.to(device)
    vx, vy = ds.val.x.to(device), ds.val.y.to(device)
    augment = ds.augment if cfg.augment == "auto" else cfg.augment
    if augment and x.dim() != 4:
        augment = None
    threshold = cfg.prescreen_threshold if cfg.prescreen_threshold is not None \
        else 1.5 / ds.num_classes
    best, best_state, reason, done = 0.0, None, None, 0
    try:
        for step in range(cfg.steps):
            for g in opt.param_groups:     # cosine decay over the budget
                g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            idx = torch.randint(0, len(x), (cfg.batch_size,), generator=gen).to(device)
            xb, yb = x[idx], y[idx]
            if augment:
                xb = augment_batch(xb, augment, gen, padding=max(1, xb.shape[-1] // 8))
            if cfg.noise:
                xb = xb + cfg.noise * torch.randn(xb.shape, generator=gen).to(device)
            model.train()
            loss = loss_fn(model(xb), yb)
            if not torch.isfinite(loss):
                reason = f"non-finite loss at step {step}"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step + 1
            if done % cfg.eval_every == 0 or done == cfg.steps or done == cfg.prescreen_steps:
                acc = evaluate(model, vx, vy)
                if not math.isfinite(acc):
                    reason = f"non-finite validation accuracy at step {done}"
                    break
                if acc > best:
                    best = acc
                    if test:
                        best_state = copy.deepcopy(model.state_dict())
                if done == cfg.prescreen_steps and acc < threshold:
                    reason = f"pre-screen: val acc {acc:.3f} < {threshold:.3f} after {done} steps"
                    break
    except (RuntimeError, ValueError, FloatingPointError) as exc:   # OOM, bad shapes, ...
        from ..failsafe import describe
        reason = error = describe(exc)          # frees the CUDA cache after an OOM
    else:
        error = None
    out = {"fitness": 0.0 if reason else best, "val_acc": best, "steps": done, "reason": reason}
    if error:
        out["error"] = error
    if test:
        if best_state is not None:
            model.load_state_dict(best_state)
        out["test_acc"] = evaluate(model, ds.test.x.to(device), ds.test.y.to(device)) \
            if not reason or best_state is not None else 0.0
    return out


class SurrogateEvaluator:
    """``toolbox.evaluate`` for NLFS: ``evaluator(individual) -> Evaluation((fitness,), info,
    error)``.

    Picklable (holds a :class:`SurrogateConfig`); accepts a :class:`LossGraph` individual, its
    JSON text or dict.  ``info`` holds ``reason`` (None when fine; why the loss scored 0),
    ``val_acc``, ``steps`` and ``expression``; ``error`` is set only when the training itself
    failed (an exception, an out-of-memory, a timeout), and is then also the ``reason``.
    """

    def __init__(self, config: SurrogateConfig | None = None, **overrides):
        self.config = replace(config or SurrogateConfig(), **overrides).validate()

    def __call__(self, individual) -> Evaluation:
        g = individual if isinstance(individual, LossGraph) else LossGraph.from_json(individual)
        expr = g.to_expression()
        seed = derive_seed(self.config.seed, "nlfs", expr)
        try:
            res = train_with_loss(g.compile(), self.config, seed)
        except Exception as exc:          # failure is data (timeouts included): never stop the run
            from ..failsafe import describe
            reason = describe(exc)
            res = {"fitness": 0.0, "val_acc": 0.0, "steps": 0, "reason": reason, "error": reason}
        res["expression"] = expr
        fitness, error = res.pop("fitness"), res.pop("error", None)
        return Evaluation((fitness,), res, error)


def guarded_evaluator(config: SurrogateConfig, timeout: float | None = None):
    """:class:`SurrogateEvaluator` under :class:`deapnn.failsafe.Guarded`: a timeout
    (``--eval-timeout``, ``DEAPNN_EVAL_TIMEOUT``) or an escaping error gives fitness 0 and the
    error."""
    from ..failsafe import Guarded, default_timeout
    return Guarded(SurrogateEvaluator(config), worst=(0.0,),
                   timeout=timeout if timeout is not None else default_timeout())
