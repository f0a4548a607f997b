"""DEAP drop-in lexicase selection operators (``deap.tools`` signatures and semantics).

Each wrapper builds the (individuals x cases) error matrix once per call and runs the exact, vectorised
:func:`operators.lexicase.lexicase`.  Per-case values come from ``ind.fitness.values`` with the sign of
each weight honoured (weight > 0: maximised, so its error is ``-value``), or from ``key(ind)`` giving
lower-is-better errors (e.g. ``key=lambda ind: ind.case_errors`` beside a scalar fitness).  NaN/inf
rank worst.  Randomness is drawn from Python's ``random`` module by default, so ``random.seed``
reproduces a DEAP run; pass ``rng=`` (int seed or ``numpy.random.Generator``) to override.

References: Spector 2012 (lexicase); La Cava, Spector & Danai 2016 (epsilon-lexicase, MAD epsilon);
Hernandez, Lalejini, Dolson & Ofria 2019 (down-sampled lexicase); Ni, Ding & Spector 2024 (DALex).
"""
from __future__ import annotations

import random

import numpy as np

from .dalex import dalex
from .lexicase import lexicase

__all__ = ["selLexicase", "selEpsilonLexicase", "selAutomaticEpsilonLexicase",
           "selDownsampledLexicase", "selDALex", "case_errors"]


def case_errors(individuals, key=None):
    """(individuals x cases) float matrix, lower is better.

    Without ``key`` the values are ``ind.fitness.values``, negated on cases whose weight is > 0
    (DEAP maximises those); with ``key`` they are ``key(ind)`` as given.
    """
    if len(individuals) == 0:
        raise ValueError("empty population: no individuals to select from")
    if key is not None:
        rows = [key(ind) for ind in individuals]
        try:
            E = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"key must return equal-length numeric sequences ({exc})") from None
        if E.ndim != 2:
            raise ValueError(f"key must return one sequence of case errors per individual, "
                             f"got array of shape {E.shape}")
        return E
    weights = np.asarray(individuals[0].fitness.weights, dtype=np.float64)
    try:
        E = np.array([ind.fitness.values for ind in individuals], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"individuals must all have {weights.size} fitness values ({exc})") from None
    if E.ndim != 2 or E.shape[1] != weights.size:
        raise ValueError(f"individuals must have {weights.size} fitness values (one per case, as "
                         f"many as fitness.weights); got array of shape {E.shape}")
    np.negative(E, out=E, where=weights > 0)
    return E


def _rng(rng):
    return random if rng is None else rng


def selLexicase(individuals, k, *, key=None, rng=None):
    """Lexicase selection (Spector 2012), exact and vectorised; drop-in for ``deap.tools``.

    :param individuals: list of individuals to select from.
    :param k: number of individuals to select.
    :param key: optional ``ind -> per-case errors`` (lower is better) instead of fitness values.
    :param rng: ``None`` (Python's ``random`` state), int seed or ``numpy.random.Generator``.
    :returns: list of the selected individuals (references, as in DEAP).
    """
    idx = lexicase(case_errors(individuals, key), k, rng=_rng(rng))
    return [individuals[i] for i in idx]


def selEpsilonLexicase(individuals, k, epsilon, *, key=None, rng=None):
    """epsilon-lexicase with a fixed epsilon (La Cava et al. 2016), as ``deap.tools``.

    Survivors of a case are those within ``epsilon`` (a number, or one per case) of the pool's best
    value.  Other arguments as :func:`selLexicase`.
    """
    idx = lexicase(case_errors(individuals, key), k, epsilon=epsilon, rng=_rng(rng))
    return [individuals[i] for i in idx]


def selAutomaticEpsilonLexicase(individuals, k, *, mode="dynamic", key=None, rng=None):
    """epsilon-lexicase with epsilon = median absolute deviation per case (La Cava et al. 2016).

    The default ``mode="dynamic"`` matches ``deap.tools.selAutomaticEpsilonLexicase``: the MAD and the
    best value are taken over the current pool, each case is used once.  ``mode="semi-dynamic"``
    uses the MAD over the whole population (cheaper; the variant La Cava et al. 2019 recommend).
    """
    idx = lexicase(case_errors(individuals, key), k, epsilon="auto", epsilon_mode=mode,
                   rng=_rng(rng))
    return [individuals[i] for i in idx]


def selDownsampledLexicase(individuals, k, rate, *, epsilon=None, key=None, rng=None):
    """Down-sampled lexicase (Hernandez et al. 2019): one random ``rate`` fraction of the cases
    (at least one) is drawn per call, i.e. per generation, and used for all k selections."""
    idx = lexicase(case_errors(individuals, key), k, epsilon=epsilon, downsample=rate,
                   rng=_rng(rng))
    return [individuals[i] for i in idx]


def selDALex(individuals, k, std, *, key=None, rng=None):
    """DALex (Ni, Ding & Spector 2024): per selection, importance scores ~ N(0, std) per case are
    softmaxed into weights and the individual with the least weighted error sum is chosen."""
    idx = dalex(case_errors(individuals, key), k, std=std, rng=_rng(rng))
    return [individuals[i] for i in idx]
