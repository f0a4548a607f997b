"""The toolbox contract of :func:`~deapnn.algorithms.eaGradientLexicase`: the call signatures
the generation loop uses, declared as :class:`typing.Protocol` classes.

A toolbox for Gradient Lexicase Selection (Ding & Spector 2022, §3, Algorithm 1) registers

* ``mutate`` — a :class:`GLSMutate`, e.g. :func:`operators.mutSubGD` with ``x, y, batch_size``
  bound: trains the p children in place;
* ``select`` — a :class:`GLSSelect`, e.g. :func:`operators.selGradientLexicase` with ``x, y``
  bound, or :func:`operators.selRandomChild` for the random-selection ablation;
* optionally ``evaluate`` — a :class:`GLSEvaluate` (a dict of metrics of the parent);
* optionally ``model`` — a :class:`GLSModelFactory` (a fresh network, for ``init="independent"``);
* optionally ``diagnose`` — a :class:`GLSDiagnose` (per-generation diagnostics of a selection).

DEAP's own selectors (``tools.selRandom``, ``tools.selBest``) do not fit ``select``: the loop
passes the generation's random generator and an ``info`` dict by keyword.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class GLSMutate(Protocol):
    def __call__(self, children: Sequence[torch.nn.Module], *,
                 optimizers: Sequence[torch.optim.Optimizer], generator: torch.Generator,
                 augment_generator: torch.Generator):
        """Train ``children`` in place (one optimizer each, learning rate already set); set
        ``child.train_loss`` and ``child.diverged`` (a reason, or None) on each."""


@runtime_checkable
class GLSSelect(Protocol):
    def __call__(self, children: Sequence[torch.nn.Module], k: int, *, rng: np.random.Generator,
                 info: dict | None = None) -> list:
        """``k`` of ``children`` (references); draws only from ``rng``; may fill ``info`` with
        ``cases_examined`` and ``survivors_per_chunk``."""


@runtime_checkable
class GLSEvaluate(Protocol):
    def __call__(self, parent: torch.nn.Module) -> dict:
        """Metrics of the parent (e.g. ``val_acc``, ``test_acc``) added to the logbook record."""


@runtime_checkable
class GLSModelFactory(Protocol):
    def __call__(self) -> torch.nn.Module:
        """A freshly initialised network of the parent's architecture."""


@runtime_checkable
class GLSDiagnose(Protocol):
    def __call__(self, children: Sequence[torch.nn.Module], winner: int, info: dict) -> dict:
        """Diagnostics of one generation's selection (``winner``: index of the selected child,
        ``info``: what ``select`` reported), merged into the generation's logbook record."""


__all__ = ["GLSMutate", "GLSSelect", "GLSEvaluate", "GLSModelFactory", "GLSDiagnose"]
