"""Exact lexicase selection probabilities of small populations, by enumeration.

Lexicase selection (Spector 2012) has no closed form for its selection probabilities (La Cava,
Helmuth, Spector & Moore 2019 give one as a sum over case orders, §3; computing them is hard in
general).  For small populations they can be enumerated exactly: a selection event is a walk
through pools of survivors, and the probability that individual ``i`` is finally picked from pool
``S`` with the cases ``R`` still unused is::

    P(i | S, R) = 1[i in S] / |S|                            if |S| = 1 or no case of R changes S
    P(i | S, R) = (1 / |R|) * sum_{c in R} P(i | S_c, R - {c})  otherwise,

where ``S_c`` are the members of ``S`` that survive case ``c`` on ``S``.  The walk starts from the
whole population and every case.  Memoisation over the states makes this practical:

* with exact ties or a fixed epsilon (a number, one per case, or the semi-dynamic MAD, which is
  fixed per case) the probability depends on ``S`` alone: every case already used keeps all of
  ``S`` (the pool minimum only rises, so every survivor stays within epsilon of it), so the next
  case that changes ``S`` is uniform among those that change it.  States are the distinct
  reachable pools, and identical error vectors are merged (they share their fate; the group's
  probability is split evenly among its members);
* with the dynamic MAD (epsilon computed over the current pool, each case used once, as in
  ``deap.tools.selAutomaticEpsilonLexicase``) a used case may change a smaller pool, so states are
  (pool, unused cases) pairs, and duplicates are kept apart (they count in the MAD).

States are processed largest first (every transition shrinks the pool, or the set of unused
cases), each accumulating the probability of reaching it; a terminal pool spreads its
probability evenly over its members.
"""
from __future__ import annotations

import itertools
import numbers
import operator
from fractions import Fraction
from typing import Any

import numpy as np

from .lexicase import case_mad, parse_epsilon
from .lexicase_util import dynamic_keep, validate_errors

__all__ = ["lexicase_probabilities"]

#: default bound on the number of distinct states :func:`lexicase_probabilities` enumerates
MAX_STATES = 1_000_000


def _too_many(max_states, shape, what):
    n, m = shape
    return ValueError(f"lexicase_probabilities: more than max_states={max_states} distinct "
                      f"{what} to enumerate for this {n} x {m} error matrix; raise max_states= "
                      f"(time and memory grow with it) or estimate the probabilities from the "
                      f"frequencies of lexicase(errors, k) with a large k")


def _ordered(X, float_values):
    """Values in the lexicase order for exact comparison: NaN -> +inf (NaN ties with the worst
    error), -0.0 -> 0.0; float64 when epsilon thresholds are involved (they are float64)."""
    if X.dtype.kind != "f" and not float_values:
        return X
    V = X.astype(np.float64)
    V[np.isnan(V)] = np.inf
    V += 0.0
    return V


def _bits(S):
    """The members (bit positions) of the pool ``S``, an int bit set."""
    out = []
    while S:
        low = S & -S
        out.append(low.bit_length() - 1)
        S ^= low
    return out


def _case_tables(U, eps):
    """Per case: the rank of every row's value among the case's distinct values, the rows of
    each value (bit sets), and the rows that survive when the pool's best is that value."""
    rank, equal, keep = [], [], []
    for c in range(U.shape[1]):
        vals, r = np.unique(U[:, c], return_inverse=True)
        r = r.reshape(-1).tolist()
        sets = [0] * vals.size
        for row, j in enumerate(r):
            sets[j] |= 1 << row
        rank.append(r)
        equal.append(sets)
        if eps is None:
            keep.append(sets)
            continue
        upto = list(itertools.accumulate(sets, operator.or_))
        lim = np.searchsorted(vals, vals + eps[c], side="right")   # float64, as lexicase does
        keep.append([upto[i - 1] for i in lim.tolist()])
    return rank, equal, keep


def _fixed(U, eps, exact, max_states, shape):
    """Probabilities of the rows of ``U`` (distinct), exact ties or a fixed per-case epsilon:
    the state is the pool alone, an int bit set over the rows."""
    G, m = U.shape
    rank, equal, keep = _case_tables(U, eps)
    prob: list = [Fraction(0) if exact else 0.0 for _ in range(G)]
    layers: dict[int, dict[int, Any]] = {G: {(1 << G) - 1: Fraction(1) if exact else 1.0}}
    states = 1
    for size in range(G, 0, -1):
        for S, mass in layers.pop(size, {}).items():
            if size == 1:
                prob[S.bit_length() - 1] += mass
                continue
            members = None
            children: dict[int, int] = {}
            for c in range(m):
                sets = equal[c]
                if 4 * size < len(sets):          # a few members: their best value directly
                    if members is None:
                        members = _bits(S)
                    rc = rank[c]
                    j = min(rc[i] for i in members)
                else:                             # the first value some member has
                    j = 0
                    while not S & sets[j]:
                        j += 1
                child = S & keep[c][j]
                if child != S:
                    children[child] = children.get(child, 0) + 1
            if not children:                      # no case changes the pool: a uniform pick
                share = mass / size
                for i in members if members is not None else _bits(S):
                    prob[i] += share
                continue
            n_eff = sum(children.values())
            for child, count in children.items():
                share = mass * Fraction(count, n_eff) if exact else mass * count / n_eff
                bucket = layers.setdefault(child.bit_count(), {})
                if child in bucket:
                    bucket[child] += share
                    continue
                states += 1
                if states > max_states:
                    raise _too_many(max_states, shape, "pools")
                bucket[child] = share
    return prob


def _dynamic(V, exact, max_states):
    """Probabilities of the rows of ``V`` with epsilon = MAD over the current pool (each case used
    once): the state is (pool, unused cases)."""
    n, m = V.shape
    prob: list = [Fraction(0) if exact else 0.0 for _ in range(n)]
    full = (1 << m) - 1
    layers: dict[int, dict[tuple, list]] = {m: {(b"", full): [Fraction(1) if exact else 1.0,
                                                              np.arange(n), full]}}
    states = 1
    for left in range(m, -1, -1):
        for mass, idx, unused in layers.pop(left, {}).values():
            cases = [c for c in range(m) if unused >> c & 1]
            moves = [(c, dynamic_keep(V[idx, c])) for c in cases] if idx.size > 1 else []
            if not any(not keep.all() for _, keep in moves):    # nothing can change the pool
                share = mass / idx.size
                for i in idx:
                    prob[i] += share
                continue
            share = mass / len(cases)
            for c, keep in moves:
                child = idx[keep]
                key = (child.tobytes(), unused & ~(1 << c))
                bucket = layers.setdefault(left - 1, {})
                if key in bucket:
                    bucket[key][0] += share
                    continue
                states += 1
                if states > max_states:
                    raise _too_many(max_states, (n, m), "(pool, unused cases) states")
                bucket[key] = [share, child, key[1]]
    return prob


def lexicase_probabilities(errors, epsilon=None, *, epsilon_mode="semi-dynamic", exact=False,
                           max_states: int = MAX_STATES):
    """Exact probability that each row of ``errors`` is selected by one lexicase selection event.

    The oracle of the lexicase family: ``selLexicase`` / :func:`deapnn.operators.lexicase.lexicase`
    (``epsilon=None``), ``selEpsilonLexicase`` (a number, one per case, or ``"auto"``: the
    semi-dynamic MAD), ``selAutomaticEpsilonLexicase`` (``"auto"`` with ``epsilon_mode="dynamic"``),
    and down-sampled lexicase given its sample (``errors[:, cases]``).  Also a diagnostic: how
    concentrated selection is, how far an approximation (DALex, plexicase) is from it.  Computed by
    enumerating the selection events over every case order, memoised over the pools of survivors
    (see the module docstring), so it is for small populations.

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors, lower is better, in the order of
        :func:`deapnn.operators.lexicase.lexicase`: ``-inf`` best, ``+inf`` worst, NaN tied with
        ``+inf``; a case on which the pool is all ``+inf``/NaN keeps the whole pool.
    epsilon : None, float, array_like or "auto", optional
        ``None`` (exact ties, default); a number or one per case (survive when ``error <=
        pool_best + epsilon``, float64 thresholds); ``"auto"``: the median absolute deviation of
        each case's finite values, as :func:`deapnn.operators.lexicase.lexicase` takes it.
    epsilon_mode : {"semi-dynamic", "dynamic"}, optional
        For ``"auto"``: the MAD over the whole population (default, a fixed epsilon per case) or
        over the current pool (each case used once per event).
    exact : bool, optional
        ``True``: return ``fractions.Fraction`` probabilities (an object array), computed
        without rounding (the comparisons are the float comparisons above).
    max_states : int, optional
        Refuse (``ValueError``) when the enumeration reaches more than this many distinct states
        (default 1,000,000): pools of survivors with exact or fixed epsilon, (pool, unused cases)
        pairs with the dynamic MAD.  The number depends on the errors more than on the sizes:
        continuous errors (few ties) need few pools, binary ones many (300 random rows of 16
        binary cases: some 10**5 pools, seconds; an evolved 6-multiplexer population, 200 x 64:
        more than 2 * 10**5); the dynamic MAD multiplies them by up to ``2 ** n_cases``.  Beyond
        the bound, the frequencies of ``lexicase(errors, k)`` with a large ``k`` estimate them.

    Returns
    -------
    numpy.ndarray
        One probability per row (float64, or ``Fraction`` objects with ``exact=True``), summing
        to 1; identical rows get equal shares.  An empty population gives an empty array; no
        cases gives the uniform distribution.

    Raises
    ------
    ValueError
        On a malformed matrix, an invalid ``epsilon``/``epsilon_mode``/``max_states``, or more
        than ``max_states`` states to enumerate.

    Examples
    --------
    >>> from deapnn.operators import lexicase_probabilities
    >>> errors = [[0, 1, 2], [1, 0, 2], [2, 2, 0], [0, 1, 2]]     # rows 0 and 3 identical
    >>> [str(p) for p in lexicase_probabilities(errors, exact=True)]
    ['1/6', '1/3', '1/3', '1/6']

    References
    ----------
    Spector 2012 (lexicase selection); La Cava, Spector & Danai 2016 (epsilon-lexicase, the MAD
    epsilon); La Cava, Helmuth, Spector & Moore 2019, Evolutionary Computation 27(3), §3 (the
    probability of selection as a sum over case orders) and the semi-dynamic/dynamic variants.
    """
    X = validate_errors(errors)
    n, m = X.shape
    eps, auto, dynamic = parse_epsilon(epsilon, epsilon_mode, m)
    if isinstance(max_states, bool) or not isinstance(max_states, numbers.Integral) \
            or max_states < 1:
        raise ValueError(f"max_states must be an integer >= 1, got {max_states!r}")
    if auto and not dynamic:
        eps = case_mad(X)
    kind = object if exact else np.float64
    if n == 0:
        return np.empty(0, dtype=kind)
    if m == 0 or n == 1:
        return np.array([Fraction(1, n) if exact else 1.0 / n] * n, dtype=kind)
    V = _ordered(X, eps is not None or dynamic)
    if dynamic:
        return np.array(_dynamic(V, exact, max_states), dtype=kind)
    U, inverse, counts = np.unique(V, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    group = _fixed(U, eps, exact, max_states, (n, m))
    return np.array([group[g] / int(counts[g]) for g in inverse], dtype=kind)
