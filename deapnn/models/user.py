"""The user's own network: ``--model package.module:function``.

The factory (a function or class, :func:`deapnn.imports.resolve`) is called with
``(input_shape, num_classes)`` (``input_shape`` one example's, e.g. ``(1, 8, 8)``; ``num_classes``
the output dimension, 1 for regression) and returns a ``torch.nn.Module``. Before any work the
module is checked once per process with one forward pass on a batch of two zero inputs, which
must give outputs of shape ``(2, num_classes)`` (:func:`check_user_model`); every failure is one
:class:`ModelFactoryError` line naming the setting, what the factory returned and the shape it
produced. The check runs with the random generators of Python, NumPy and torch saved and
restored, so it never shifts a run's random stream.
"""
from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
from torch import nn

from ..imports import exception_line, is_import_string, resolve

_CHECKED: dict = {}


class ModelFactoryError(ValueError):
    """The user's factory gives no usable network; the message is one line naming the
    setting (``model: ...``)."""



def build_user_model(spec: str, input_shape, num_classes: int,
                     field: str = "model") -> nn.Module:
    """``factory(input_shape, num_classes)`` for the factory ``spec`` names; refused in one line
    when it cannot be imported, raises, or returns anything but an ``nn.Module``."""
    factory = resolve(spec, field)
    shape = tuple(int(s) for s in input_shape)
    try:
        model = factory(shape, int(num_classes))
    except Exception as exc:            # a user's factory may raise anything
        raise ModelFactoryError(f"{field}: {spec}{(shape, int(num_classes))} raised "
                                f"{exception_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ModelFactoryError(f"{field}: {spec}{(shape, int(num_classes))} returned a "
                                f"{type(model).__name__}, not a torch.nn.Module")
    return model


@contextlib.contextmanager
def _isolated_rng():
    """Python, NumPy and torch (CPU) random states as they were before the block."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def check_user_model(spec: str, input_shape, num_classes: int, field: str = "model") -> int:
    """Build the user's network for ``input_shape`` / ``num_classes`` and run one forward pass
    on a batch of two zero inputs (on the CPU, without gradients); its parameter count. The
    output must be a tensor of shape ``(2, num_classes)``. Checked once per process for each
    ``(spec, input_shape, num_classes)``."""
    shape = tuple(int(s) for s in input_shape)
    key = (spec, shape, int(num_classes))
    if key in _CHECKED:
        return _CHECKED[key]
    with _isolated_rng():
        model = build_user_model(spec, shape, num_classes, field)
        what = f"{spec} (a {type(model).__name__})"
        try:
            with torch.no_grad():
                out = model.eval()(torch.zeros((2,) + shape))
        except Exception as exc:        # the user's forward may raise anything
            raise ModelFactoryError(f"{field}: {what} failed on a batch of two inputs of shape "
                                    f"{shape}: {exception_line(exc)}") from None
    if not isinstance(out, torch.Tensor):
        raise ModelFactoryError(f"{field}: {what} returned a {type(out).__name__} for a batch "
                                f"of two inputs of shape {shape}, not a tensor")
    if tuple(out.shape) != (2, int(num_classes)):
        outputs = f"{num_classes} classes" if num_classes > 1 else "1 output"
        raise ModelFactoryError(f"{field}: {what} gives outputs of shape {tuple(out.shape)} "
                                f"for a batch of two inputs of shape {shape}; the data needs "
                                f"(2, {num_classes}) ({outputs})")
    _CHECKED[key] = sum(p.numel() for p in model.parameters())
    return _CHECKED[key]


__all__ = ["ModelFactoryError", "build_user_model", "check_user_model", "is_import_string"]
