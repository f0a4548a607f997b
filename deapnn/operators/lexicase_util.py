"""Helpers shared by the lexicase operators: input validation, RNG coercion, non-finite handling
and median-absolute-deviation (MAD) statistics for automatic epsilon (La Cava et al. 2016).

Order of errors (lower is better): ``-inf < finite < +inf``, and NaN ranks worst, tied with
``+inf`` (:func:`clean` maps NaN to ``+inf``).  MADs are taken over the finite values only."""
from __future__ import annotations

import numbers

import numpy as np

_CHUNK = 1 << 20     # at most this many elements per chunk in whole-matrix passes


def chunk_cols(X, rows=None):
    """Columns per chunk so that one chunk of ``rows`` rows is <= 1/16 of ``X`` (and <= _CHUNK
    elements): whole-matrix passes then need little memory beyond the matrix itself."""
    rows = X.shape[0] if rows is None else rows
    return max(1, min(_CHUNK, max(X.size // 16, 4096)) // max(rows, 1))


# ----------------------------------------------------------------------------- validation / rng
def validate_errors(errors, *, allow_empty_cases=True, what="errors"):
    """Return ``errors`` as a 2-D numeric ndarray (bool viewed as uint8) or raise ``ValueError``."""
    try:
        X = np.asarray(errors)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} must be a 2-D numeric array ({exc})") from None
    if X.dtype == np.bool_:
        X = X.view(np.uint8)
    if X.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be numeric (int, float or bool), got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-D (individuals x cases), got shape {X.shape}")
    if X.shape[1] == 0 and not allow_empty_cases:
        raise ValueError(f"{what} has 0 cases")
    return X


def validate_k(k):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise ValueError(f"k must be an integer, got {k!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return int(k)


def as_generator(rng):
    """None / int seed / numpy Generator / RandomState / anything with ``getrandbits``."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng seed must be >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(int(rng.randint(0, 2**62)))
    if hasattr(rng, "getrandbits"):      # the random module or a random.Random
        return np.random.default_rng(rng.getrandbits(64))
    raise ValueError(f"rng must be None, an int seed, a numpy Generator or a random.Random, "
                     f"got {type(rng).__name__}")


def check_population(X, k, what="errors"):
    """Selecting ``k > 0`` needs at least one individual (``k == 0`` from nobody gives nothing)."""
    if X.shape[0] == 0 and k > 0:
        raise ValueError(f"empty population: cannot select {k} from 0 individuals "
                         f"({what} has 0 rows)")


def clean(v):
    """Map NaN to +inf: NaN ranks worst, tied with +inf; -inf (the best error) is kept."""
    if v.dtype.kind == "f":
        bad = np.isnan(v)
        if bad.any():
            return np.where(bad, np.inf, v)
    return v


def rows_matrix(rows, what, unevaluated):
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


def case_signs(weights, m):
    """Per-case weights (one number for all ``m`` cases, or one per case) as a float array, as
    DEAP's ``fitness.weights`` are read: only the sign counts (> 0: maximised)."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError(f"key_weights must be a number or a sequence of numbers, "
                         f"got {weights!r:.80}") from None
    if w.ndim == 0:
        w = np.full(m, float(w))
    elif w.ndim != 1 or w.size != m:
        raise ValueError(f"key_weights has {w.size} weights but key= gives {m} values per "
                         f"individual: give one number, or one per case")
    if not np.all(np.isfinite(w)) or np.any(w == 0):
        raise ValueError(f"key_weights must be non-zero finite numbers (> 0: maximised, "
                         f"< 0: minimised), got {weights!r:.80}")
    return w

# ----------------------------------------------------------------------------- medians / MAD
def _mid(s, cnt):
    """Median of the first ``cnt`` entries of each sorted row of ``s`` (numpy's even-count mean)."""
    ar = np.arange(s.shape[0])
    lo = np.maximum(cnt - 1, 0) // 2
    hi = np.minimum(cnt // 2, s.shape[1] - 1)
    return (s[ar, lo].astype(np.float64) + s[ar, hi]) / 2


def mad_rows(V, ok):
    """(min, MAD) over the entries ``ok`` of each row of ``V``: the min over all of them (``-inf``
    included, NaN must already be ``+inf``), the MAD over the finite ones; no entry: (inf, 0)."""
    if V.dtype.kind in "iu" and V.dtype.itemsize == 1:
        return _mad_rows_int(V, ok)
    V = V.astype(np.float64, copy=False)
    mn = np.where(ok, V, np.inf).min(1)
    ok = ok & np.isfinite(V)
    cnt = ok.sum(1)
    s = np.sort(np.where(ok, V, np.inf), axis=1)
    med = _mid(s, cnt)
    with np.errstate(invalid="ignore"):
        dev = np.where(ok, np.abs(V - med[:, None]), np.inf)
    mad = _mid(np.sort(dev, axis=1), cnt)
    mad[cnt == 0] = 0.0
    return mn, mad


def _mad_rows_int(V, ok):
    """mad_rows for 8-bit integer codes: radix sorts, deviations doubled to stay integral."""
    cnt = ok.sum(1)
    big = np.iinfo(np.int16).max
    s = np.sort(np.where(ok, V.astype(np.int16), big), axis=1, kind="stable")
    med2 = np.round(2 * _mid(s, cnt)).astype(np.int16)          # 2 * median, exact
    dev2 = np.where(ok, np.abs(2 * V.astype(np.int16) - med2[:, None]), big)
    mad = _mid(np.sort(dev2, axis=1, kind="stable"), cnt) / 2
    mad[cnt == 0] = 0.0
    mn = s[:, 0].astype(np.float64)
    mn[cnt == 0] = np.inf
    return mn, mad


def mad_1d(v):
    """(min, MAD) of a 1-D array: the min of its non-NaN entries (``-inf`` included; none: inf),
    the MAD of its finite entries (none: 0)."""
    if v.dtype.kind != "f":
        f = np.sort(v).astype(np.float64)
        mn = f[0] if f.size else np.inf
    else:
        keep = ~np.isnan(v)
        mn = float(v[keep].min()) if keep.any() else np.inf
        f = np.sort(v[np.isfinite(v)]).astype(np.float64)
    n = f.size
    if n == 0:
        return mn, 0.0
    med = (f[(n - 1) // 2] + f[n // 2]) / 2
    d = np.sort(np.abs(f - med))
    return mn, (d[(n - 1) // 2] + d[n // 2]) / 2


def mad_columns(X, cols):
    """MAD of each column ``cols`` of ``X`` over all rows, finite values only (semi-dynamic eps)."""
    cols = np.asarray(cols)
    out = np.empty(cols.size)
    step = chunk_cols(X)
    for i in range(0, cols.size, step):
        V = X[:, cols[i:i + step]].T.astype(np.float64)
        out[i:i + step] = mad_rows(V, np.isfinite(V))[1]
    return out


def dynamic_keep(v):
    """Survivors of one case with epsilon = MAD over the pool (La Cava et al. 2016, dynamic)."""
    mn, mad = mad_1d(v)
    if mn == np.inf:
        return np.ones(v.shape, dtype=bool)
    return v <= mn + mad
