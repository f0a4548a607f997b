"""Opt-in fast paths of every training loop: compiled steps and mixed precision (issue 27).

:class:`FastPathSettings` declares the two settings once (``--compile``, ``--precision``); every
run configuration that trains derives from it (``deapnn train`` and ``gls`` through
``deapnn.baseline.SGDRunConfig``, NLFS's configurations, EvoMAL's). They are settings of
the invocation, as ``--device`` is: they decide how the arithmetic is done, not what the run
is, so a run resumed elsewhere (say on a GPU) may change them and its checkpoints stay its own.
The defaults, eager float32, are today's arithmetic exactly.

:class:`FastPath` is the small, picklable option object the loops take (``fast=``):

* ``compile``: forward passes go through :mod:`deapnn.compiled`, one compiled graph per
  architecture shared by every network of it (GLS's children, each generation's new ones, the
  loss searches' fresh networks);
* ``precision``: ``bf16`` or ``fp16`` runs the forward pass and the loss under
  ``torch.autocast`` (the weights, their gradients and the optimizer stay float32); the loss
  takes float32 logits; ``fp16`` scales the loss with a ``GradScaler`` and needs CUDA (refused
  on CPU in one line); ``bf16`` works on CPU and CUDA. Lexicase's per-case pass/fail and losses
  are computed from float32 logits; reported metrics (validation/test accuracy, errors) from a
  float32 forward pass;
* ``channels_last`` (Python only): the training layout of networks with 2-D convolutions, by
  default channels-last where it was measured faster (CPU, bf16; :class:`FastPath`). Selection
  on CPU runs channels-last on every path already
  (:func:`deapnn.operators.gls_cases.cpu_inference_layout`).

:class:`Stepper` is one loop's training step (forward, loss, backward, update) on either path;
with the defaults it performs exactly the operations the loops did before it existed.
"""
from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import Any

from .config import Config, ConfigError, Options, setting

#: the arithmetic a loop may run its forward pass and loss in
PRECISIONS = ("fp32", "bf16", "fp16")
#: the fields of :class:`FastPathSettings`
FAST_PATH_FIELDS = ("compile", "precision")


def _fast_setting(default, help_text: str, **flag) -> Any:
    return setting(default, help_text, group="speed (opt-in, README: Fast paths)",
                   invocation=True, **flag)


@dataclass
class FastPathSettings(Config):
    """The fast-path settings of a run configuration that trains (see the module docstring)."""
    compile: bool = _fast_setting(
        False, "compile the training step's forward and backward passes and the forward passes "
               "of selection and evaluation (torch.compile, once per architecture; same seed, "
               "same result on the same machine and versions, not bit-identical to eager)")
    precision: str = _fast_setting(
        "fp32", "arithmetic of the forward pass and loss: fp32, bf16 (autocast; CPU and CUDA) "
                "or fp16 (autocast and a gradient scaler; CUDA only)", metavar="|".join(PRECISIONS))

    _parameter_constraints = {"compile": [bool], "precision": [Options(PRECISIONS)]}

    def fast_path(self) -> FastPath:
        """The :class:`FastPath` these settings ask for."""
        return FastPath(self.compile, self.precision)


@dataclass(frozen=True)
class FastPath:
    """How a loop computes (see the module docstring); ``FastPath()`` is eager float32.

    ``channels_last``: the memory layout of a network with 2-D convolutions while it trains
    (its weights and batches; put back after the loop). ``None`` (the default) takes it where
    bench/speed.py measured it faster: on CPU with ``precision="bf16"`` (oneDNN's bfloat16
    convolutions: resnet18 trains 1.94× faster than eager float32 in it against 1.75× in the
    default layout; docs/results.md, "Fast paths"), never on the default path, whose
    arithmetic it would change. ``True`` asks for it on any path (eager float32 included:
    1.06× for resnet18 on CPU, results equal to float rounding), ``False`` never."""
    compile: bool = False
    precision: str = "fp32"
    channels_last: bool | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                              f"{self.precision!r}", "precision")

    @property
    def is_default(self) -> bool:
        """Whether this is eager float32, the loops' own arithmetic."""
        return not self.compile and self.precision == "fp32" and not self.channels_last

    def describe(self) -> str:
        """The flags that chose this path (``--compile --precision bf16``)."""
        words = (["--compile"] if self.compile else []) + (
            [f"--precision {self.precision}"] if self.precision != "fp32" else [])
        return " ".join(words) or "eager float32"

    def check(self, device) -> None:
        """Refuse a path the device cannot run: fp16 needs CUDA (a :class:`ConfigError` naming
        ``precision``: the command line's one-line error, exit 2)."""
        kind = getattr(device, "type", str(device).split(":")[0])
        if self.precision == "fp16" and kind != "cuda":
            raise ConfigError(f"precision must be fp32 or bf16 on {kind} (fp16 needs CUDA: "
                              f"a gradient scaler and half-precision kernels), got fp16",
                              "precision")

    def trains_channels_last(self, model, device) -> bool:
        """Whether ``model`` trains in channels-last layout on ``device`` (see the class
        docstring; only networks with 2-D convolutions, 4-D weights)."""
        if self.channels_last is False or self.is_default:
            return False
        if not any(p.dim() == 4 for p in model.parameters()):
            return False
        if self.channels_last:
            return True
        return getattr(device, "type", str(device)) == "cpu" and self.precision == "bf16"

    def autocast(self, device):
        """A context running its block in this path's precision on ``device`` (none for fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.type, dtype=dtype)

    def train_forward(self, model):
        """``forward(x)`` of ``model`` for a training step (compiled with ``compile``)."""
        if not self.compile:
            return model
        from .compiled import compiled_forward
        return compiled_forward(model, training=True, precision=self.precision).bind(model)

    def infer_forward(self, model, *, float32: bool = False):
        """``forward(x)`` of ``model`` in eval mode without gradients (compiled with
        ``compile``); ``float32``: the entry of a float32 forward (reported metrics)."""
        if not self.compile:
            return model
        from .compiled import compiled_forward
        precision = "fp32" if float32 else self.precision
        return compiled_forward(model, training=False, precision=precision).bind(model)


def fast_path_of(fast) -> FastPath:
    """``fast`` as a :class:`FastPath` (None: the default; settings: theirs)."""
    if fast is None:
        return FastPath()
    if isinstance(fast, FastPath):
        return fast
    return fast.fast_path()


#: the gradient scaler of each optimizer an fp16 loop steps (it lives as long as its optimizer)
_SCALERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scaler_state(optimizer) -> dict | None:
    """The state of the gradient scaler an fp16 loop keeps for ``optimizer`` (None when it
    has none): part of a checkpoint, so a resumed fp16 run starts from the loss scale the
    interrupted one had reached, not from the initial 2^16."""
    scaler = _SCALERS.get(optimizer)
    return None if scaler is None else scaler.state_dict()


def restore_scaler(optimizer, state: dict | None, device) -> None:
    """Give ``optimizer`` the gradient scaler stored by :func:`scaler_state` (nothing when
    ``state`` is None: a run that was not fp16, or stored before the scaler was kept)."""
    if not state:
        return
    import torch
    scaler = _SCALERS.get(optimizer)
    if scaler is None:
        scaler = _SCALERS[optimizer] = torch.amp.GradScaler(getattr(device, "type", str(device)))
    scaler.load_state_dict(state)


class Stepper:
    """One training loop's step on ``fast``'s path: :meth:`loss` (forward and loss) and
    :meth:`update` (gradients zeroed, backward, optimizer step). With the default path these are
    ``loss_fn(model(xb), yb)`` and ``zero_grad(set_to_none=True)``, ``backward()``, ``step()``,
    the loops' operations before fast paths existed. A context manager: a network trained in
    channels-last layout (:meth:`FastPath.trains_channels_last`) is put back in the default
    layout at exit (parameter objects kept, so optimizers stay attached)."""

    def __init__(self, fast, model, optimizer, loss_fn, device):
        self.fast = fast_path_of(fast)
        self.model, self.optimizer, self.loss_fn, self.device = model, optimizer, loss_fn, device
        self.default = self.fast.is_default
        self.scaler = self._probe = None
        self.layout = False
        if not self.default:
            import torch
            self.fast.check(device)
            self.layout = self.fast.trains_channels_last(model, device)
            if self.layout:
                model.to(memory_format=torch.channels_last)
            from .fastcheck import check_speed
            self.forward = self.fast.train_forward(model)
            self._probe = lambda xb, yb: check_speed(self.fast, model, loss_fn, xb, yb, device,
                                                     self.layout)
            if self.fast.precision == "fp16":
                self.scaler = _SCALERS.get(optimizer)
                if self.scaler is None:
                    import torch
                    self.scaler = _SCALERS[optimizer] = torch.amp.GradScaler(device.type)

    def loss(self, xb, yb):
        """The loss of a batch (a float32 scalar)."""
        if self.default:
            return self.loss_fn(self.model(xb), yb)
        if self._probe is not None:
            probe, self._probe = self._probe, None
            probe(xb, yb)
        if self.layout:
            import torch
            xb = xb.contiguous(memory_format=torch.channels_last)
        with self.fast.autocast(self.device):
            out = self.forward(xb)
            return self.loss_fn(out.float(), yb)

    def update(self, loss) -> None:
        """Backward and optimizer step (through the gradient scaler with fp16)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.layout:
            import torch
            self.model.to(memory_format=torch.contiguous_format)
        return False


__all__ = ["FastPath", "FastPathSettings", "Stepper", "fast_path_of", "scaler_state",
           "restore_scaler",
           "PRECISIONS", "FAST_PATH_FIELDS"]
