"""Probabilistic lexicase selection (plexicase; Ding, Pantridge & Spector 2023, "Probabilistic
Lexicase Selection", GECCO, arXiv 2305.11681).

Plexicase computes once per population an approximation of the lexicase selection distribution
and samples all ``k`` parents from it.  With the paper's notation (individuals ``y``, cases
``j = 1..m``, errors lower is better), on the distinct error vectors of the population:

1. *candidates*: ``y`` is elite on case ``j`` when its error equals the population's best on
   ``j``; ``E(y)`` is the number of cases on which ``y`` is elite.  Vectors elite on no case, and
   vectors another vector is at least as good as on every case (Pareto-dominated; such a ``y``
   has lexicase probability 0) are removed;
2. *per-case scores*: ``h_j(y) = E(y)`` if ``y`` is elite on ``j``, else 0;
   ``P_j(y) = h_j(y) / sum_y' h_j(y')`` over the candidates, and ``P(y) = (1/m) sum_j P_j(y)``;
3. *reshaping*: ``P_alpha(y) = P(y) ** alpha / sum_y' P(y') ** alpha``.  ``alpha = 1`` is the
   approximation itself; ``alpha = 0`` is uniform over the candidates; ``alpha -> inf`` puts all
   the mass on the candidate(s) of largest ``P``.

Each parent is a candidate vector drawn from ``P_alpha``, then a uniformly random individual with
that error vector (duplicates share their vector's probability, as lexicase's pre-selection
de-duplication has them share its fate).  This is the algorithm of the authors' reference code
(github.com/ld-ing/plexicase, ``CBGP/push4/gp/population.py``: de-duplication, the dominance
filter, the per-case shares weighted by ``E(y)``, the ``alpha`` power); their pairwise filter
removes exactly the vectors named in step 1.  Plexicase is an approximation: step 1 keeps some
vectors lexicase never selects (e.g. one elite only on a case where everyone ties), and the
shares of step 2 are not lexicase's probabilities
(:func:`deapnn.operators.lexicase_exact.lexicase_probabilities` gives those for small
populations).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .lexicase_engine import Groups
from .lexicase_util import as_generator, check_population, validate_errors, validate_k

__all__ = ["plexicase", "plexicase_probabilities"]

_TIE = 1e-9      # alpha = inf: candidates within this relative distance of the largest P tie


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or math.isnan(alpha) \
            or alpha < 0:
        raise ValueError(f"alpha must be a number >= 0 (math.inf allowed), got {alpha!r}")
    return float(alpha)


def _dominated(U, elite, nbest):
    """True for the distinct rows of ``U`` that are elite on no case or that another row is at
    least as good as on every case.  Such a row ``a`` is elite wherever ``b`` is, in particular on
    ``b``'s case with the fewest elites: only those rows are compared with ``b``, first their
    elite sets (bit sets, 64 cases a word), then their errors."""
    out = nbest == 0
    bits = np.packbits(elite, axis=1)
    bits = np.pad(bits, ((0, 0), (0, -bits.shape[1] % 8))).view(np.uint64)
    per_case = elite.sum(axis=0)
    cand = np.flatnonzero(~out)
    rare = np.where(elite[cand], per_case, U.shape[0] + 1).argmin(axis=1)
    hit = np.zeros(U.shape[0], dtype=bool)
    budget = 1 << 22
    for c in np.unique(rare):
        bs, As = cand[rare == c], np.flatnonzero(elite[:, c])
        rows = max(1, budget // max(As.size, 1))
        words = bits[As].T
        for r in range(0, bs.size, rows):
            cover = np.ones((min(rows, bs.size - r), As.size), dtype=bool)   # a elite where b is
            for w, sub in enumerate(bits[bs[r:r + rows]].T):
                cover &= (words[w] & sub[:, None]) == sub[:, None]
            b, a = np.nonzero(cover)
            b, a = bs[r + b], As[a]
            b, a = b[a != b], a[a != b]
            step = max(1, budget // max(U.shape[1], 1))
            for i in range(0, b.size, step):
                weakly = (U[a[i:i + step]] <= U[b[i:i + step]]).all(axis=1)
                hit[b[i:i + step][weakly]] = True
    return out | hit


def _groups(X):
    """Distinct error vectors of ``X`` (n >= 1 rows, m >= 1 cases) in the lexicase order (NaN ->
    +inf, -0.0 -> 0.0), the group of every row and the group sizes."""
    V = X
    if X.dtype.kind == "f":
        V = X.astype(np.float64)
        V[np.isnan(V)] = np.inf
        V += 0.0
    groups = Groups.build(V) if V.shape[0] > 1 else None
    if groups is None:
        return V, np.arange(V.shape[0]), np.ones(V.shape[0], dtype=np.intp)
    return V[groups.reps], groups.inverse, groups.counts


def _group_probabilities(U, alpha):
    """P_alpha of every distinct vector (rows of ``U``); 0 for the removed ones."""
    if U.shape[0] == 1:
        return np.ones(1)
    elite = U == U.min(axis=0)
    nbest = elite.sum(axis=1)
    keep = ~_dominated(U, elite, nbest)
    h = np.where(elite[keep], nbest[keep][:, None], 0).astype(np.float64)
    P = np.zeros(U.shape[0])
    P[keep] = (h / h.sum(axis=0)).sum(axis=1) / U.shape[1]
    if alpha == 1.0:
        return P / P.sum()
    out = np.zeros_like(P)
    if math.isinf(alpha):
        top = keep & (P >= P.max() * (1 - _TIE))
        out[top] = 1.0 / top.sum()
        return out
    logp = alpha * np.log(P[keep])                  # alpha = 0: all equal
    w = np.exp(logp - logp.max())
    out[keep] = w / w.sum()
    return out


def plexicase_probabilities(errors, alpha=1.0):
    """Selection probability of every row of ``errors`` under plexicase (Ding et al. 2023).

    See the module docstring for the three steps; the probability of an error vector is split
    evenly among the rows that share it.

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors, lower is better, in the order of
        :func:`deapnn.operators.lexicase.lexicase`: ``-inf`` best, ``+inf`` worst, NaN tied with
        ``+inf`` (a case where every row is ``+inf``/NaN makes every row elite on it).
    alpha : float, optional
        The paper's alpha (>= 0, default 1): probabilities are reshaped to ``P ** alpha``,
        renormalised; 0 is uniform over the candidates, ``math.inf`` uniform over those of
        largest ``P``.

    Returns
    -------
    numpy.ndarray
        One float64 probability per row, summing to 1; empty for no rows, uniform when there
        are no cases or all rows are identical.

    Examples
    --------
    >>> from deapnn.operators import plexicase_probabilities
    >>> errors = [[0, 0, 2, 2], [2, 0, 0, 2], [2, 2, 2, 0], [1, 0, 1, 1], [2, 2, 2, 2]]
    >>> plexicase_probabilities(errors).tolist()          # 7/20, 7/20, 5/20, 1/20, 0
    [0.35, 0.35, 0.25, 0.05, 0.0]

    References
    ----------
    Ding, Pantridge & Spector 2023, "Probabilistic Lexicase Selection" (GECCO; arXiv 2305.11681),
    the plexicase method: the elite counts ``E(y)``, the scores ``h_j`` and per-case
    probabilities ``P_j``, their mean ``P`` and the reshaping by ``alpha``.
    """
    X = validate_errors(errors)
    alpha = _check_alpha(alpha)
    n, m = X.shape
    if n == 0 or m == 0:
        return np.full(n, 1.0 / max(n, 1))
    U, inverse, counts = _groups(X)
    return _group_probabilities(U, alpha)[inverse] / counts[inverse]


def plexicase(errors, k, alpha=1.0, *, rng=None):
    """Select ``k`` row indices of ``errors`` by plexicase selection (Ding et al. 2023).

    The distribution of :func:`plexicase_probabilities` is computed once and ``k`` rows are
    drawn from it independently (with replacement).

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors, lower is better (non-finite values as in
        :func:`plexicase_probabilities`).
    k : int
        Number of selections (>= 0).
    alpha : float, optional
        The paper's alpha (>= 0, default 1), as in :func:`plexicase_probabilities`.
    rng : None, int, numpy.random.Generator or random.Random, optional
        Source of randomness, as for :func:`deapnn.operators.lexicase.lexicase`.

    Returns
    -------
    numpy.ndarray
        ``k`` row indices (dtype ``intp``).

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import plexicase
    >>> errors = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0], [2, 2, 2]])
    >>> idx = plexicase(errors, k=6, rng=np.random.default_rng(0))
    >>> idx.shape, bool((idx != 3).all())                   # row 3 is elite on no case
    ((6,), True)

    References
    ----------
    Ding, Pantridge & Spector 2023, "Probabilistic Lexicase Selection" (GECCO; arXiv
    2305.11681): sampling parents from the plexicase distribution.
    """
    X = validate_errors(errors)
    alpha = _check_alpha(alpha)
    k = validate_k(k)
    check_population(X, k)
    gen = as_generator(rng)
    n, m = X.shape
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if m == 0:
        return gen.integers(n, size=k).astype(np.intp)
    U, inverse, counts = _groups(X)
    p = _group_probabilities(U, alpha)
    cum = np.cumsum(p)
    g = np.searchsorted(cum, gen.random(k) * cum[-1], side="right")
    g = np.minimum(g, np.flatnonzero(p)[-1])        # u rounded up to the total: the last one
    order = np.argsort(inverse, kind="stable")
    starts = np.cumsum(counts) - counts
    member = np.minimum((gen.random(k) * counts[g]).astype(np.intp), counts[g] - 1)
    return order[starts[g] + member].astype(np.intp)
