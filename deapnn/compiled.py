"""Compiled forward passes shared by every network of one architecture (issue 27, ``--compile``).

A GLS generation trains p children that are copies of one parent, every generation makes new
ones, and the loss searches train a fresh network per candidate: compiling each network would
compile the same graph again and again. Here the forward pass is compiled once per
*architecture* as a function of the weights — ``torch.func.functional_call(template, (params,
buffers), (x,))`` over a private copy of the first network seen (the template) — and every
network of that architecture calls the same compiled graph with its own parameters and buffers
(BatchNorm's running statistics are updated in the caller's buffers). Gradients flow back to the
caller's parameters, so its optimizer, momentum buffers and checkpoint are untouched by the
compilation.

Two entries per architecture and precision (:class:`CompiledForward`):

* **training** (``train()`` mode, gradients on): compiled for one batch shape (the first seen);
  a batch of another shape (the last, short batch of an epoch) runs eagerly, so an epoch never
  recompiles;
* **inference** (``eval()`` mode, under ``torch.inference_mode``): compiled with a dynamic batch
  dimension, for the selection's growing chunks of cases and the evaluation batches; batches of
  fewer than :data:`MIN_COMPILED_BATCH` cases run eagerly (the convolutions' kernels are
  specialised below that size, which would compile a second graph for them).

The architecture key is the network's class, its ``repr`` (layer settings) and the names,
shapes, strides, dtypes and device of its parameters and buffers: two networks with the same
key compute the same function of their weights. Each entry has its own code object, so
dynamo's cache and its recompilation limit are per architecture, and a counting backend
(inductor underneath) counts the graphs each entry compiles (:func:`compile_stats`): graphs
compiled after an entry's first call are recompilations; beyond :data:`RECOMPILE_BOUND` of
them one ``deapnn: warning:`` line says so (e.g. a user's network whose forward branches on
the batch).

Compiled kernels may order floating-point operations differently from eager ones: the same seed
gives the same result on the same machine and versions, not a bit-identical copy of an eager run
(README, "Fast paths").
"""
from __future__ import annotations

import copy
import sys
import types

import torch
from torch.func import functional_call

#: recompilations of one compiled forward beyond which a run says so (one warning line)
RECOMPILE_BOUND = 2
#: inference batches smaller than this run eagerly (conv kernels are specialised below 16 cases)
MIN_COMPILED_BATCH = 16

_ENTRIES: dict[tuple, CompiledForward] = {}


def architecture_key(model: torch.nn.Module) -> tuple:
    """What makes two networks compute the same function of their weights in the same graph:
    class, ``repr`` (the layers' settings) and every parameter's and buffer's name, shape,
    strides (a channels-last copy gets a graph of its own), dtype and device."""
    cls = type(model)
    tensors = tuple((name, tuple(t.shape), t.stride(), str(t.dtype), str(t.device))
                    for name, t in [*model.named_parameters(), *model.named_buffers()])
    return (cls.__module__, cls.__qualname__, repr(model), tensors)


def _forward_function(template: torch.nn.Module, tag: str):
    """``forward(params, buffers, x)`` over ``template``, with a code object of its own (dynamo
    caches compiled graphs, and counts recompilations, per code object)."""
    def forward(params, buffers, x):
        return functional_call(template, (params, buffers), (x,))
    code = forward.__code__.replace(co_name=f"deapnn_forward_{tag}")
    return types.FunctionType(code, forward.__globals__, code.co_name, None, forward.__closure__)


def _canonical_strides(x: torch.Tensor) -> torch.Tensor:
    """``x`` with the strides a fresh contiguous tensor of its shape has, when it is contiguous:
    a size-1 dimension may carry any stride (``(N, 1, 40)`` arrives as ``(40, 40, 1)`` or
    ``(40, 1, 1)``), and dynamo guards on it, so the same data would compile a second graph.
    Other layouts (channels-last) are passed as they are."""
    if not x.is_contiguous():
        return x
    strides, step = [], 1
    for size in reversed(x.shape):
        strides.append(step)
        step *= max(size, 1)
    strides.reverse()
    return x if x.stride() == tuple(strides) else x.as_strided(x.shape, strides)


class CompiledForward:
    """One architecture's compiled forward pass in one mode (training or inference) and
    precision; see the module docstring. ``graphs``: graphs compiled so far; ``recompiles``:
    those compiled after the first call."""

    def __init__(self, model: torch.nn.Module, training: bool, precision: str, label: str):
        template = copy.deepcopy(model).train(training)
        for p in template.parameters():
            p.grad = None
            p.requires_grad_(False)      # never read: the caller's parameters are passed in
        self.training, self.precision, self.label = training, precision, label
        self.graphs, self.warned = 0, False
        self.after_first: int | None = None          # graphs once the first call returned
        self.shape: tuple | None = None              # training: the batch shape compiled for
        tag = f"{'train' if training else 'infer'}_{len(_ENTRIES)}"
        self._fn = torch.compile(_forward_function(template, tag), backend=self._backend,
                                 dynamic=False)

    def _backend(self, gm, example_inputs):
        self.graphs += 1
        from torch._dynamo import lookup_backend
        return lookup_backend("inductor")(gm, example_inputs)

    @property
    def recompiles(self) -> int:
        """Graphs compiled after the first call (0 before it)."""
        return 0 if self.after_first is None else self.graphs - self.after_first

    def bind(self, model: torch.nn.Module):
        """``forward(x)`` for ``model`` (of this entry's architecture): the compiled graph over
        its parameters and buffers, or ``model(x)`` for a batch the graph does not take."""
        params, buffers = dict(model.named_parameters()), dict(model.named_buffers())

        def forward(x):
            if self.training:
                if self.shape is None:
                    self.shape = tuple(x.shape)
                if tuple(x.shape) != self.shape or not model.training:
                    return model(x)
                return self._call(params, buffers, _canonical_strides(x))
            if len(x) < MIN_COMPILED_BATCH or model.training:
                return model(x)
            x = _canonical_strides(x)
            torch._dynamo.maybe_mark_dynamic(x, 0)
            with torch.inference_mode():
                return self._call(params, buffers, x)
        return forward

    def _call(self, params, buffers, x):
        out = self._fn(params, buffers, x)
        if self.after_first is None:
            self.after_first = self.graphs
        elif self.recompiles > RECOMPILE_BOUND and not self.warned:
            self.warned = True
            print(f"deapnn: warning: --compile recompiled the {self.label} forward pass "
                  f"{self.recompiles} times (more than {RECOMPILE_BOUND}): its graph depends "
                  "on something that changes between calls (input shapes or the network's "
                  "Python state); this run is slower than it should be", file=sys.stderr,
                  flush=True)
        return out


def compiled_forward(model: torch.nn.Module, *, training: bool,
                     precision: str = "fp32") -> CompiledForward:
    """The process's :class:`CompiledForward` for ``model``'s architecture in this mode and
    precision, made (from a copy of ``model``) on first use."""
    key = (training, precision, architecture_key(model))
    entry = _ENTRIES.get(key)
    if entry is None:
        label = f"{type(model).__name__} {'training' if training else 'inference'}" + (
            f" {precision}" if precision != "fp32" else "")
        entry = _ENTRIES[key] = CompiledForward(model, training, precision, label)
    return entry


def compile_stats() -> dict[str, dict]:
    """label -> ``{"graphs", "recompiles"}`` of every compiled forward of this process (labels
    of one architecture in one mode; several architectures of one class get ``#2``, ``#3``)."""
    out: dict[str, dict] = {}
    for entry in _ENTRIES.values():
        label, n = entry.label, 2
        while label in out:
            label, n = f"{entry.label} #{n}", n + 1
        out[label] = {"graphs": entry.graphs, "recompiles": entry.recompiles}
    return out


def compile_record() -> dict:
    """``{"compiled_graphs", "recompiles"}`` of this process so far (a compiled run's result
    row; a process that runs several jobs shares its graphs between them)."""
    stats = compile_stats().values()
    return {"compiled_graphs": sum(s["graphs"] for s in stats),
            "recompiles": sum(s["recompiles"] for s in stats)}


def summary_line() -> str | None:
    """One line on what ``--compile`` compiled in this process (None when nothing was):
    graphs per entry, recompilations and dynamo's own count of compiled graphs."""
    stats = compile_stats()
    if not stats:
        return None
    from torch._dynamo.utils import counters
    parts = ", ".join(f"{label} {s['graphs']}" for label, s in stats.items())
    again = sum(s["recompiles"] for s in stats.values())
    return (f"deapnn: compiled graphs: {parts}; {again} recompilation(s) after the first call "
            f"(dynamo: {counters['stats'].get('unique_graphs', 0)} unique graphs)")


def reset_compiled() -> None:
    """Forget every compiled forward of this process and dynamo's caches (tests, benchmarks)."""
    _ENTRIES.clear()
    torch._dynamo.reset()


__all__ = ["CompiledForward", "compiled_forward", "compile_stats", "compile_record",
           "summary_line",
           "reset_compiled", "architecture_key", "RECOMPILE_BOUND", "MIN_COMPILED_BATCH"]
