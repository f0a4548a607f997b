"""DEAP operators for EvoMAL loss trees (Raymond et al. 2023, TPAMI §4.2 and Table 2).

``mutCorrectArguments`` is the argument correction as a DEAP mutation (returns ``(ind,)``);
``heightLimit`` is ``gp.staticLimit`` on tree height [10]; ``mutUniformLoss`` is ``gp.mutUniform``
with half-and-half subtrees of depth 0-2, the EvoMAL mutation.
"""
from __future__ import annotations

import operator
import random

from deap import gp

from deapnn.losses.tree import correctArguments, default_pset

__all__ = ["correctArguments", "mutCorrectArguments", "heightLimit", "mutUniformLoss"]


def mutCorrectArguments(individual, pset=None, rng=random):
    """:func:`deapnn.losses.tree.correctArguments` in DEAP mutation form: returns ``(individual,)``."""
    return (correctArguments(individual, pset or default_pset(), rng),)


def heightLimit(max_height: int = 10):
    """Decorator for mate/mutate: children taller than ``max_height`` are replaced by a copy of
    their parent (``gp.staticLimit`` on ``height``)."""
    if not isinstance(max_height, int) or max_height < 1:
        raise ValueError(f"max_height must be an integer >= 1, got {max_height!r}")
    return gp.staticLimit(key=operator.attrgetter("height"), max_value=max_height)


def mutUniformLoss(individual, pset=None, min_: int = 0, max_: int = 2):
    """``gp.mutUniform`` with a ``gp.genHalfAndHalf`` subtree of depth ``min_``..``max_``."""
    pset = pset or default_pset()
    return gp.mutUniform(individual, lambda pset, type_: gp.genHalfAndHalf(pset, min_, max_, type_),
                         pset)
