"""The DEAP toolbox of a GLS run and the evaluator of its networks."""
from __future__ import annotations

from deap import base

from ..operators.gls import mutSubGD, selGradientLexicase, selRandomChild

from ..models import build_model
from ..rundir import save_weights
from ..runtime import get_device
from ..training import evaluate
from .config import GLSConfig


def accuracy_evaluator(data, best_file: str | None = None, best: float = -1.0, fast=None):
    """Validation/test accuracy of a model during training (a
    :class:`~deapnn.algorithms.contracts.GLSEvaluate`); with ``best_file``, the weights of the
    best model by validation accuracy so far are saved there (atomically) whenever it improves.
    Without a validation split (``val_size=0``, the paper's protocol) it measures nothing: the
    test split is read once, at the end (:func:`final_accuracy`). ``fast``: see
    :func:`final_accuracy`."""
    def run(model):
        nonlocal best
        if not len(data.val):
            return {}
        record = final_accuracy(data, model, fast)
        if best_file and record["val_acc"] > best:
            best = record["val_acc"]
            save_weights(best_file, model.state_dict())
        return record
    return run


def final_accuracy(data, model, fast=None) -> dict:
    """``{"val_acc", "test_acc"}`` of ``model`` (``val_acc`` None without a validation split);
    ``fast`` with ``compile``: through the compiled float32 forward pass."""
    return {"val_acc": evaluate(model, data.val.x, data.val.y, data.task, fast=fast)
            if len(data.val) else None,
            "test_acc": evaluate(model, data.test.x, data.test.y, data.task, fast=fast)}


def gls_toolbox(data, cfg: GLSConfig, arm: str = "gls", device=None) -> base.Toolbox:
    """A DEAP toolbox with ``mutate`` (SubGD), ``select`` (lazy gradient lexicase, or
    :func:`operators.selRandomChild` for the ``random`` ablation arm), ``evaluate`` (val/test
    accuracy) and ``model`` registered for ``data`` (the contract of
    :mod:`deapnn.algorithms.contracts`); mutation, selection and evaluation on the
    configuration's fast path (``--compile``, ``--precision``)."""
    device = device or get_device()
    fast = cfg.fast_path()
    fast.check(device)
    tb = base.Toolbox()
    x, y = data.train.x.to(device), data.train.y.to(device)
    augment = cfg.augmentation_kind(data.augment)
    tb.register("mutate", mutSubGD, x=x, y=y, batch_size=cfg.batch_size, augment=augment,
                fast=fast)
    if arm == "random":
        tb.register("select", selRandomChild)
    else:
        # selection_data="augmented" (reference-code option): every selection event sees a fresh
        # augmentation of the cases, drawn from the generation's random generator.
        tb.register("select", selGradientLexicase, x=x, y=y, chunk_size=cfg.chunk_size,
                    max_cases=cfg.max_cases, semantics=cfg.semantics,
                    augment=augment if cfg.selection_data == "augmented" else None,
                    case_metric=cfg.case_metric, epsilon=cfg.epsilon, fast=fast)
    tb.register("evaluate", accuracy_evaluator(data, fast=fast))
    tb.register("model", build_model, cfg.model, data.input_shape, data.num_classes)
    if cfg.diagnostics:
        tb.register("diagnose", selection_diagnostics(data, device))
    return tb


def selection_diagnostics(data, device=None):
    """The ``diagnose`` of a GLS toolbox (``--diagnostics``): per generation,

    * ``deciding_case``: the training case at which the lexicase pool became one child (None
      when it never did: the cases ran out, or random selection);
    * ``winner_trained_on_decider``: whether the winner's SubGD slice held that case (a case is
      in exactly one child's slice, so about 1/p when the case is unrelated to training);
    * ``child_val_acc`` and ``winner_best_val``: every child's validation accuracy and whether
      the winner has the highest (ties included; by chance about 1/p when the children differ).
    """
    xv, yv = data.val.x.to(device or "cpu"), data.val.y.to(device or "cpu")

    def diagnose(children, winner: int, info: dict) -> dict:
        decider = info.get("deciding_case")
        cases = getattr(children[winner], "subgd_cases", None)
        trained = (None if decider is None or cases is None
                   else bool((cases.cpu() == int(decider)).any()))
        record = {"deciding_case": decider, "winner_trained_on_decider": trained}
        if len(xv):
            accs = [evaluate(c, xv, yv, data.task) for c in children]
            record.update(child_val_acc=accs, winner_best_val=accs[winner] == max(accs))
        return record
    return diagnose


__all__ = ["gls_toolbox", "accuracy_evaluator", "final_accuracy", "selection_diagnostics"]
