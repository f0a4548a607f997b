"""Fast, exact lexicase selection on an (individuals x cases) error matrix.

Lexicase selection (Spector 2012, "Assessment of problem modality by differential performance of
lexicase selection in genetic programming") picks each parent by filtering the population through
the training cases in a fresh random order, keeping only the best on each case, until one candidate
or no case remains, then choosing uniformly among the survivors.  epsilon-lexicase (La Cava, Spector
& Danai 2016) keeps everyone within epsilon of the best; with ``epsilon="auto"`` epsilon is the
median absolute deviation (MAD) of each case, computed over the whole population ("semi-dynamic",
the default) or over the current pool ("dynamic", what ``deap.tools.selAutomaticEpsilonLexicase``
does; La Cava, Helmuth, Spector & Moore 2019 name the variants).  Down-sampled lexicase (Hernandez,
Lalejini, Dolson & Ofria 2019) uses a random fraction of the cases for a whole call.

Exactness and speed come from three observations, none of which changes the selection distribution:

* a case on which every pool member survives ("ineffective") stays ineffective for every sub-pool
  (fixed epsilon: the pool minimum can only rise), so the next case that changes the pool is uniform
  among the cases effective for it.  Cases can therefore be drawn i.i.d.: a case drawn again is
  ineffective, i.e. a no-op, and the sequence of distinct cases is a uniform random order.
* identical error vectors share their fate on every case; selection runs on one representative per
  group and the chosen group yields a uniformly random member ("pre-selection de-duplication").
* the first filtering step from the full population only depends on the case, so its survivors are
  precomputed once per call ("is-elite" lists); the k selection events then run vectorised in
  batches on small padded pools.  A pool that stops shrinking is finished exactly on its own
  sub-matrix.

Order of errors (lower is better), the order DEAP's minimising fitnesses use:
``-inf < every finite value < +inf``, and NaN ranks worst, tied with ``+inf`` (DEAP's own lexicase
crashes on NaN or lets it win, since every comparison with NaN is false).  So a ``-inf`` error wins
its case, ``+inf`` and NaN never survive a case on which some pool member is lower, and a pool of
only ``+inf``/NaN keeps everyone.  Automatic epsilon (MAD) is computed from the finite values of a
case. Integer errors of any dtype (bool, int8 ... uint64, sentinels like ``sys.maxsize``) are
compared exactly; epsilon thresholds are float64.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..deprecation import REMOVAL
from .lexicase_engine import Engine
from .lexicase_util import (as_generator, check_population, clean, dynamic_keep, mad_columns,
                            validate_errors, validate_k)

__all__ = ["lexicase", "lexicase_filter", "case_mad"]

_MODES = ("semi-dynamic", "dynamic")


def parse_epsilon(epsilon, epsilon_mode, m):
    """Validate ``epsilon`` / ``epsilon_mode`` for ``m`` cases; return (fixed per-case array or
    None, auto, dynamic). Shared by every operator that takes the lexicase epsilon vocabulary."""
    if epsilon_mode not in _MODES:
        raise ValueError(f"epsilon_mode must be one of {_MODES}, got {epsilon_mode!r}")
    if epsilon is None:
        return None, False, False
    if isinstance(epsilon, str):
        if epsilon != "auto":
            raise ValueError(f"epsilon must be None, a number, a per-case array or 'auto', "
                             f"got {epsilon!r}")
        return None, True, epsilon_mode == "dynamic"
    eps = np.asarray(epsilon, dtype=float)
    if eps.ndim == 0:
        eps = np.full(m, float(eps))
    elif eps.shape != (m,):
        raise ValueError(f"per-case epsilon must have shape ({m},), got {eps.shape}")
    if not np.all(np.isfinite(eps)) or np.any(eps < 0):
        raise ValueError("epsilon must be finite and >= 0")
    return eps, False, False


_parse_epsilon = parse_epsilon      # the former private name


def lexicase(errors, k, *, epsilon=None, epsilon_mode="semi-dynamic",
             downsample: float | None = None, rng=None, dedup=None):
    """Select ``k`` row indices of ``errors`` by lexicase selection (Spector 2012).

    Each selection event filters the population through the cases in a fresh random order, keeping
    the rows best on each case (or within ``epsilon`` of the best), until one row or no case is
    left, then picks uniformly among the survivors. The result has exactly the distribution of
    textbook lexicase selection (see the module docstring for how it is computed fast).

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors (float, any integer dtype or bool), lower is better;
        ``-inf`` is the best error, ``+inf`` the worst, NaN ranks worst (tied with ``+inf``).
    k : int
        Number of selection events (>= 0); ``k == 0`` returns an empty array (also from an empty
        population).
    epsilon : None, float, array_like or "auto", optional
        ``None`` (exact ties, default), a number or per-case array (epsilon-lexicase, La Cava et al.
        2016: survive when ``error <= pool_best + epsilon``), or ``"auto"`` (the median absolute
        deviation of each case).
    epsilon_mode : {"semi-dynamic", "dynamic"}, optional
        For ``epsilon="auto"``: ``"semi-dynamic"`` (MAD over the whole population, default) or
        ``"dynamic"`` (MAD over the current pool, each case used once, as in DEAP).
    downsample : None or float, optional
        ``None`` or a fraction in (0, 1]: one random subset of ``max(1, round(fraction * n_cases))``
        cases is used for all ``k`` events (down-sampled lexicase, Hernandez et al. 2019).
    rng : None, numpy.random.Generator, random.Random or int, optional
        ``None`` (fresh OS entropy), a ``numpy.random.Generator`` (pass the same one to every
        call), anything with ``getrandbits`` (the ``random`` module, a ``random.Random``: a seed is
        drawn from it), or an int seed (seeds *this call only*: repeated calls with the same int
        repeat the same case orders).
    dedup : None or bool, optional
        Group identical error vectors first (``None``: when it pays off). Never changes the
        selection distribution.

    Returns
    -------
    numpy.ndarray
        ``k`` row indices (dtype ``intp``), one per selection event.

    Raises
    ------
    ValueError
        On a malformed ``errors`` matrix, a negative ``k``, ``k > 0`` with an empty population, or
        an invalid ``epsilon``, ``epsilon_mode`` or ``downsample``.

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import lexicase
    >>> errors = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0]])   # each row best on one case
    >>> idx = lexicase(errors, k=5, rng=np.random.default_rng(0))
    >>> idx.shape
    (5,)

    References
    ----------
    Spector 2012, "Assessment of problem modality by differential performance of lexicase
    selection in genetic programming" (GECCO companion): the algorithm; La Cava, Spector &
    Danai 2016, "Epsilon-lexicase selection for regression" (GECCO): epsilon-lexicase and the
    MAD epsilon; La Cava, Helmuth, Spector & Moore 2019 (Evolutionary Computation 27(3)): the
    semi-dynamic and dynamic variants; Hernandez, Lalejini, Dolson & Ofria 2019 (GECCO
    companion): down-sampled lexicase.
    """
    X = validate_errors(errors)
    k = validate_k(k)
    check_population(X, k)
    n, m = X.shape
    eps, auto, dynamic = parse_epsilon(epsilon, epsilon_mode, m)
    gen = as_generator(rng)
    if k == 0:
        return np.empty(0, dtype=np.intp)
    cases = None                                   # all cases
    if downsample is not None:
        if not isinstance(downsample, numbers.Real) or not 0 < downsample <= 1:
            raise ValueError(f"downsample must be a fraction in (0, 1], got {downsample!r}")
        size = max(1, int(round(downsample * m))) if m else 0
        if size < m:
            cases = np.sort(gen.choice(m, size=size, replace=False))
    engine = Engine(X, cases, gen, eps=eps, auto=auto, dynamic=dynamic, k=k, dedup=dedup)
    return engine.run(k)


def case_mad(errors):
    """Median absolute deviation of each case over all rows, ignoring non-finite values.

    This is the semi-dynamic epsilon of ``lexicase(errors, k, epsilon="auto")``.

    Parameters
    ----------
    errors : array_like
        (n_individuals, n_cases) numeric errors, lower is better.

    Returns
    -------
    numpy.ndarray
        One float per case: ``median(|e - median(e)|)`` over the finite values ``e`` of the case;
        a case without finite values gets 0.

    Examples
    --------
    >>> from deapnn.operators import case_mad
    >>> case_mad([[0.0, 1.0], [1.0, 3.0], [2.0, 9.0]])
    array([1., 2.])

    References
    ----------
    La Cava, Spector & Danai 2016, "Epsilon-lexicase selection for regression" (GECCO): the
    automatic (MAD) epsilon.
    """
    X = validate_errors(errors)
    return mad_columns(X, np.arange(X.shape[1]))


def lexicase_filter(pool, errors_chunk, epsilon=None, *, epsilon_mode="dynamic",
                    return_consumed=False):
    """Filter ``pool`` through the columns of ``errors_chunk`` in order (one lexicase event,
    lazily).

    This is the streaming form of lexicase selection used when case errors are produced a chunk at a
    time (e.g. gradient lexicase selection, Ding & Spector 2022, evaluating mini-batches in a random
    order): call it with the next chunk until one survivor remains or the cases run out, then pick
    uniformly among the survivors.

    Parameters
    ----------
    pool : array_like
        1-D array of ``p`` candidate ids (any labels).
    errors_chunk : array_like
        (p, c) errors of those candidates on the next ``c`` cases, *rows aligned with pool*, columns
        in the order the cases are to be applied; lower is better, same order of non-finite values
        as :func:`lexicase`.
    epsilon : None, float, array_like or "auto", optional
        ``None`` (exact), a number or length-``c`` array (fixed epsilon), or ``"auto"`` (epsilon =
        MAD over the current pool for each case). ``"dynamic"`` is a deprecated alias of
        ``"auto"``.
    epsilon_mode : {"dynamic"}, optional
        With ``"auto"``, only ``"dynamic"``: a stream has no whole population to take a
        semi-dynamic MAD from.
    return_consumed : bool, optional
        Also return how many columns were applied (filtering stops as soon as one candidate
        remains; the remaining columns are not looked at).

    Returns
    -------
    survivors : numpy.ndarray
        The surviving subset of ``pool``, in its original order.
    consumed : int
        Only with ``return_consumed=True``: the number of columns applied.

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import lexicase_filter
    >>> pool = np.array([10, 11, 12])
    >>> chunk = np.array([[0, 1], [0, 0], [1, 0]])      # rows: candidates 10, 11, 12
    >>> lexicase_filter(pool, chunk, return_consumed=True)
    (array([11]), 2)

    References
    ----------
    Spector 2012 (lexicase selection); Ding & Spector 2022, "Optimizing neural networks with
    gradient lexicase selection" (ICLR), §3.3 (lexicase over training cases, one at a time).
    """
    pool = np.asarray(pool)
    if pool.ndim != 1:
        raise ValueError(f"pool must be 1-D, got shape {pool.shape}")
    E = validate_errors(errors_chunk, allow_empty_cases=True, what="errors_chunk")
    if E.shape[0] != pool.shape[0]:
        raise ValueError(f"errors_chunk has {E.shape[0]} rows but pool has {pool.shape[0]} "
                         "members; rows must be aligned with pool")
    c = E.shape[1]
    dyn = isinstance(epsilon, str)
    if dyn and epsilon == "dynamic":
        warnings.warn("lexicase_filter(epsilon='dynamic') is deprecated: use epsilon='auto' "
                      f"(MAD over the current pool; 'dynamic' is removed in deapnn {REMOVAL})",
                      DeprecationWarning, stacklevel=2)
        epsilon = "auto"
    if dyn and epsilon != "auto":
        raise ValueError(f"epsilon must be None, a number, an array or 'auto', got {epsilon!r}")
    if dyn and epsilon_mode != "dynamic":
        raise ValueError(f"lexicase_filter supports only epsilon_mode='dynamic' (MAD over the "
                         f"current pool), got {epsilon_mode!r}")
    eps = None
    if epsilon is not None and not dyn:
        eps = np.broadcast_to(np.asarray(epsilon, dtype=float), (c,))
        if not np.all(np.isfinite(eps)) or np.any(eps < 0):
            raise ValueError("epsilon must be finite and >= 0")
    alive = np.arange(pool.shape[0])
    used = 0
    for j in range(c):
        if alive.size <= 1:
            break
        v = clean(E[alive, j])
        used += 1
        if dyn:
            keep = dynamic_keep(v)
        else:
            keep = v <= (v.min() if eps is None else v.min() + eps[j])
        alive = alive[keep]
    out = pool[alive]
    return (out, used) if return_consumed else out

