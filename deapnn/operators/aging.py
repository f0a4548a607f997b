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
    """Raise :class:`deapnn.config.ConfigError` (a ``ValueError``) naming ``sample_size`` unless
    ``sample_size`` members can be sampled from a population of ``population_size``
    (1 <= S <= P): the one rule of the aging tournament's arguments, used by
    :func:`selAgingTournament`, :func:`deapnn.algorithms.eaRegularizedEvolution` and
    ``deapnn.nlfs.NLFSConfig`` (one message from each)."""
    from ..config import ConfigError
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ConfigError(f"sample_size must be an integer >= 1, got {sample_size!r}",
                          "sample_size")
    if population_size < sample_size:
        raise ConfigError(f"sample size {sample_size} exceeds the population size "
                          f"{population_size}", "sample_size")


def selAgingTournament(individuals, sample_size: int, k: int = 1, fit_attr: str = "fitness"):
    """Aging-evolution tournament: ``k`` individuals, each the fittest of ``sample_size`` members
    drawn uniformly **with replacement**.

    Uses the ``random`` module, so ``random.seed`` reproduces a selection. Ties go to the member
    drawn first.

    Parameters
    ----------
    individuals : list
        The population.
    sample_size : int
        S, the members drawn per tournament (1 <= S <= ``len(individuals)``).
    k : int, optional
        Number of tournaments, i.e. of individuals returned (default 1).
    fit_attr : str, optional
        Attribute compared (default ``"fitness"``).

    Returns
    -------
    list
        The ``k`` winners (references).

    Raises
    ------
    ValueError
        When ``sample_size`` is < 1 or larger than the population.

    Examples
    --------
    >>> import random
    >>> from deap import base, creator
    >>> from deapnn.operators import selAgingTournament
    >>> creator.create("FitnessAge", base.Fitness, weights=(1.0,))
    >>> creator.create("IndAge", list, fitness=creator.FitnessAge)
    >>> pop = [creator.IndAge([i]) for i in range(3)]
    >>> for ind, f in zip(pop, (0.3, 0.9, 0.5)):
    ...     ind.fitness.values = (f,)
    >>> random.seed(0)
    >>> [ind[0] for ind in selAgingTournament(pop, sample_size=2, k=3)]
    [1, 1, 1]

    References
    ----------
    Real, Aggarwal, Huang & Le 2019, "Regularized evolution for image classifier architecture
    search" (AAAI), §2 and Algorithm 1 (``sample ← random element of population`` S times;
    ``parent ← highest-accuracy model in sample``); Morgan & Hougen 2024 (arXiv 2403.08793), §3.4.
    """
    check_sample_size(len(individuals), sample_size)
    get = attrgetter(fit_attr)
    chosen = []
    for _ in range(k):
        sample = [random.choice(individuals) for _ in range(sample_size)]
        chosen.append(max(sample, key=get))
    return chosen


def oldestIndex(population, fit_attr: str = "fitness") -> int:
    """Index of the member :func:`replaceOldest` removes.

    That is the member with the smallest ``birth``; among equally old members the weakest; among
    those the first listed.

    Parameters
    ----------
    population : list
        Individuals carrying a ``birth`` attribute (smaller = older).
    fit_attr : str, optional
        Attribute compared among the oldest (default ``"fitness"``).

    Returns
    -------
    int
        The index in ``population``.

    Raises
    ------
    ValueError
        When ``population`` is empty.

    Examples
    --------
    >>> from types import SimpleNamespace as Ind
    >>> from deapnn.operators import oldestIndex
    >>> pop = [Ind(birth=0, fitness=0.3), Ind(birth=0, fitness=0.1), Ind(birth=1, fitness=0.0)]
    >>> oldestIndex(pop)                       # the weakest of the two oldest
    1

    References
    ----------
    Real, Aggarwal, Huang & Le 2019 (AAAI), Algorithm 1; Morgan & Hougen 2024 (arXiv
    2403.08793), §3.4 (the worst of the oldest is replaced, as in the authors' implementation).
    """
    if not population:
        raise ValueError("cannot remove the oldest member of an empty population")
    get = attrgetter(fit_attr)
    oldest = min(ind.birth for ind in population)
    candidates = [i for i, ind in enumerate(population) if ind.birth == oldest]
    return min(candidates, key=lambda i: get(population[i]))


def replaceOldest(population, child, fit_attr: str = "fitness"):
    """Remove the oldest member of ``population``, append ``child``, return the removed one.

    Ties — the initial members share one age — go to the weakest among the oldest, then to the
    first listed (:func:`oldestIndex`).

    Parameters
    ----------
    population : list
        Individuals with a ``birth`` attribute; changed in place.
    child : object
        The newcomer; it needs a ``birth`` attribute (its age counter).
    fit_attr : str, optional
        Attribute compared among the oldest (default ``"fitness"``).

    Returns
    -------
    object
        The removed individual.

    Raises
    ------
    ValueError
        When ``child`` has no ``birth``, or ``population`` is empty.

    Examples
    --------
    >>> from types import SimpleNamespace as Ind
    >>> from deapnn.operators import replaceOldest
    >>> pop = [Ind(birth=0, fitness=0.3), Ind(birth=0, fitness=0.1)]
    >>> replaceOldest(pop, Ind(birth=1, fitness=0.2)).fitness
    0.1
    >>> [ind.birth for ind in pop]
    [0, 1]

    References
    ----------
    Real, Aggarwal, Huang & Le 2019, "Regularized evolution for image classifier architecture
    search" (AAAI), Algorithm 1 (``remove dead from left of population``); Morgan & Hougen 2024
    (arXiv 2403.08793), §3.4 (the worst of the oldest is replaced, as in the authors'
    implementation).
    """
    if not hasattr(child, "birth"):
        raise ValueError("the child needs a 'birth' attribute (its age counter)")
    dead = population.pop(oldestIndex(population, fit_attr))
    population.append(child)
    return dead
