"""DALex: diversely aggregated lexicase selection (Ni, Ding & Spector 2024, "DALex: Lexicase-like
selection via diverse aggregation", EuroGP).

For each selection event, importance scores ``I_c ~ N(0, std)`` are drawn for every case, turned
into weights with a softmax, and the individual with the smallest weighted error sum is selected.  A
large ``std`` (the paper's "particularity pressure") concentrates the weight on a few cases and
behaves like lexicase selection; a small one approaches selection on the mean error.  All k events
are one matrix product ``softmax(I) @ errors.T``, done in batches to bound memory.
"""
from __future__ import annotations

import numbers

import numpy as np

from .lexicase_util import as_generator, check_population, validate_errors, validate_k

__all__ = ["dalex"]


def _finite_errors(X):
    """Float errors in the lexicase order with finite stand-ins: on each case, NaN and ``+inf``
    become the worst finite error plus the case's finite range plus one, ``-inf`` the best finite
    error minus as much."""
    E = X.astype(np.float64)
    bad = ~np.isfinite(E)
    if bad.any():
        F = np.where(bad, np.nan, E)
        with np.errstate(all="ignore"):
            hi = np.nanmax(F, axis=0)
            lo = np.nanmin(F, axis=0)
        none = np.isnan(hi)
        gap = np.where(none, 1.0, hi - lo + 1.0)
        worst = np.where(none, 0.0, hi) + gap
        best = np.where(none, 0.0, lo) - gap
        neg = E == -np.inf
        E[bad] = np.broadcast_to(worst, E.shape)[bad]
        E[neg] = np.broadcast_to(best, E.shape)[neg]
    return E


def dalex(errors, k, *, std: float = 200.0, rng=None):
    """Select ``k`` row indices of ``errors`` (lower is better) by DALex (Ni, Ding & Spector 2024).

    For each selection event, importance scores ``I_c ~ N(0, std)`` are drawn for every case and
    turned into weights with a softmax; the row with the smallest weighted error sum is selected.
    Each case's errors are first shifted so that its best is 0: the weights sum to 1, so a
    constant added to a case cannot change the selection, and the shift keeps it so in floating
    point (with a large ``std`` the lower-priority weights are tiny, and an offset as large as
    the errors themselves, e.g. negated maximised fitness values, rounded them away).

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors, lower is better. Non-finite errors keep the order
        of :func:`deapnn.operators.lexicase.lexicase`: NaN and ``+inf`` count as worse than the
        worst finite error of their case by the case's range plus one, ``-inf`` as better than the
        best by as much.
    k : int
        Number of selections (>= 0).
    std : float, optional
        Standard deviation of the importance scores (> 0), the paper's particularity pressure; a
        large one (200, the default) behaves like lexicase selection, a small one like selection on
        the mean error.
    rng : None, int, numpy.random.Generator or random.Random, optional
        Source of randomness, as for :func:`deapnn.operators.lexicase.lexicase`.

    Returns
    -------
    numpy.ndarray
        ``k`` row indices; exact ties are broken uniformly at random.

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import dalex
    >>> errors = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]])
    >>> dalex(errors, k=4, std=200.0, rng=np.random.default_rng(0)).shape
    (4,)

    References
    ----------
    Ni, Ding & Spector 2024, "DALex: Lexicase-like selection via diverse aggregation" (EuroGP): the
    selection procedure and its particularity pressure.
    """
    X = validate_errors(errors)
    k = validate_k(k)
    check_population(X, k)
    if not isinstance(std, numbers.Real) or not np.isfinite(std) or std <= 0:
        raise ValueError(f"std must be a finite number > 0, got {std!r}")
    gen = as_generator(rng)
    n, m = X.shape
    out = np.empty(k, dtype=np.intp)
    if k == 0:
        return out
    if m == 0:
        out[:] = gen.integers(n, size=k)
        return out
    E = _finite_errors(X)
    E -= E.min(axis=0, keepdims=True)           # best = 0 per case: offsets cannot matter
    B = max(1, min(k, (1 << 22) // max(n + m, 1)))
    for start in range(0, k, B):
        b = min(B, k - start)
        scores = gen.normal(0.0, std, size=(b, m))
        scores -= scores.max(axis=1, keepdims=True)          # stable softmax
        w = np.exp(scores)
        w /= w.sum(axis=1, keepdims=True)
        agg = w @ E.T                                         # (b, n) weighted error sums
        ties = agg == agg.min(axis=1, keepdims=True)
        out[start:start + b] = np.argmax(ties * gen.random((b, n)), axis=1)
    return out
