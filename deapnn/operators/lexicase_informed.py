"""Informed down-sampled lexicase selection (Boldi, Briesch, Sobania, Lalejini, Helmuth, Rothlauf,
Ofria & Spector 2024, "Informed down-sampled lexicase selection: identifying productive training
cases for efficient problem solving", Evolutionary Computation 32(4); GECCO 2023 version).

Random down-sampling (Hernandez et al. 2019) selects on a random fraction of the cases each
generation; informed down-sampling picks that fraction so that its cases are *different* from one
another, judged by which individuals solve them.  The semantics implemented here, those of the
paper and of the authors' code (propeller, ``downsample.cljc``):

* **Solve status.** Individual ``i`` solves case ``c`` when its error is ``<= threshold``
  (default 0: the paper's pass/fail reading, an error of zero solves the case).  NaN and
  ``+inf`` never solve a case, ``-inf`` always does.
* **Case distance.** ``d(a, b)`` = the number of sampled parents that solve exactly one of the
  cases ``a`` and ``b`` (the Hamming distance of the two cases' solve vectors over the sample).
* **Parent sample.** A uniform random ``parent_sample`` fraction of the population (at least one
  individual, without replacement), whose errors on *every* case give the solve vectors.
* **Farthest-first traversal.** The down-sample starts with a uniformly random case; each next
  case is one whose distance to its nearest case already in the down-sample is largest, ties
  broken uniformly at random, until ``max(1, round(downsample * n_cases))`` cases are chosen.
* **Schedule** (the paper's sparse-information variant, Algorithm 2: parent sample rate rho,
  recomputation interval k).  A new down-sample is drawn by the traversal at every generation
  (every call of the operator), from the distances last computed.  Distances are recomputed from
  a fresh parent sample at generations 0, k, 2k ... *after* that generation's selection, and used
  from the next generation on, as in the authors' loop.  Before the first computation every
  distance is maximal (the authors initialise them to the population size), so generation 0 has
  a uniformly random down-sample.

The stateless :func:`informed_downsampled_lexicase` instead computes the distances from the
matrix it is given (as if recomputed every generation with the present population); the
operator :class:`~deapnn.operators.lexicase_informed_deap.selInformedDownsampledLexicase` keeps the
schedule's state between calls.
"""
from __future__ import annotations

import numbers

import numpy as np

from .lexicase import lexicase
from .lexicase_util import as_generator, check_population, clean, validate_errors, validate_k

__all__ = ["case_distances", "farthest_first", "informed_downsampled_lexicase"]

def check_fraction(value, name) -> float:
    v = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else -1.0
    if not 0 < v <= 1:
        raise ValueError(f"{name} must be a fraction in (0, 1], got {value!r}")
    return v


def check_threshold(value) -> float:
    v = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else np.nan
    if not np.isfinite(v):
        raise ValueError(f"threshold must be a finite number, got {value!r}")
    return v


def _solved(X, threshold):
    """Boolean solve matrix: error <= threshold (NaN: never)."""
    return clean(X) <= threshold


def _groups(S):
    """Cases grouped by identical solve vectors: (case -> group, group solve vectors u x p)."""
    U, inverse = np.unique(S.T, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.intp), U


def _traverse(m, size, row, gen):
    """Farthest-first traversal of ``size`` of ``m`` cases; ``row(c)``: distances from ``c``."""
    order = np.empty(size, dtype=np.intp)
    if size == 0:
        return order
    remaining = np.ones(m, dtype=bool)
    near = np.full(m, np.inf)
    c = int(gen.integers(m))
    for i in range(size):
        order[i] = c
        remaining[c] = False
        if i + 1 == size:
            break
        np.minimum(near, row(c), out=near)
        best = near[remaining].max()
        if best == 0:       # every remaining case is a synonym: the ties are all of them
            order[i + 1:] = gen.choice(np.flatnonzero(remaining), size - i - 1, replace=False)
            break
        ties = np.flatnonzero(remaining & (near == best))
        c = int(ties[gen.integers(ties.size)])
    return order


def downsample_size(fraction, m):
    return max(1, int(round(fraction * m))) if m else 0


def case_distances(errors, *, threshold: float = 0.0):
    """Distances between cases: on how many rows their solve status differs (Boldi et al. 2024).

    Parameters
    ----------
    errors : array_like
        (n_rows, n_cases) numeric errors, lower is better, e.g. those of a parent sample.
    threshold : float, optional
        A row solves a case when its error is ``<= threshold`` (default 0; NaN never does).

    Returns
    -------
    numpy.ndarray
        (n_cases, n_cases) int64 matrix: ``d[a, b]`` = number of rows that solve exactly one of
        ``a`` and ``b``; symmetric, zero diagonal.

    Examples
    --------
    >>> from deapnn.operators import case_distances
    >>> case_distances([[0, 0, 1], [0, 1, 1]])      # cases 0 and 2 never agree
    array([[0, 1, 2],
           [1, 0, 1],
           [2, 1, 0]])

    References
    ----------
    Boldi et al. 2024, "Informed down-sampled lexicase selection" (Evolutionary Computation
    32(4)), informed down-sampling: distances between the cases' binary solve vectors.
    """
    S = _solved(validate_errors(errors), check_threshold(threshold)).astype(np.int64)
    return S.T @ (1 - S) + (1 - S).T @ S


def farthest_first(distances, size, *, rng=None):
    """Farthest-first traversal of the cases of a distance matrix (Boldi et al. 2024).

    The first case is uniformly random; every next one has the largest distance to its nearest
    case already chosen, ties broken uniformly at random.

    Parameters
    ----------
    distances : array_like
        (n_cases, n_cases) non-negative distances (as :func:`case_distances` returns).
    size : int
        Number of cases to choose (0 .. n_cases).
    rng : None, int, numpy.random.Generator or random.Random, optional
        Source of randomness, as for :func:`deapnn.operators.lexicase.lexicase`.

    Returns
    -------
    numpy.ndarray
        ``size`` distinct case indices in the order the traversal chose them.

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import farthest_first
    >>> d = np.array([[0, 1, 5], [1, 0, 4], [5, 4, 0]])
    >>> sorted(farthest_first(d, 2, rng=np.random.default_rng(0)).tolist())
    [0, 2]

    References
    ----------
    Boldi et al. 2024, "Informed down-sampled lexicase selection" (Evolutionary Computation
    32(4)), informed down-sampling: the down-sample is a farthest-first traversal of the case
    distances.
    """
    D = np.asarray(distances, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"distances must be a square (n_cases x n_cases) matrix, got shape "
                         f"{D.shape}")
    if np.isnan(D).any() or (D < 0).any():
        raise ValueError("distances must be non-negative numbers")
    m = D.shape[0]
    size = validate_k(size)
    if size > m:
        raise ValueError(f"size must be <= n_cases ({m}), got {size}")
    return _traverse(m, size, lambda c: D[c], as_generator(rng))


class CaseGroups:
    """Case distances of one parent sample, stored compactly: cases with identical solve vectors
    form a group, so only (case -> group, group solve vectors) are kept (a full distance matrix
    would be n_cases squared)."""

    def __init__(self, case_group, group_solve):
        self.case_group, self.group_solve = case_group, group_solve

    @classmethod
    def of(cls, S):
        return cls(*_groups(S))

    def row(self, c):
        U = self.group_solve
        return (U != U[self.case_group[c]]).sum(axis=1)[self.case_group]

    def downsample(self, size, gen):
        return _traverse(self.case_group.size, size, self.row, gen)


def select_on_cases(X, k, cases, gen, epsilon, epsilon_mode):
    cases = np.sort(cases)
    if epsilon is not None and not isinstance(epsilon, str) and np.ndim(epsilon) == 1:
        epsilon = np.asarray(epsilon)[cases]
    return lexicase(X[:, cases], k, epsilon=epsilon, epsilon_mode=epsilon_mode, rng=gen)


def check_epsilon_shape(epsilon, m):
    if epsilon is not None and not isinstance(epsilon, str) and np.ndim(epsilon) == 1 \
            and np.shape(epsilon) != (m,):
        raise ValueError(f"per-case epsilon must have shape ({m},), got {np.shape(epsilon)}")


def parent_distances(X, fraction, threshold, gen):
    n = X.shape[0]
    rows = gen.choice(n, size=min(n, downsample_size(fraction, n)), replace=False)
    return CaseGroups.of(_solved(X[np.sort(rows)], threshold))


def informed_downsampled_lexicase(errors, k, *, downsample: float = 0.1,
                                  parent_sample: float = 0.01, threshold: float = 0.0,
                                  epsilon=None, epsilon_mode="semi-dynamic", rng=None):
    """Select ``k`` row indices by informed down-sampled lexicase selection, in one call.

    A ``parent_sample`` fraction of the rows gives the case distances (:func:`case_distances`),
    a farthest-first traversal (:func:`farthest_first`) picks ``max(1, round(downsample *
    n_cases))`` cases, and lexicase selection runs on those cases for all ``k`` events.  This is
    the schedule with distances recomputed every generation from the present population; the
    paper's schedule (distances every k generations, used from the next one on) needs state and is
    :class:`~deapnn.operators.lexicase_informed_deap.selInformedDownsampledLexicase` (its
    ``select`` method takes error matrices).

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors, lower is better, with the order of non-finite
        values of :func:`deapnn.operators.lexicase.lexicase`.
    k : int
        Number of selection events (>= 0).
    downsample : float, optional
        Fraction of the cases in (0, 1] (default 0.1).
    parent_sample : float, optional
        Fraction of the rows in (0, 1] whose solve vectors give the distances (default 0.01; at
        least one row).
    threshold : float, optional
        An error ``<= threshold`` solves its case (default 0).
    epsilon : None, float, array_like or "auto", optional
        Lexicase on the down-sample is exact (``None``, default) or epsilon-lexicase, as in
        :func:`deapnn.operators.lexicase.lexicase` (a per-case array has one value per case of
        ``errors``).
    epsilon_mode : {"semi-dynamic", "dynamic"}, optional
        As in :func:`deapnn.operators.lexicase.lexicase`.
    rng : None, int, numpy.random.Generator or random.Random, optional
        Source of randomness, as for :func:`deapnn.operators.lexicase.lexicase`.

    Returns
    -------
    numpy.ndarray
        ``k`` row indices (dtype ``intp``).

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import informed_downsampled_lexicase
    >>> errors = np.random.default_rng(0).integers(0, 2, size=(50, 40))
    >>> informed_downsampled_lexicase(errors, 10, downsample=0.25, parent_sample=0.2,
    ...                               rng=np.random.default_rng(1)).shape
    (10,)

    References
    ----------
    Boldi et al. 2024, "Informed down-sampled lexicase selection" (Evolutionary Computation
    32(4)), Algorithm 2 (parent sampling); Hernandez et al. 2019 (random down-sampling).
    """
    X = validate_errors(errors)
    k = validate_k(k)
    check_population(X, k)
    downsample = check_fraction(downsample, "downsample")
    parent_sample = check_fraction(parent_sample, "parent_sample")
    threshold = check_threshold(threshold)
    check_epsilon_shape(epsilon, X.shape[1])
    gen = as_generator(rng)
    m = X.shape[1]
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if m == 0:
        return lexicase(X, k, rng=gen)
    cases = parent_distances(X, parent_sample, threshold, gen).downsample(
        downsample_size(downsample, m), gen)
    return select_on_cases(X, k, cases, gen, epsilon, epsilon_mode)
