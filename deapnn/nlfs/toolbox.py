"""DEAP toolbox for NLFS (Morgan & Hougen 2024 §3).

The individual class is a plain, importable subclass of :class:`LossGraph` with a DEAP fitness
(what ``creator.create("LossIndividual", LossGraph, fitness=FitnessMax)`` would build), so SCOOP
workers unpickle it without re-running ``creator`` (a class made by ``creator`` in one process
does not exist in another after a map).
"""
from __future__ import annotations

import copy
import random

from deap import base

from ..operators.aging import selAgingTournament
from ..operators.graph import checkIntegrity, mutGraph

from ..losses.graph import LossGraph
from ..runtime import get_map


class FitnessMax(base.Fitness):
    weights = (1.0,)


class LossIndividual(LossGraph):
    """A loss genome with a single-objective maximised fitness (validation accuracy)."""

    def __init__(self, nodes=None, flip: bool = False):
        super().__init__(nodes, flip)
        self.fitness = FitnessMax()


def random_individual(rng=None, max_tries: int = 100_000, wiring: str = "reference",
                      flip_rule: str = "start") -> LossIndividual:
    """A random valid genome that passes the integrity check (its ``flip`` set by the check,
    ``flip_rule`` as :func:`checkIntegrity`); ``wiring``: see :meth:`LossGraph.random`."""
    rng = rng or random
    for _ in range(max_tries):
        g = LossIndividual.random(rng, wiring=wiring)
        res = checkIntegrity(g, flip_rule)
        if res.accept:
            g.flip = res.flip
            return g
    raise RuntimeError(f"no integrity-passing random loss graph in {max_tries} tries")


def decode(genome) -> LossIndividual:
    return LossIndividual.from_json(genome)


def encode(ind) -> str:
    return ind.to_json()


def make_toolbox(evaluate, population: list, map_fn=None, max_tries: int = 2500,
                 wiring: str = "reference", flip_rule: str = "start") -> base.Toolbox:
    """Toolbox for :func:`deapnn.algorithms.regularized.eaRegularizedEvolution`.

    ``population`` is the live list the algorithm changes in place: ``mutate`` rejects children
    that duplicate any current member (fingerprint L2 ≤ 0.01 or identical expression).
    ``wiring`` chooses how random genomes and mutations pick inputs, ``flip_rule`` how the
    integrity check orients a curve with two bends (:func:`mutGraph`).
    """
    tb = base.Toolbox()
    tb.register("individual", random_individual, wiring=wiring, flip_rule=flip_rule)
    tb.register("evaluate", evaluate)
    tb.register("map", map_fn or get_map())
    tb.register("clone", copy.deepcopy)
    tb.register("mutate", mutGraph, population=population, max_tries=max_tries, wiring=wiring,
                flip_rule=flip_rule)
    tb.register("select", selAgingTournament)
    tb.register("encode", encode)
    tb.register("decode", decode)
    return tb
