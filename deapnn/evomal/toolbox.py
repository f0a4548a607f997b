"""DEAP toolbox for EvoMAL (Raymond et al. 2023, TPAMI §4.1-4.2, Table 2 defaults): ramped
half-and-half initial trees of height 2-4, ``cxOnePoint``, ``mutUniform`` with half-and-half
subtrees of depth 0-2, tournament of 4, static height limit 10, argument correction. Every piece
is a toolbox registration, so a study can re-register any of them.
"""
from __future__ import annotations

import random

from deap import base, creator, gp, tools

from deapnn.losses.tree import correctArguments, default_pset, parse_tree
from ..operators.gp_loss import heightLimit, mutUniformLoss

FITNESS, INDIVIDUAL = "EvoMALFitness", "EvoMALIndividual"


def individual_class():
    """``creator.EvoMALIndividual`` (a ``gp.PrimitiveTree`` minimising one fitness value)."""
    if not hasattr(creator, FITNESS):
        creator.create(FITNESS, base.Fitness, weights=(-1.0,))
    if not hasattr(creator, INDIVIDUAL):
        creator.create(INDIVIDUAL, gp.PrimitiveTree, fitness=getattr(creator, FITNESS))
    return getattr(creator, INDIVIDUAL)


def parse_individual(text: str, pset=None):
    """An individual from its tree string (checkpoints store trees as strings)."""
    return parse_tree(text, pset or default_pset(), cls=individual_class())


def _corrected(make, pset):
    ind = make()
    correctArguments(ind, pset, random)
    return ind


def make_toolbox(evaluate=None, pset=None, init_heights=(2, 4), mutation_depths=(0, 2),
                 tournsize: int = 4, max_height: int = 10, map_fn=None) -> base.Toolbox:
    """Register expr/individual/population (corrected), parse, mate, mutate, select, correct,
    evaluate and map. ``map_fn`` defaults to :func:`deapnn.runtime.get_map` (SCOOP when running
    under ``python -m scoop``)."""
    from deapnn.runtime import get_map
    if tournsize < 1:
        raise ValueError(f"tournament size must be >= 1, got {tournsize}")
    if not 0 <= init_heights[0] <= init_heights[1]:
        raise ValueError(f"initial heights must satisfy 0 <= min <= max, got {init_heights}")
    pset = pset or default_pset()
    cls = individual_class()
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=init_heights[0], max_=init_heights[1])
    tb.register("raw_individual", tools.initIterate, cls, tb.expr)
    tb.register("individual", _corrected, tb.raw_individual, pset)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("parse", parse_individual, pset=pset)
    tb.register("mate", gp.cxOnePoint)
    tb.register("mutate", mutUniformLoss, pset=pset, min_=mutation_depths[0],
                max_=mutation_depths[1])
    limit = heightLimit(max_height)
    tb.decorate("mate", limit)
    tb.decorate("mutate", limit)
    tb.register("select", tools.selTournament, tournsize=tournsize)
    tb.register("correct", correctArguments, pset=pset)
    if evaluate is not None:
        tb.register("evaluate", evaluate)
    tb.register("map", map_fn or get_map())
    tb.pset = pset
    return tb


def fitness_stats() -> tools.Statistics:
    """min / median / max of the finite fitnesses, and how many are rejected (∞)."""
    import numpy as np

    def finite(values):
        return [v for v in values if np.isfinite(v)]

    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("min", lambda v: float(min(finite(v))) if finite(v) else float("inf"))
    stats.register("median", lambda v: float(np.median(finite(v))) if finite(v) else float("inf"))
    stats.register("max", lambda v: float(max(finite(v))) if finite(v) else float("inf"))
    stats.register("rejected", lambda v: int(sum(1 for x in v if not np.isfinite(x))))
    return stats
