"""The DEAP toolbox of a GLS run and the evaluator of its networks."""
from __future__ import annotations

from deap import base

from operators.gls import mutSubGD, selGradientLexicase, selRandomChild

from ..models import build_model
from ..rundir import save_weights
from ..runtime import get_device
from ..training import evaluate
from .config import GLSConfig


def accuracy_evaluator(data, best_file: str | None = None, best: float = -1.0):
    """Validation/test accuracy of a model during training (a
    :class:`~deapnn.algorithms.contracts.GLSEvaluate`); with ``best_file``, the weights of the
    best model by validation accuracy so far are saved there (atomically) whenever it improves.
    Without a validation split (``val_size=0``, the paper's protocol) it measures nothing: the
    test split is read once, at the end (:func:`final_accuracy`)."""
    def run(model):
        nonlocal best
        if not len(data.val):
            return {}
        record = final_accuracy(data, model)
        if best_file and record["val_acc"] > best:
            best = record["val_acc"]
            save_weights(best_file, model.state_dict())
        return record
    return run


def final_accuracy(data, model) -> dict:
    """``{"val_acc", "test_acc"}`` of ``model`` (``val_acc`` None without a validation split)."""
    return {"val_acc": evaluate(model, data.val.x, data.val.y, data.task) if len(data.val)
            else None,
            "test_acc": evaluate(model, data.test.x, data.test.y, data.task)}


def gls_toolbox(data, cfg: GLSConfig, arm: str = "gls", device=None) -> base.Toolbox:
    """A DEAP toolbox with ``mutate`` (SubGD), ``select`` (lazy gradient lexicase, or
    :func:`operators.selRandomChild` for the ``random`` ablation arm), ``evaluate`` (val/test
    accuracy) and ``model`` registered for ``data`` (the contract of
    :mod:`deapnn.algorithms.contracts`)."""
    device = device or get_device()
    tb = base.Toolbox()
    x, y = data.train.x.to(device), data.train.y.to(device)
    augment = data.augment if cfg.augment else None
    tb.register("mutate", mutSubGD, x=x, y=y, batch_size=cfg.batch_size, augment=augment)
    if arm == "random":
        tb.register("select", selRandomChild)
    else:
        # selection_data="augmented" (reference-code option): every selection event sees a fresh
        # augmentation of the cases, drawn from the generation's random generator.
        tb.register("select", selGradientLexicase, x=x, y=y, chunk_size=cfg.chunk_size,
                    max_cases=cfg.max_cases, semantics=cfg.semantics,
                    augment=augment if cfg.selection_data == "augmented" else None)
    tb.register("evaluate", accuracy_evaluator(data))
    tb.register("model", build_model, cfg.model, data.input_shape, data.num_classes)
    return tb


__all__ = ["gls_toolbox", "accuracy_evaluator", "final_accuracy"]
