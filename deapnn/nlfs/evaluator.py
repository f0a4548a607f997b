"""Surrogate fitness for NLFS (Morgan & Hougen 2024 §3.5).

A candidate loss trains a small network for a fixed step budget **with regularisation and
augmentation** (weight decay, Gaussian input noise, the dataset's crop augmentation when it has
one): the paper found that losses selected without regularisation transferred poorly to large
regularised models.  Fitness = best validation accuracy seen during the budget.  Early abort
(fitness 0, reason recorded): a short pre-screen whose validation accuracy stays below a
threshold, or a loss that turns non-finite before passing it.  A training that turns non-finite
*after* passing the pre-screen stops there and scores its best validation accuracy so far, marked
``diverged`` (Morgan & Hougen's implementation: ``TerminateOnNaN``, then ``nanmax`` of the
validation accuracies; ``SurrogateConfig.diverged_fitness="zero"`` scores it 0 as a failure,
deapnn's behaviour before).

Each evaluation seeds its own RNGs from ``derive_seed(run_seed, genome expression)``, so the result
does not depend on which worker runs it or in which order; :class:`SurrogateEvaluator` is a
picklable callable (it holds only a plain config) usable with SCOOP's ``futures.map``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch

from ..class_metrics import SCALAR_KEYS, class_results
from ..data import cached_dataset
from ..evaluation import Evaluation
from ..loss_training import LossTraining, train_with_loss
from ..losses.graph import LossGraph
from ..runtime import derive_seed, get_device
from ..training import accuracy
from .config import SurrogateConfig


def surrogate_recipe(cfg: SurrogateConfig, augment: str | None) -> LossTraining:
    """The surrogate training of §3.5: SGD with momentum and weight decay, mini-batches drawn
    uniformly with replacement, Gaussian input noise, the dataset's crop augmentation, the
    configuration's SGD settings (by default a cosine learning rate over the budget)."""
    return LossTraining(**cfg.sgd().to_dict(), steps=cfg.steps, sampling="uniform",
                        noise=cfg.noise, augment=augment, eval_every=cfg.eval_every)


def surrogate_training(loss_fn, cfg: SurrogateConfig, seed: int, test: bool = False) -> dict:
    """Train ``cfg.model`` on ``cfg.dataset`` with ``loss_fn`` for ``cfg.steps`` SGD steps
    (:func:`surrogate_recipe`, through :func:`deapnn.loss_training.train_with_loss`).

    Returns ``{"fitness", "val_acc", "steps", "reason"[, "diverged"][, "error"][,
    "test_acc"]}``: ``fitness`` is the best validation accuracy, 0 on a failed pre-screen, a
    divergence before the pre-screen passed, or an error (``reason`` says why). A divergence
    (a non-finite loss or validation accuracy) after the pre-screen passed — with no pre-screen,
    after a first evaluation — stops the training: with ``cfg.diverged_fitness="best"`` it keeps
    the best validation accuracy so far, ``reason`` None and ``diverged`` saying where; with
    ``"zero"`` it scores 0 with the ``reason``;
    ``test_acc`` (when ``test``) is the test accuracy of the best-validation weights: 0 when the
    training stopped (divergence) before any, NaN when it failed (``error``) before any — no
    measurement, a failed job of the final comparison (:mod:`deapnn.results`); with it the
    per-class test metrics of the same weights (issue 25: ``balanced_acc``,
    ``worst_class_acc``, ``rare3_acc``, :func:`deapnn.class_metrics.class_results`; 0 or NaN
    as ``test_acc`` when there are no weights), which the tuned comparison reports per loss.
    Never raises for a bad loss: a training error (out-of-memory, bad shapes, ...) is
    ``error``.
    """
    from ..models import build_model
    cfg.validate()
    ds = cached_dataset(cfg.dataset, cfg.seed, cfg.root, **cfg.regime())
    if ds.task != "classification":
        raise ValueError(f"NLFS needs a classification dataset, {cfg.dataset} is {ds.task}")
    device = get_device()
    fast = cfg.fast_path()
    fast.check(device)
    torch.manual_seed(seed)
    model = build_model(cfg.model, ds.input_shape, ds.num_classes).to(device)
    vx, vy = ds.val.x.to(device), ds.val.y.to(device)
    augment = ds.augment if cfg.augment == "auto" else cfg.augment
    if augment and ds.train.x.dim() != 4:
        augment = None
    threshold = cfg.prescreen_threshold if cfg.prescreen_threshold is not None \
        else 1.5 / ds.num_classes
    best = {"acc": 0.0, "state": None}
    # ``passed``: an evaluation at or after the pre-screen went through (a later divergence
    # keeps the best accuracy); ``prescreen``: the stop was the pre-screen's
    seen = {"passed": False, "prescreen": False}

    def stop(step, metrics):
        acc = metrics[0]
        if not math.isfinite(acc):
            return f"non-finite validation accuracy at step {step}"
        if acc > best["acc"]:
            best["acc"] = acc
            if test:
                best["state"] = copy.deepcopy(model.state_dict())
        if step == cfg.prescreen_steps and acc < threshold:
            seen["prescreen"] = True
            return f"pre-screen: val acc {acc:.3f} < {threshold:.3f} after {step} steps"
        seen["passed"] = seen["passed"] or step >= cfg.prescreen_steps
        return None

    error = None
    try:
        res = train_with_loss(model, loss_fn, ds, surrogate_recipe(cfg, augment),
                              batch_seed=seed + 1, device=device,
                              evaluate=lambda m, step: (accuracy(m, vx, vy, fast=fast),),
                              stop=stop, fast=fast,
                              eval_steps=(cfg.prescreen_steps,) if cfg.prescreen_steps else ())
        reason, done = res.reason, res.steps
    except (RuntimeError, ValueError, FloatingPointError) as exc:   # OOM, bad shapes, ...
        from ..failsafe import describe
        reason = error = describe(exc)          # frees the CUDA cache after an OOM
        done = 0
    # the only other early stop of train_with_loss is a non-finite training loss
    diverged = reason if reason and not error and not seen["prescreen"] else None
    scored = bool(diverged) and seen["passed"] and best["acc"] > 0 \
        and cfg.diverged_fitness == "best"
    out = {"fitness": best["acc"] if scored or not reason else 0.0, "val_acc": best["acc"],
           "steps": done, "reason": None if scored else reason}
    if scored:
        out["diverged"] = diverged
    if error:
        out["error"] = error
    if test:
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        measured = not reason or best["state"] is not None
        out["test_acc"] = accuracy(model, ds.test.x.to(device), ds.test.y.to(device),
                                   fast=fast) \
            if measured else float("nan") if error else 0.0
        # issue 25: the per-class test metrics of the same (best-validation) weights, and the
        # test accuracy's value (0 or NaN) when there are none
        out.update({k: v for k, v in class_results(ds, model).items() if k in SCALAR_KEYS}
                   if measured else dict.fromkeys(SCALAR_KEYS, out["test_acc"]))
    return out


class SurrogateEvaluator:
    """``toolbox.evaluate`` for NLFS: ``evaluator(individual) -> Evaluation((fitness,), info,
    error)``.

    Picklable (holds a :class:`SurrogateConfig`); accepts a :class:`LossGraph` individual, its
    JSON text or dict.  ``info`` holds ``reason`` (None when fine; why the loss scored 0),
    ``val_acc``, ``steps``, ``expression`` and, when the training turned non-finite after the
    pre-screen and kept its best accuracy, ``diverged``; ``error`` is set only when the training
    itself failed (an exception, an out-of-memory, a timeout), and is then also the ``reason``.
    """

    def __init__(self, config: SurrogateConfig | None = None, **overrides):
        self.config = replace(config or SurrogateConfig(), **overrides).validate()

    def __call__(self, individual) -> Evaluation:
        g = individual if isinstance(individual, LossGraph) else LossGraph.from_json(individual)
        expr = g.to_expression()
        seed = derive_seed(self.config.seed, "nlfs", expr)
        try:
            res = surrogate_training(g.compile(), self.config, seed)
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
