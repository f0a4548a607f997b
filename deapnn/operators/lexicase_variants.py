"""DEAP toolbox operators for further lexicase variants, with the vocabulary and behaviour of
:mod:`deapnn.operators.lexicase_deap`: per-case values from ``fitness.values`` (the sign of each
weight honoured) or ``key=`` errors (``key_weights=`` for higher-is-better ``key`` values), NaN
ranking worst, ``rng=`` as there, ``k <= 0`` selecting nothing, and defaults for every option so
that ``toolbox.register("select", op)`` works.

References: Ding, Pantridge & Spector 2023 (probabilistic lexicase selection).
"""
from __future__ import annotations

from .lexicase_deap import select_individuals
from .plexicase import plexicase

__all__ = ["selPlexicase"]


def selPlexicase(individuals, k, alpha=1.0, *, key=None, key_weights=None, rng=None):
    """Plexicase (Ding et al. 2023); ``key=`` errors, or scores with ``key_weights=1``.

    Probabilistic lexicase selection: the selection distribution is computed once per call from
    the population's per-case values and ``k`` individuals are drawn from it (see
    :func:`deapnn.operators.plexicase.plexicase` for the exact semantics).

    Parameters
    ----------
    individuals : list
        Individuals to select from; one fitness value per case (or ``key``), maximised where its
        weight is > 0.
    k : int
        Number of individuals to select (``k <= 0``: none, as in ``deap.tools``).
    alpha : float, optional
        The paper's alpha (>= 0, default 1): the distribution is reshaped to ``P ** alpha``;
        0 is uniform over the candidates, larger values favour the likeliest ones.
    key : callable, optional
        ``ind -> per-case errors`` (lower is better) instead of fitness values, as in
        :func:`deapnn.operators.lexicase_deap.selLexicase`.
    key_weights : float or sequence of float, optional
        Only with ``key``: > 0 maximises, as in
        :func:`deapnn.operators.lexicase_deap.selLexicase`.
    rng : None, numpy.random.Generator or random.Random, optional
        ``None`` (Python's ``random`` state, reproducible by ``random.seed``), a
        ``numpy.random.Generator`` created once at registration, or a ``random.Random``.

    Returns
    -------
    list
        The ``k`` selected individuals (references, as in DEAP).

    Examples
    --------
    >>> from deap import base
    >>> from deapnn.operators import selPlexicase
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selPlexicase, alpha=2.0)

    References
    ----------
    Ding, Pantridge & Spector 2023, "Probabilistic Lexicase Selection" (GECCO; arXiv
    2305.11681).
    """
    return select_individuals(individuals, k, key, rng, plexicase, key_weights=key_weights,
                              alpha=alpha)
