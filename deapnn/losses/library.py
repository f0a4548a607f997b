"""Named classification losses as drop-in ``nn.Module``s taking ``(logits, targets)``.

Built-ins (the baselines of Morgan & Hougen 2024 §4):

==================  ==========================================================================
``ce``              cross-entropy (``F.cross_entropy``)
``baikal``          −Σ_c(ln(ŷ+ε) − y/(ŷ+ε)), batch mean (Gonzalez & Miikkulainen 2020)
``focal``           −Σ_c y (1−ŷ)^γ ln ŷ, γ = 2 (Lin et al. 2017), batch mean
``label_smoothing`` cross-entropy with label smoothing 0.1 (Szegedy et al. 2016)
``mse``             Σ_c (softmax(z) − y)², batch mean
==================  ==========================================================================

Anything else is looked up in the **registry** of losses found by runs (a JSON file: the
``DEAPNN_LOSSES`` environment variable, else ``~/.cache/deapnn/losses.json``; a run directory
writes its own ``losses.json`` too) and finally parsed as a formula with
:meth:`LossGraph.from_expression`, e.g. ``get("-(log(yhat) - y / yhat)")``.
"""
from __future__ import annotations

import json
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from .compiled import CompiledLoss
from .graph import LossGraph
from .graph_ops import EPS

REGISTRY_FORMAT = "deapnn-losses-1"


class CrossEntropyLoss(nn.Module):
    expression = "-(y * log(yhat))"

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets)


class BaikalLoss(nn.Module):
    """Baikal loss −Σ_c(ln ŷ − y/ŷ) (Gonzalez & Miikkulainen 2020), ε-protected."""
    expression = "-(log(yhat) - y / yhat)"

    def forward(self, logits, targets):
        yhat = torch.softmax(logits, 1)
        y = _one_hot(targets, logits)
        return (-(torch.log(yhat + EPS) - y / (yhat + EPS))).sum(1).mean()


class FocalLoss(nn.Module):
    """Focal loss −(1−p_t)^γ ln p_t (Lin et al. 2017), computed from ``log_softmax``."""

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    @property
    def expression(self):
        return f"-(y * (1 - yhat)^{self.gamma:g} * log(yhat))"

    def forward(self, logits, targets):
        logp = torch.log_softmax(logits, 1)
        y = _one_hot(targets, logits)
        return (-(y * (1 - logp.exp()) ** self.gamma * logp)).sum(1).mean()

    def extra_repr(self):
        return f"gamma={self.gamma}"


class LabelSmoothingCrossEntropy(nn.Module):
    def __init__(self, smoothing: float = 0.1):
        super().__init__()
        if not 0 <= smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets, label_smoothing=self.smoothing)

    def extra_repr(self):
        return f"smoothing={self.smoothing}"


class SoftmaxMSELoss(nn.Module):
    """Squared error between softmax(z) and the one-hot label, summed over classes."""
    expression = "(y - yhat)^2"

    def forward(self, logits, targets):
        return ((torch.softmax(logits, 1) - _one_hot(targets, logits)) ** 2).sum(1).mean()


class GraphLoss(CompiledLoss):
    """A loss graph (:class:`LossGraph`) as an ``nn.Module``; picklable (keeps the genome JSON)."""

    def __init__(self, graph: LossGraph | str | dict, name: str | None = None):
        super().__init__()
        if not isinstance(graph, LossGraph):
            graph = LossGraph.from_json(graph)
        graph.validate()
        self.genome = graph.to_json()
        self.name = name
        self.expression = graph.to_expression()
        self._compile()

    def _compile(self) -> None:
        self._fn = LossGraph.from_json(self.genome).compile()

    @property
    def graph(self) -> LossGraph:
        return LossGraph.from_json(self.genome)

    def forward(self, logits, targets):
        return self._fn(logits, targets)

    def extra_repr(self):
        return (f"name={self.name!r}, " if self.name else "") + f"expression={self.expression!r}"


def _one_hot(targets, logits):
    if targets.dtype.is_floating_point:
        return targets.to(logits.dtype)
    return F.one_hot(targets, logits.shape[1]).to(logits.dtype)


BUILTIN = {
    "ce": CrossEntropyLoss, "cross_entropy": CrossEntropyLoss,
    "baikal": BaikalLoss,
    "focal": FocalLoss,
    "label_smoothing": LabelSmoothingCrossEntropy, "ls_ce": LabelSmoothingCrossEntropy,
    "mse": SoftmaxMSELoss,
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


# --- registry -------------------------------------------------------------------------------
def registry_path(path=None) -> str:
    """The registry file in use: ``path``, ``$DEAPNN_LOSSES`` or ``~/.cache/deapnn/losses.json``.
    A directory stands for its ``losses.json``."""
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path (the loss registry file or directory) must be a str or "
                        f"os.PathLike, got {type(path).__name__}")
    path = path or os.environ.get("DEAPNN_LOSSES") or \
        os.path.join(os.path.expanduser("~"), ".cache", "deapnn", "losses.json")
    path = os.fspath(path)
    return os.path.join(path, "losses.json") if os.path.isdir(path) else path


def load_registry(path=None) -> dict:
    """``{name: {"expression", "genome", "meta"}}`` from the registry file (empty when absent)."""
    file = registry_path(path)
    if not os.path.exists(file):
        return {}
    with open(file, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"loss registry {file} is not valid JSON: {exc}") from None
    losses = data.get("losses", {}) if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT or \
            not isinstance(losses, dict) or \
            not all(isinstance(e, dict) and "genome" in e for e in losses.values()):
        raise ValueError(f"{file} is not a deapnn loss registry (a {REGISTRY_FORMAT} object "
                         "whose losses each hold a genome)")
    return losses


def register(name: str, loss, path=None, meta: dict | None = None) -> dict:
    """Save ``loss`` (a formula, a :class:`LossGraph` or its JSON) under ``name`` in the registry
    file (atomic write) and return the entry.  Built-in names cannot be overwritten."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"invalid loss name {name!r}: use letters, digits, '_', '-', '.'")
    if name in BUILTIN:
        raise ValueError(f"{name!r} is a built-in loss name; choose another")
    if isinstance(loss, LossGraph):
        graph = loss
    elif isinstance(loss, dict) or (isinstance(loss, str) and loss.lstrip().startswith("{")):
        graph = LossGraph.from_json(loss)
    else:
        graph = LossGraph.from_expression(loss)
    graph.validate()
    entry = {"expression": graph.to_expression(), "genome": graph.to_dict(),
             "meta": dict(meta or {})}
    file = registry_path(path)
    losses = load_registry(file)
    losses[name] = entry
    os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
    from ..rundir import atomic_write
    atomic_write(os.fspath(file), lambda fh: json.dump(
        {"format": REGISTRY_FORMAT, "losses": losses}, fh, indent=1), mode="w")
    return entry


def available(path=None) -> list[str]:
    """Built-in and registered loss names."""
    return sorted(set(BUILTIN) | set(load_registry(path)))


def get(spec: str, path=None, **kwargs) -> nn.Module:
    """A loss module by built-in name, registered name, or formula (``LossGraph`` grammar).

    ``kwargs`` go to a built-in's constructor (``get("focal", gamma=1.0)``).
    Raises ``ValueError`` naming the valid choices when nothing matches.
    """
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a loss must be a name or a formula, got {spec!r}")
    spec = spec.strip()
    if spec in BUILTIN:
        return BUILTIN[spec](**kwargs)
    registry = load_registry(path)
    if spec in registry:
        try:
            return GraphLoss(registry[spec]["genome"], name=spec)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError,
                RecursionError) as exc:
            raise ValueError(f"loss {spec!r} of the registry {registry_path(path)} has an "
                             f"invalid genome ({type(exc).__name__}: {exc})") from None
    try:
        return GraphLoss(LossGraph.from_expression(spec))
    except ValueError as exc:
        names = ", ".join(available(path))
        if _NAME.match(spec):
            raise ValueError(f"unknown loss {spec!r}; valid names: {names} "
                             f"(or a formula such as '-(y * log(yhat))')") from None
        raise ValueError(f"unknown loss {spec!r}: not a name ({names}) and {exc}") from None


def resolve_loss(spec: str | None, path=None):
    """For ``deapnn train --loss NAME|EXPRESSION``: ``None``/``"ce"`` → ``F.cross_entropy``
    semantics; anything else → :func:`get`.  Fails fast with the valid names."""
    if spec is None:
        return CrossEntropyLoss()
    return get(spec, path=path)
