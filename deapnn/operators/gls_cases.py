"""Training cases for the Gradient Lexicase Selection operators (Ding & Spector 2022, §3.3).

Input checks shared by :func:`~deapnn.operators.gls.mutSubGD` and
:func:`~deapnn.operators.gls.selGradientLexicase`, and the per-case matrices that lexicase selection
filters on: :func:`pass_matrix` (0 where a child's top-1 prediction is right, the paper's
pass/fail) and :func:`loss_matrix` (per-case cross-entropy, the ε-lexicase variant); the
settings of the selection with their constraints (:class:`LexicaseSettings`).
:func:`cpu_inference_layout` runs CPU convolutions channels-last while selecting.
"""
from __future__ import annotations

import contextlib
from contextlib import contextmanager
from functools import partial
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Check, Config, ConfigError, Interval, Options

#: the lexicase loops of selGradientLexicase (standard lexicase, or the reference code's)
SEMANTICS = ("standard", "reference")
#: the per-case values lexicase compares (top-1 error, 0 or 1, the paper's; or cross-entropy loss)
CASE_METRICS = ("error", "loss")
#: the largest chunk of cases :func:`~deapnn.operators.gls.selGradientLexicase` evaluates at once
#: by default (its ``max_chunk_size``), so the bound of a GLS run's first chunk (``chunk_size``)
MAX_CHUNK_SIZE = 4096


def _epsilon_ok(value) -> bool:
    return value == "auto" or (isinstance(value, (int, float)) and not isinstance(value, bool)
                               and 0 <= value < float("inf"))


@dataclass
class LexicaseSettings(Config):
    """The settings of :func:`~deapnn.operators.gls.selGradientLexicase` with their constraints:
    ``deapnn.gls.GLSConfig`` reuses them, so a bad value is the same message from the
    operator, the configuration and the command line (Ding & Spector 2022, §3.3; the loss /
    ε variant beyond the paper, ``docs/faithfulness.md``)."""
    semantics: str = "standard"
    case_metric: str = "error"
    epsilon: float | str | None = None
    chunk_size: int = 8
    max_cases: int | None = None

    _parameter_constraints = {
        "semantics": [Options(SEMANTICS)],
        "case_metric": [Options(CASE_METRICS)],
        "epsilon": [Check(_epsilon_ok, "a finite number >= 0 or auto"), None],
        "chunk_size": [Interval(int, 1, None)],
        "max_cases": [Interval(int, 1, None), None],
    }

    def _check(self) -> None:
        super()._check()
        if self.epsilon is not None and self.case_metric != "loss":
            raise ConfigError("epsilon needs case_metric loss (the 0/1 errors of the paper's "
                              "lexicase have no use for it)", "epsilon")
        if self.case_metric == "loss" and self.semantics == "reference":
            raise ConfigError("case_metric loss needs semantics standard (the reference code's "
                              "loop is defined on pass/fail only)", "case_metric")


def check_cases(op: str, x, y) -> None:
    """``x`` and ``y`` are tensors holding the same number of cases, else TypeError/ValueError."""
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, torch.Tensor):
            kind = f"{type(value).__module__}.{type(value).__qualname__}"
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {kind} "
                            f"(convert it with torch.as_tensor)")
        if value.dim() == 0:
            raise ValueError(f"{op}: {name} must have a leading case dimension, got a 0-d tensor")
    if len(x) != len(y):
        raise ValueError(f"{op}: x and y must hold the same number of cases, "
                         f"got len(x)={len(x)} and len(y)={len(y)}")


def check_labels(op: str, y: torch.Tensor) -> int:
    """``y`` must be a non-empty 1-D tensor of class indices >= 0; returns its largest label
    (one reduction over ``y``; the upper bound is checked against the model output width)."""
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"{op}: y must hold integer class indices, got dtype {y.dtype}")
    if y.dim() != 1:
        raise ValueError(f"{op}: y must be a 1-D tensor of class indices, "
                         f"got shape {tuple(y.shape)}")
    if len(y) == 0:
        raise ValueError(f"{op}: x and y are empty; selection needs at least one training case")
    lo, hi = torch.aminmax(y)
    lo, hi = int(lo), int(hi)
    if lo < 0:
        raise ValueError(f"{op}: y must hold class indices >= 0, got {lo}")
    return hi


def check_x(op: str, model, x: torch.Tensor) -> None:
    """``x`` is a floating tensor of ``model``'s parameters' dtype, on their device (any of the
    children: they share one architecture); else ``TypeError``/``ValueError`` naming ``x``."""
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: x must be a floating-point tensor, got dtype {x.dtype}")
    param = next(iter(model.parameters()), None)
    if param is not None and x.dtype != param.dtype:
        raise TypeError(f"{op}: x must have the models' dtype {param.dtype}, got {x.dtype} "
                        f"(convert it with x.to({param.dtype}))")
    if param is not None and x.device != param.device:
        raise ValueError(f"{op}: x must be on the models' device {param.device}, got {x.device}")


def forward_checked(model, xb: torch.Tensor, label_max: int,
                    op: str = "selGradientLexicase") -> torch.Tensor:
    """``model(xb)`` (N, C) logits, checking that every label ``<= label_max`` is a class
    (``label_max < 0``: no check); cases the model does not take (torch's ``RuntimeError``,
    e.g. a wrong feature count) are a ``ValueError`` naming ``x``. Shapes only: no device
    synchronisation."""
    try:
        out = model(xb)
    except RuntimeError as exc:
        text = str(exc).strip()
        if isinstance(exc, torch.OutOfMemoryError) or "allocate" in text:
            raise
        raise ValueError(f"{op}: x holds cases of shape {tuple(xb.shape[1:])}, which the models "
                         f"do not take ({text.splitlines()[0] if text else 'RuntimeError'})"
                         ) from None
    if label_max >= 0 and (out.dim() != 2 or out.shape[1] <= label_max):
        raise ValueError(f"{op}: y holds class indices up to {label_max}, but the models output "
                         f"{tuple(out.shape[1:])} scores per case; valid labels are "
                         f"0..{out.shape[1] - 1 if out.dim() == 2 else '?'}")
    return out


def check_model_takes(op: str, model, x: torch.Tensor, label_max: int = -1) -> None:
    """:func:`check_x`, and one forward pass of one case (in eval mode, nothing recorded, no
    random draw; the mode restored) through :func:`forward_checked`: the cases and labels
    fit the model before training starts, instead of torch's error from inside it."""
    check_x(op, model, x)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            forward_checked(model, x[:1], label_max, op)
    finally:
        model.train(was_training)


@contextmanager
def cpu_inference_layout(models, x: torch.Tensor):
    """Run CPU convolutions in channels-last layout while selecting, then restore the weights.

    On CPU (oneDNN) a conv net's forward pass in channels-last layout is about twice as fast as in
    the default layout for the small cnn and mobilenetv2 and 1.2× for resnet18, and selection
    late in training is mostly forward passes. The conversion is a layout change only
    (values are bit-identical, the outputs agree to float rounding); parameter objects are kept, so
    optimizers and their momentum buffers stay attached, and the layout is put back afterwards so
    training is unaffected. Other devices and non-image inputs are left alone. Yields the function
    that puts a batch of cases in the matching layout.
    """
    converted = []
    if x.device.type == "cpu" and x.dim() == 4:
        converted = [m for m in models
                     if any(p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last)
                            for p in m.parameters())]
    for m in converted:
        m.to(memory_format=torch.channels_last)
    try:
        yield ((lambda xb: xb.contiguous(memory_format=torch.channels_last)) if converted
               else (lambda xb: xb))
    finally:
        for m in converted:
            m.to(memory_format=torch.contiguous_format)


def _batch_logits(models, x: torch.Tensor, y: torch.Tensor, batch_size: int, label_max: int,
                  fast):
    """Per model, the ``(logits, labels)`` of its batches of ``batch_size`` cases, lazily: the
    forward pass on ``fast``'s path (compiled and under its autocast; the model itself by
    default), its outputs checked (:func:`forward_checked`)."""
    if fast is None:
        forwards, autocast = list(models), contextlib.nullcontext
    else:
        forwards = [fast.infer_forward(m) for m in models]
        autocast = partial(fast.autocast, x.device)

    def batches(forward):
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            with autocast():
                logits = forward_checked(forward, xb, label_max)
            yield logits, yb
    return [batches(forward) for forward in forwards]


def _float32(logits: torch.Tensor) -> torch.Tensor:
    """Logits of an autocast forward pass (bfloat16, float16) as float32; others as they are."""
    return logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits


@torch.inference_mode()
def loss_matrix(models, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                label_max: int = -1, fast=None) -> np.ndarray:
    """(len(models), len(x)) per-case cross-entropy losses (float64), from float32 logits
    whatever ``fast``'s precision (the forward pass alone runs under its autocast)."""
    rows = [torch.cat([F.cross_entropy(logits.float(), yb, reduction="none")
                       for logits, yb in batches])
            for batches in _batch_logits(models, x, y, batch_size, label_max, fast)]
    return torch.stack(rows).double().cpu().numpy()


@torch.inference_mode()
def pass_matrix(models, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                label_max: int = -1, fast=None) -> np.ndarray:
    """(len(models), len(x)) errors: 0 where the model's top-1 prediction is right, 1 otherwise
    (the argmax of float32 logits whatever ``fast``'s precision)."""
    rows = [torch.cat([_float32(logits).argmax(1) == yb for logits, yb in batches])
            for batches in _batch_logits(models, x, y, batch_size, label_max, fast)]
    return (~torch.stack(rows)).to(torch.uint8).cpu().numpy()
