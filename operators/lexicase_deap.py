"""DEAP drop-in lexicase selection operators (``deap.tools`` signatures and semantics).

Each wrapper builds the (individuals x cases) error matrix once per call and runs the exact, vectorised
:func:`operators.lexicase.lexicase` (or :func:`operators.dalex.dalex`).

**Per-case values.** By default they are ``ind.fitness.values``, one per case, with the sign of each
weight honoured as DEAP does (weight > 0: maximised, so its error is ``-value``).  ``key=`` gives
lower-is-better errors instead, e.g. ``key=operator.attrgetter("case_errors")`` beside a scalar
fitness.  Under SCOOP or multiprocessing, evaluation runs in another process and only the value
``evaluate`` *returns* comes back: an attribute set on the individual inside ``evaluate`` is lost
(the main process's individual keeps no value, or a stale one cloned from its parent).  Keep the
per-case values in ``fitness.values``, or return them from ``evaluate`` and assign them to the
individual in the main process (both shown in ``examples/lexicase_symbreg.py``).

**Non-finite values** follow DEAP's order: on a minimised case ``-inf`` is the best value and
``+inf`` the worst; on a maximised case the reverse.  NaN always ranks worst (tied with the worst
infinity): DEAP's own operators crash on it or let it win.

**Randomness** comes from Python's ``random`` module by default, so ``random.seed`` reproduces a
run as with ``deap.tools``.  To use a separate stream, register a ``numpy.random.Generator`` once:
``toolbox.register("select", selLexicase, rng=np.random.default_rng(0))``.  An int ``rng`` would
re-seed every call (every generation would repeat the same case orders), so it draws a warning.

**Names.** One vocabulary with the array API: ``epsilon``, ``epsilon_mode``, ``downsample``,
``std``, ``key``, ``rng``; every operator has defaults, so ``toolbox.register("select", op)`` works.
``mode=`` (selAutomaticEpsilonLexicase) and ``rate=`` (selDownsampledLexicase) are deprecated
aliases of ``epsilon_mode=`` and ``downsample=``.

References: Spector 2012 (lexicase); La Cava, Spector & Danai 2016 (epsilon-lexicase, MAD epsilon);
Hernandez, Lalejini, Dolson & Ofria 2019 (down-sampled lexicase); Ni, Ding & Spector 2024 (DALex).
"""
from __future__ import annotations

import numbers
import random
import warnings

import numpy as np

from .dalex import dalex
from .lexicase import lexicase
from .lexicase_util import validate_k

__all__ = ["selLexicase", "selEpsilonLexicase", "selAutomaticEpsilonLexicase",
           "selDownsampledLexicase", "selDALex", "case_errors"]

_REMOTE = ("Per-case errors stored as an attribute inside evaluate are lost when evaluate runs in "
           "another process (SCOOP, multiprocessing): only its return value comes back. Keep them "
           "in fitness.values (one value per case, no key=), or return them from evaluate and "
           "assign them to the individual in the main process (examples/lexicase_symbreg.py "
           "--fitness mean shows how).")


def _rows_matrix(rows, what, unevaluated):
    """Stack per-individual value sequences into a float matrix, or name the individual at fault."""
    try:
        E = np.array(rows, dtype=np.float64)
        if E.ndim == 2:
            return E
    except (ValueError, TypeError):
        pass
    width = None
    for i, row in enumerate(rows):
        try:
            a = np.asarray(row, dtype=np.float64)
        except (ValueError, TypeError):
            raise ValueError(f"{what} of individual {i} is not a sequence of numbers: "
                             f"{row!r:.80}") from None
        if a.ndim != 1:
            raise ValueError(f"{what} of individual {i} must be one flat sequence of per-case "
                             f"values, got shape {a.shape}")
        if a.size == 0:
            raise ValueError(unevaluated.format(i=i))
        if width is None:
            width, first = a.size, i
        elif a.size != width:
            raise ValueError(f"individual {i} has {a.size} {what} but individual {first} has "
                             f"{width}: every individual needs one value per case")
    raise ValueError(f"{what} must be equal-length numeric sequences")     # not reached


def case_errors(individuals, key=None):
    """(individuals x cases) float matrix, lower is better.

    Without ``key`` the values are ``ind.fitness.values``, negated on cases whose weight is > 0
    (DEAP maximises those); with ``key`` they are ``key(ind)`` as given.  Raises ``ValueError``
    naming the first individual at fault (not evaluated, wrong number of values, ``key`` returned
    ``None``).
    """
    if len(individuals) == 0:
        return np.empty((0, 0))
    if key is not None:
        rows = []
        for i, ind in enumerate(individuals):
            try:
                row = key(ind)
            except AttributeError as exc:
                raise AttributeError(f"key failed on individual {i}: {exc}. {_REMOTE}") from exc
            if row is None:
                raise ValueError(f"key returned None for individual {i}. {_REMOTE}")
            rows.append(row)
        E = _rows_matrix(rows, "key values",
                         "key returned no values for individual {i}: was it evaluated?")
        if E.shape[1] == 0:
            raise ValueError("key returned no values for individual 0: was it evaluated?")
        return E
    weights = np.asarray(individuals[0].fitness.weights, dtype=np.float64)
    E = _rows_matrix([ind.fitness.values for ind in individuals], "fitness values",
                     "individual {i} has no fitness values: was it evaluated?")
    if E.shape[1] != weights.size:
        for i, ind in enumerate(individuals):
            if len(ind.fitness.values) == 0:
                raise ValueError(f"individual {i} has no fitness values: was it evaluated?")
        raise ValueError(f"individuals have {E.shape[1]} fitness values but fitness.weights has "
                         f"{weights.size}: lexicase needs one value (and one weight) per case")
    np.negative(E, out=E, where=weights > 0)
    return E


def _rng(rng):
    if rng is None:
        return random
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        warnings.warn(f"rng={rng} re-seeds every call, so every generation repeats the same case "
                      f"orders; register a generator once instead: "
                      f"rng=np.random.default_rng({rng})", UserWarning, stacklevel=4)
    return rng


def _renamed(old, new, old_value, new_value, default):
    """Value of a renamed keyword: the new name wins; the old one warns (removed next release)."""
    if old_value is None:
        return new_value
    warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
    if new_value != default:
        raise TypeError(f"got both {old}= and {new}=")
    return old_value


def _select(individuals, k, key, rng, select, **kw):
    k = validate_k(k)
    if len(individuals) == 0:
        if k == 0:
            return []
        raise ValueError(f"empty population: cannot select {k} from 0 individuals")
    idx = select(case_errors(individuals, key), k, rng=_rng(rng), **kw)
    return [individuals[i] for i in idx]


def selLexicase(individuals, k, *, key=None, rng=None):
    """Lexicase selection (Spector 2012), exact and vectorised; drop-in for ``deap.tools``.

    :param individuals: list of individuals to select from (may be empty when ``k == 0``).
    :param k: number of individuals to select.
    :param key: optional ``ind -> per-case errors`` (lower is better) instead of fitness values.
    :param rng: ``None`` (Python's ``random`` state, reproducible by ``random.seed``), a
        ``numpy.random.Generator`` created once at registration, or a ``random.Random``.
    :returns: list of the selected individuals (references, as in DEAP).
    """
    return _select(individuals, k, key, rng, lexicase)


def selEpsilonLexicase(individuals, k, epsilon="auto", *, epsilon_mode="semi-dynamic", key=None,
                       rng=None):
    """epsilon-lexicase (La Cava et al. 2016); ``deap.tools.selEpsilonLexicase(individuals, k,
    epsilon)`` calls work unchanged.

    Survivors of a case are those within ``epsilon`` (a number, or one per case) of the pool's best
    value.  ``epsilon="auto"`` (the default) takes the median absolute deviation of each case, over
    the whole population (``epsilon_mode="semi-dynamic"``) or the current pool (``"dynamic"``).
    Other arguments as :func:`selLexicase`.
    """
    return _select(individuals, k, key, rng, lexicase, epsilon=epsilon, epsilon_mode=epsilon_mode)


def selAutomaticEpsilonLexicase(individuals, k, *, epsilon_mode="dynamic", key=None, rng=None,
                                mode=None):
    """epsilon-lexicase with epsilon = median absolute deviation per case (La Cava et al. 2016).

    The default ``epsilon_mode="dynamic"`` matches ``deap.tools.selAutomaticEpsilonLexicase``: the
    MAD and the best value are taken over the current pool, each case is used once.
    ``"semi-dynamic"`` uses the MAD over the whole population (cheaper; the variant La Cava et al.
    2019 recommend).  ``mode=`` is a deprecated alias of ``epsilon_mode=``.
    """
    epsilon_mode = _renamed("mode", "epsilon_mode", mode, epsilon_mode, "dynamic")
    return _select(individuals, k, key, rng, lexicase, epsilon="auto", epsilon_mode=epsilon_mode)


def selDownsampledLexicase(individuals, k, downsample=0.1, *, epsilon=None,
                           epsilon_mode="semi-dynamic", key=None, rng=None, rate=None):
    """Down-sampled lexicase (Hernandez et al. 2019): one random ``downsample`` fraction of the
    cases (at least one; default 0.1) is drawn per call, i.e. per generation, and used for all k
    selections.  ``epsilon``/``epsilon_mode`` as :func:`selEpsilonLexicase` (default exact).
    ``rate=`` is a deprecated alias of ``downsample=``."""
    downsample = _renamed("rate", "downsample", rate, downsample, 0.1)
    return _select(individuals, k, key, rng, lexicase, epsilon=epsilon, epsilon_mode=epsilon_mode,
                   downsample=downsample)


def selDALex(individuals, k, std=200.0, *, key=None, rng=None):
    """DALex (Ni, Ding & Spector 2024): per selection, importance scores ~ N(0, std) per case are
    softmaxed into weights and the individual with the least weighted error sum is chosen.  A large
    ``std`` (default 200) behaves like lexicase selection, a small one like the mean error."""
    return _select(individuals, k, key, rng, dalex, std=std)
