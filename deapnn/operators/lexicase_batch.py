"""Batch lexicase selection (Aenugu & Spector 2019, "Lexicase selection in learning classifier
systems", GECCO, Algorithm 2): lexicase selection that filters on *batches* of cases.

Each selection event shuffles the cases and cuts them into consecutive batches of ``batch_size``
(the last one may be shorter).  A candidate's score on a batch is its mean error over the batch's
cases (the paper's batch fitness is the accuracy over the batch, i.e. the mean of the per-case
fitness; lower-is-better errors are its negation).  Batches are applied in order, as cases are in
lexicase selection, until one candidate or no batch is left; the survivors are drawn from
uniformly.  Who survives a batch:

* ``threshold=None`` (default): the candidates with the pool's best mean on the batch ("elite on
  batches of data", the paper's prose).  ``batch_size=1`` is then exactly lexicase selection.
* ``threshold=t``: the candidates whose mean error on the batch is strictly below ``t`` (the
  paper's pseudocode keeps a rule whose batch fitness is strictly above a fixed threshold, 0.9
  accuracy in its experiments; on 0/1 errors, 1 = wrong, that is ``threshold=0.1``).  A batch no
  pool member passes is skipped (the pool stays as it is); the paper leaves this case open.

Non-finite errors keep the family's order (:mod:`deapnn.operators.lexicase`): NaN counts as
``+inf``; a batch mean with a ``+inf`` (or NaN) error in it is ``+inf``, even beside a ``-inf``
(a failure never wins); a pool whose means are all ``+inf`` keeps everyone.  Means are compared
exactly: integer errors are summed in int64 when that cannot overflow, float errors in float64.
"""
from __future__ import annotations

import numbers

import numpy as np

from .lexicase import lexicase
from .lexicase_deap import select_individuals
from .lexicase_engine import Groups
from .lexicase_util import as_generator, check_population, clean, validate_errors, validate_k

__all__ = ["batch_lexicase", "selBatchLexicase"]

_BLOCK = 1 << 22          # elements of the (rows x events x batch) block of the first batch


def _check(batch_size, threshold):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if threshold is not None and (isinstance(threshold, bool)
                                  or not isinstance(threshold, numbers.Real)
                                  or not np.isfinite(float(threshold))):
        raise ValueError(f"threshold must be None or a finite number, got {threshold!r}")


def _summable(X, batch_size):
    """X as the dtype batch sums are taken in: int64 when every sum fits, else float64 with NaN
    as +inf (the family's order)."""
    if X.dtype.kind in "iu" and X.size:
        big = max(abs(int(X.min())), abs(int(X.max())))
        if big * batch_size <= np.iinfo(np.int64).max:
            return X.astype(np.int64)
    return clean(X.astype(np.float64))


def _survive(sums, size, threshold):
    """Mask of the pool members (rows of ``sums``) that survive one batch of ``size`` cases."""
    if sums.dtype.kind == "f":
        sums = np.where(np.isnan(sums), np.inf, sums)           # -inf + inf: a failure
    if threshold is None:
        return sums == sums.min(axis=-1, keepdims=True)
    keep = sums / size < threshold
    return keep | ~keep.any(axis=-1, keepdims=True)            # nobody passes: skip the batch


def batch_lexicase(errors, k, *, batch_size: int = 10, threshold: float | None = None, rng=None):
    """Select ``k`` row indices of ``errors`` by batch lexicase selection (Aenugu & Spector 2019).

    Each selection event shuffles the cases, cuts them into batches of ``batch_size`` and filters
    the population batch by batch, keeping the candidates best on the batch's mean error (or,
    with ``threshold``, those whose mean error is below it), until one candidate or no batch is
    left; it then picks uniformly among the survivors (see the module docstring).

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors, lower is better; ``-inf`` best, ``+inf`` and NaN
        worst, as for :func:`deapnn.operators.lexicase.lexicase`.
    k : int
        Number of selection events (>= 0).
    batch_size : int, optional
        Cases per batch (>= 1, default 10); the last batch of an event holds the remainder. 1 is
        lexicase selection; ``n_cases`` is selection on the mean error.
    threshold : None or float, optional
        ``None`` (default): survive a batch with the pool's best mean error on it. A number: survive
        with a mean error strictly below it (a batch nobody passes is skipped).
    rng : None, int, numpy.random.Generator or random.Random, optional
        Source of randomness, as for :func:`deapnn.operators.lexicase.lexicase`.

    Returns
    -------
    numpy.ndarray
        ``k`` row indices (dtype ``intp``).

    Raises
    ------
    ValueError
        On a malformed ``errors`` matrix, a negative ``k``, ``k > 0`` with an empty population, a
        ``batch_size`` below 1 or a non-finite ``threshold``.

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import batch_lexicase
    >>> errors = np.array([[0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 1]])
    >>> batch_lexicase(errors, k=6, batch_size=2, rng=np.random.default_rng(0)).shape
    (6,)

    References
    ----------
    Aenugu & Spector 2019, "Lexicase selection in learning classifier systems" (GECCO),
    Algorithm 2: batch-lexicase selection and its batch threshold (the default batch size of 10
    is ours; the paper treats it as the selection-pressure knob).
    """
    X = validate_errors(errors)
    k = validate_k(k)
    check_population(X, k)
    _check(batch_size, threshold)
    gen = as_generator(rng)
    n, m = X.shape
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if m == 0 or (threshold is None and batch_size == 1):
        return lexicase(X, k, rng=gen)        # the exact, vectorised engine (no case: uniform)
    groups = Groups.build(X) if n > 1 else None
    rows = np.arange(n) if groups is None else groups.reps
    weight = None if groups is None else groups.counts.astype(np.float64)
    E = _summable(X[rows], batch_size)
    b = min(int(batch_size), m)
    out = np.empty(k, dtype=np.intp)
    chunk = max(1, min(k, _BLOCK // max(rows.size * b, 1)))
    with np.errstate(invalid="ignore"):          # -inf + inf in a batch: NaN, read as +inf
        _events(E, k, b, threshold, chunk, weight, gen, out)
    if groups is None:
        return out
    # a chosen group of identical rows yields a uniformly random member
    gi = out
    return groups.order[groups.starts[gi] + (gen.random(k) * groups.counts[gi]).astype(np.intp)]


def _events(E, k, b, threshold, chunk, weight, gen, out):
    """The ``k`` selection events on the (deduplicated) rows of ``E``, into ``out``."""
    m = E.shape[1]
    for start in range(0, k, chunk):
        B = min(chunk, k - start)
        orders = gen.permuted(np.broadcast_to(np.arange(m), (B, m)), axis=1)
        first = _survive(E[:, orders[:, :b]].sum(axis=2).T, b, threshold)    # (B, G)
        for e in range(B):
            pool = np.flatnonzero(first[e])
            order = orders[e]
            for lo in range(b, m, b):
                if pool.size <= 1:
                    break
                cols = order[lo:lo + b]
                pool = pool[_survive(E[np.ix_(pool, cols)].sum(axis=1), cols.size, threshold)]
            if pool.size > 1:
                p = None if weight is None else weight[pool] / weight[pool].sum()
                pool = pool[[gen.choice(pool.size, p=p)]]
            out[start + e] = pool[0]


def selBatchLexicase(individuals, k, batch_size=10, threshold=None, *, key=None,
                     key_weights=None, rng=None):
    """Batch lexicase selection (Aenugu & Spector 2019) for DEAP individuals.

    Each of the ``k`` selections shuffles the cases into batches of ``batch_size`` and filters the
    individuals batch by batch on their mean error (see
    :func:`deapnn.operators.lexicase_batch.batch_lexicase`).

    Parameters
    ----------
    individuals : list
        Individuals to select from; one fitness value per case, maximised where its weight is > 0
        (its error is then ``-value``), or ``key``.
    k : int
        Number of individuals to select; ``k <= 0`` selects nothing, as in ``deap.tools``.
    batch_size : int, optional
        Cases per batch (default 10).
    threshold : None or float, optional
        ``None`` (default): survive with the best mean error on the batch. A number: survive with a
        mean *error* strictly below it. On a maximised 0/1 fitness (1 = right) the errors are 0/-1,
        so the paper's "accuracy on the batch above 0.9" is ``threshold=-0.9``.
    key : callable, optional
        ``ind -> per-case errors`` (lower is better) instead of fitness values.
    key_weights : float or sequence of float, optional
        With ``key``: > 0 marks a case whose ``key`` values are maximised, as
        ``fitness.weights`` does (see :func:`deapnn.operators.lexicase_deap.case_errors`).
    rng : None, numpy.random.Generator or random.Random, optional
        ``None`` (Python's ``random`` state, reproducible by ``random.seed``) or a generator
        created once at registration.

    Returns
    -------
    list
        The ``k`` selected individuals (references, as in DEAP).

    Examples
    --------
    >>> from deap import base
    >>> from deapnn.operators import selBatchLexicase
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selBatchLexicase)                  # batches of 10
    >>> toolbox.register("select", selBatchLexicase, batch_size=4, threshold=0.25)

    References
    ----------
    Aenugu & Spector 2019, "Lexicase selection in learning classifier systems" (GECCO),
    Algorithm 2.
    """
    return select_individuals(individuals, k, key, rng, batch_lexicase, key_weights=key_weights,
                              batch_size=batch_size, threshold=threshold)
