"""Aging (regularized) evolution operators — Real, Aggarwal, Huang & Le, AAAI 2019, §2 and
Algorithm 1 "Aging evolution"; used by NLFS (Morgan & Hougen 2024 §3.4).

Age is a birth counter stored on each individual (``ind.birth``: smaller = older), set by the
algorithm when an individual enters the population: the initial members share one birth (as in
Morgan & Hougen's implementation, where every seeded member starts at age 0), each child gets a
later one.  The member removed is the oldest, the weakest among equally old ones, so the
initial members leave weakest first.
"""
from __future__ import annotations

import random
from operator import attrgetter


def check_sample_size(population_size: int, sample_size: int) -> None:
    """Raise ``ValueError`` unless ``sample_size`` members can be sampled from a population of
    ``population_size`` (1 <= S <= P): the one rule of the aging tournament's arguments, used by
    :func:`selAgingTournament` and :func:`deapnn.algorithms.eaRegularizedEvolution`."""
    if sample_size < 1:
        raise ValueError(f"sample_size must be >= 1, got {sample_size}")
    if population_size < sample_size:
        raise ValueError(f"population of {population_size} is smaller than the sample size "
                         f"{sample_size}")


def selAgingTournament(individuals, sample_size: int, k: int = 1, fit_attr: str = "fitness"):
    """Return ``k`` individuals, each the fittest of ``sample_size`` members drawn uniformly
    **with replacement** (Real et al. 2019, Algorithm 1: ``sample ← random element of population``
    S times; ``parent ← highest-accuracy model in sample``).

    Uses the ``random`` module, so ``random.seed`` reproduces a selection.  Ties go to the member
    drawn first.
    """
    check_sample_size(len(individuals), sample_size)
    get = attrgetter(fit_attr)
    chosen = []
    for _ in range(k):
        sample = [random.choice(individuals) for _ in range(sample_size)]
        chosen.append(max(sample, key=get))
    return chosen


def oldestIndex(population, fit_attr: str = "fitness") -> int:
    """Index of the member :func:`replaceOldest` removes: the smallest ``birth``; among equally
    old members the weakest; among those the first."""
    if not population:
        raise ValueError("cannot remove the oldest member of an empty population")
    get = attrgetter(fit_attr)
    oldest = min(ind.birth for ind in population)
    candidates = [i for i, ind in enumerate(population) if ind.birth == oldest]
    return min(candidates, key=lambda i: get(population[i]))


def replaceOldest(population, child, fit_attr: str = "fitness"):
    """Remove the oldest member of ``population`` (a list, changed in place), append ``child``
    and return the removed individual (Real et al. 2019, Algorithm 1: ``remove dead from left of
    population``).  Ties — the initial members share one age — go to the weakest among the
    oldest, then to the first listed (Morgan & Hougen's implementation of §3.4: the worst of
    the oldest is replaced)."""
    if not hasattr(child, "birth"):
        raise ValueError("the child needs a 'birth' attribute (its age counter)")
    dead = population.pop(oldestIndex(population, fit_attr))
    population.append(child)
    return dead
