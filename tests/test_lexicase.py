"""Exactness, robustness and input checks of the array lexicase operators.

Exactness: selection frequencies over >= 20,000 draws are compared with the exact probabilities of
textbook lexicase obtained by enumerating every case order (``_oracle``).  Chi-square goodness of
fit, fixed seeds (deterministic), pass when p > 1e-4; categories of probability 0 must never be
drawn.
"""
import itertools
import sys

import numpy as np
import pytest
from scipy.stats import chi2

from operators.dalex import dalex
from operators.lexicase import case_mad, lexicase, lexicase_filter
from operators.lexicase_engine import Engine
from operators.lexicase_util import validate_errors

N_DRAWS = 20000
P_MIN = 1e-4
NAN, INF = np.nan, np.inf


def _oracle(E, eps=None, dynamic=False, cases=None):
    """Exact selection probabilities of textbook lexicase (Spector 2012) by enumeration.

    Order: -inf < finite < +inf, NaN counted as +inf; dynamic MAD over the finite values."""
    E = np.where(np.isnan(E), np.inf, E).astype(float)
    n, m = E.shape
    cases = list(range(m)) if cases is None else list(cases)
    probs = np.zeros(n)
    perms = list(itertools.permutations(cases))
    for perm in perms:
        pool = list(range(n))
        for c in perm:
            if len(pool) <= 1:
                break
            v = E[pool, c]
            if dynamic:
                f = v[np.isfinite(v)]
                mad = np.median(np.abs(f - np.median(f))) if f.size else 0.0
                thr = v.min() + mad
            else:
                thr = v.min() + (0.0 if eps is None else eps[c])
            pool = [p for p in pool if E[p, c] <= thr]
        for p in pool:
            probs[p] += 1.0 / len(pool) / len(perms)
    return probs


def _oracle_downsampled(E, size, **kw):
    subsets = list(itertools.combinations(range(E.shape[1]), size))
    return sum(_oracle(E, cases=s, **kw) for s in subsets) / len(subsets)


def _assert_fits(idx, probs):
    counts = np.bincount(idx, minlength=probs.size)
    assert counts.sum() == idx.size
    zero = probs < 1e-12
    assert counts[zero].sum() == 0, f"drew impossible individuals: {counts} vs {probs}"
    exp = probs[~zero] * idx.size
    stat = ((counts[~zero] - exp) ** 2 / exp).sum()
    dof = max(int((~zero).sum()) - 1, 1)
    p = chi2.sf(stat, dof)
    assert p > P_MIN, f"chi2 p={p:.2g}: counts {counts} expected {probs * idx.size}"


# ties, duplicate rows (0 == 2), NaN and inf, a never-best individual
TIES = np.array([[0, 1, 2, 0, NAN, 1],
                 [1, 0, 2, 0, 3, 1],
                 [0, 1, 2, 0, NAN, 1],
                 [2, 2, 0, 1, 0, 0],
                 [1, 1, 1, 1, 1, 1.0]])
FLOATS = np.array([[0.10, 0.90, 0.50, 0.30, 0.7],
                   [0.12, 0.40, 0.55, 0.90, 0.2],
                   [0.50, 0.41, 0.10, 0.35, INF],
                   [0.11, 0.95, 0.12, 0.31, 0.25]])
MANY_DUPS = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [1, 0, 0, 1], [1, 0, 1, 0]])
# -inf is the best error, +inf and NaN the worst (tied)
NEGINF = np.array([[-INF, 0.3, INF, 0.5],
                   [0.0, -INF, 0.2, NAN],
                   [-INF, 0.4, 0.1, 0.5],
                   [0.2, 0.1, NAN, -INF],
                   [0.1, 0.2, 0.3, 0.4]])

# (matrix, lexicase kwargs, oracle kwargs)
SETTINGS = {
    "exact-ties-nan": (TIES, {}, {}),
    "exact-duplicates": (MANY_DUPS, {}, {}),
    "exact-floats-inf": (FLOATS, {}, {}),
    "eps-scalar": (FLOATS, {"epsilon": 0.05}, {"eps": np.full(5, 0.05)}),
    "eps-array": (FLOATS, {"epsilon": [0.05, 0.0, 0.2, 0.1, 0.1]},
                  {"eps": np.array([0.05, 0.0, 0.2, 0.1, 0.1])}),
    "auto-semi": (FLOATS, {"epsilon": "auto"}, {"eps": "mad"}),
    "auto-semi-ties": (TIES, {"epsilon": "auto"}, {"eps": "mad"}),
    "auto-dynamic": (FLOATS, {"epsilon": "auto", "epsilon_mode": "dynamic"}, {"dynamic": True}),
    "auto-dynamic-ties": (TIES, {"epsilon": "auto", "epsilon_mode": "dynamic"}, {"dynamic": True}),
    "exact-neginf": (NEGINF, {}, {}),
    "eps-neginf": (NEGINF, {"epsilon": 0.15}, {"eps": np.full(4, 0.15)}),
    "auto-semi-neginf": (NEGINF, {"epsilon": "auto"}, {"eps": "mad"}),
    "auto-dynamic-neginf": (NEGINF, {"epsilon": "auto", "epsilon_mode": "dynamic"},
                            {"dynamic": True}),
}


def _probs(E, okw):
    okw = dict(okw)
    if isinstance(okw.get("eps"), str):
        okw["eps"] = case_mad(E)
    return _oracle(E, **okw)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_public_api_matches_enumeration(name):
    E, kw, okw = SETTINGS[name]
    _assert_fits(lexicase(E, N_DRAWS, rng=11, **kw), _probs(E, okw))


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dedup", [False, True])
@pytest.mark.parametrize("name", ["exact-ties-nan", "exact-duplicates", "eps-array", "auto-semi",
                                  "auto-dynamic-ties", "exact-neginf", "auto-dynamic-neginf"])
def test_every_engine_path_matches_enumeration(name, dedup, dense):
    """Lazy (i.i.d. case draws on X) and dense (elite lists on a compact copy), with/without
    de-duplication, all give the exact distribution."""
    from operators.lexicase import _parse_epsilon
    E, kw, okw = SETTINGS[name]
    eps, auto, dyn = _parse_epsilon(kw.get("epsilon"), kw.get("epsilon_mode", "semi-dynamic"),
                                    E.shape[1])
    eng = Engine(E, None, np.random.default_rng(5), eps=eps, auto=auto, dynamic=dyn, k=N_DRAWS,
                 dedup=dedup, dense=dense)
    _assert_fits(eng.run(N_DRAWS), _probs(E, okw))


@pytest.mark.parametrize("E", [TIES, NEGINF], ids=["ties-nan", "neginf"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_single_event_path_matches_enumeration(dynamic, E):
    """k <= 4 and many cases use the scalar single-event walk; check it event by event."""
    eng = Engine(E, None, np.random.default_rng(3), auto=dynamic, dynamic=dynamic, k=1,
                 dedup=False, dense=False)
    one = eng._one_dynamic if dynamic else eng._one
    idx = np.array([one() for _ in range(N_DRAWS)])
    _assert_fits(idx, _oracle(E, dynamic=dynamic))


def test_downsampling_matches_enumeration_over_subsets():
    E = TIES
    # one subset per call: average the oracle over all equally likely subsets of size 3
    rng = np.random.default_rng(9)
    idx = np.concatenate([lexicase(E, 20, downsample=0.5, rng=rng) for _ in range(1000)])
    _assert_fits(idx, _oracle_downsampled(E, 3))
    with_eps = np.concatenate([lexicase(FLOATS, 20, downsample=0.6, epsilon=0.05, rng=rng)
                               for _ in range(1000)])
    _assert_fits(with_eps, _oracle_downsampled(FLOATS, 3, eps=np.full(5, 0.05)))


def test_nonfinite_values_follow_the_order_of_minimised_errors():
    """NaN and +inf never survive a case where someone is lower; -inf wins every case it is on."""
    rng = np.random.default_rng(0)
    E = rng.integers(0, 3, size=(40, 12)).astype(float)
    E[:10] = NAN
    E[10:20, :] = INF
    for kw in ({}, {"epsilon": 0.5}, {"epsilon": "auto"},
               {"epsilon": "auto", "epsilon_mode": "dynamic"}):
        assert lexicase(E, 2000, rng=1, **kw).min() >= 20, kw
        E2 = E.copy()
        E2[25, :] = -INF                                 # best on every case: always selected
        assert set(lexicase(E2, 500, rng=1, **kw).tolist()) == {25}, kw
    assert dalex(E, 2000, std=3.0, rng=1).min() >= 20
    E2 = E.copy()
    E2[25, :] = -INF
    assert set(dalex(E2, 500, std=3.0, rng=1).tolist()) == {25}
    # -inf on one case only: wins whenever that case comes first among those separating it
    _assert_fits(lexicase(np.array([[-INF, 1.0], [0.0, 0.0]]), N_DRAWS, rng=4),
                 np.array([0.5, 0.5]))
    # all non-finite: no crash, uniform over everybody
    allnan = np.full((4, 3), NAN)
    _assert_fits(lexicase(allnan, N_DRAWS, rng=2), np.full(4, 0.25))
    # a NaN on one case loses that case only; NaN ties with +inf
    E2 = np.array([[0.0, NAN], [1.0, 1.0]])
    _assert_fits(lexicase(E2, N_DRAWS, rng=3), np.array([0.5, 0.5]))
    _assert_fits(lexicase(np.array([[NAN, 0.0], [INF, 0.0]]), N_DRAWS, rng=3),
                 np.array([0.5, 0.5]))


# every integer dtype at the extremes of its range; exact lexicase only sees the order (RANKS)
RANKS = np.array([[0, 3, 1, 0], [3, 0, 2, 1], [0, 3, 1, 0], [1, 1, 0, 3], [2, 2, 3, 2]])
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _extremes(dtype):
    info = np.iinfo(dtype)
    levels = [int(info.min), int(info.min) + 1, int(info.max) - 1, int(info.max)]
    return np.array([[levels[r] for r in row] for row in RANKS.tolist()], dtype=dtype)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dtype", INT_DTYPES + [np.bool_], ids=lambda d: np.dtype(d).name)
def test_every_integer_dtype_is_exact_over_its_whole_range(dtype, dense):
    if dtype is np.bool_:
        X, R = RANKS >= 2, (RANKS >= 2).astype(float)
    else:
        X, R = _extremes(dtype), RANKS.astype(float)
    probs = _oracle(R)
    _assert_fits(lexicase(X, N_DRAWS, rng=7), probs)
    for dedup in (False, True):
        eng = Engine(validate_errors(X), None, np.random.default_rng(8), k=N_DRAWS, dedup=dedup,
                     dense=dense)
        _assert_fits(eng.run(N_DRAWS), probs)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32], ids=str)
@pytest.mark.parametrize("mode", ["semi-dynamic", "dynamic"])
def test_integer_extremes_with_automatic_epsilon(dtype, mode):
    X = _extremes(dtype)
    okw = {"dynamic": True} if mode == "dynamic" else {"eps": case_mad(X.astype(float))}
    _assert_fits(lexicase(X, N_DRAWS, rng=9, epsilon="auto", epsilon_mode=mode),
                 _oracle(X.astype(float), **okw))


def test_int64_sentinel_reaching_maxsize_does_not_overflow():
    """Failed programs scored sys.maxsize beside small errors: k >= 4 takes the dense path."""
    X = np.array([[0, sys.maxsize], [1, 0], [2, 2]])
    sel = lexicase(X, 4, rng=0)
    assert sel.shape == (4,) and set(sel.tolist()) <= {0, 1}
    _assert_fits(lexicase(X, N_DRAWS, rng=1), np.array([0.5, 0.5, 0.0]))
    wide = np.array([[np.iinfo(np.int64).min, 5], [0, np.iinfo(np.int64).max], [7, -3]])
    _assert_fits(lexicase(wide, N_DRAWS, rng=2), _oracle(wide.astype(float)))
    _assert_fits(lexicase(wide, N_DRAWS, rng=2, epsilon=0.5),
                 _oracle(wide.astype(float), eps=np.full(2, 0.5)))


def test_large_populations_and_reproducibility():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, size=(300, 40))
    a, b = lexicase(X, 500, rng=42), lexicase(X, 500, rng=42)
    assert a.dtype == np.intp and a.shape == (500,) and np.array_equal(a, b)
    assert 0 <= a.min() and a.max() < 300
    # every selected individual is elite on at least one case (a lexicase invariant)
    assert np.all((X[np.unique(a)] == X.min(0)).any(1))
    wide = (rng.random((8, 5000)) < 0.5).astype(bool)
    wide[3] = wide[5]                                  # clones: needs the exact fallback
    sel = lexicase(wide, 3, rng=1)
    assert sel.shape == (3,)
    assert lexicase(X, 0).shape == (0,)
    assert lexicase(np.zeros((0, 3)), 0).shape == (0,)            # nobody to select, none wanted
    assert dalex(np.zeros((0, 3)), 0).shape == (0,)


@pytest.mark.parametrize("bad, match", [
    (np.zeros(5), "2-D"),
    (np.zeros((2, 3, 4)), "2-D"),
    (np.zeros((0, 3)), "empty population"),
    (np.array([["a", "b"]]), "numeric"),
    (np.zeros((2, 2), dtype=complex), "numeric"),
    ([[1, 2], [3]], "2-D numeric"),
])
def test_bad_matrices_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        lexicase(bad, 2)
    with pytest.raises(ValueError, match=match):
        dalex(bad, 2)


@pytest.mark.parametrize("kw, match", [
    ({"k": -1}, "k must be >= 0"),
    ({"k": 2.5}, "k must be an integer"),
    ({"k": 2, "epsilon": -0.1}, "epsilon"),
    ({"k": 2, "epsilon": [0.1, 0.2]}, "per-case epsilon"),
    ({"k": 2, "epsilon": "mad"}, "epsilon"),
    ({"k": 2, "epsilon": "auto", "epsilon_mode": "static"}, "epsilon_mode"),
    ({"k": 2, "downsample": 0.0}, "downsample"),
    ({"k": 2, "downsample": 1.5}, "downsample"),
    ({"k": 2, "rng": "seed"}, "rng"),
])
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        lexicase(np.zeros((3, 3)), **kw)


def test_lexicase_filter_streams_cases():
    pool = np.array([10, 11, 12, 13])
    chunk = np.array([[0, 5, 1], [0, 2, 0], [1, 0, 0], [0, 2, 9.0]])
    out, used = lexicase_filter(pool, chunk[:, :2], return_consumed=True)
    assert list(out) == [11, 13] and used == 2
    assert list(lexicase_filter(out, chunk[[1, 3]][:, 2:])) == [11]      # next chunk
    out, used = lexicase_filter(pool, np.hstack([chunk, chunk]), return_consumed=True)
    assert list(out) == [11] and used == 3                 # stops once one candidate remains
    assert list(lexicase_filter(pool, chunk, epsilon=3.0)) == [11, 12]
    assert list(lexicase_filter(pool, np.array([[NAN], [1.0], [INF], [1.0]]))) == [11, 13]
    assert list(lexicase_filter(pool, chunk[:, :1], epsilon="auto")) == [10, 11, 13]
    with pytest.warns(DeprecationWarning, match="epsilon='auto'"):
        assert list(lexicase_filter(pool, chunk[:, :1], epsilon="dynamic")) == [10, 11, 13]
    with pytest.raises(ValueError, match="epsilon_mode"):
        lexicase_filter(pool, chunk, epsilon="auto", epsilon_mode="semi-dynamic")
    assert list(lexicase_filter(pool, np.array([[1.0], [-INF], [NAN], [-INF]]))) == [11, 13]
    with pytest.raises(ValueError, match="aligned"):
        lexicase_filter(pool, chunk[:3])


def test_dalex_limits_and_ties():
    E = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.4, 0.4, 0.4]])
    # tiny std: weights ~ uniform, the lowest mean error wins; clones 1, 2 split uniformly
    idx = dalex(E, N_DRAWS, std=1e-6, rng=0)
    _assert_fits(idx, np.array([0, 0.5, 0.5, 0]))
    # huge std: one case dominates, like lexicase's first case
    idx = dalex(E, N_DRAWS, std=1e4, rng=0)
    _assert_fits(idx, np.array([1 / 3, 1 / 3, 1 / 3, 0]))
    assert dalex(E, 0, std=1.0).shape == (0,)
    with pytest.raises(ValueError, match="std"):
        dalex(E, 3, std=0.0)


# --- DALex does not depend on a constant offset of a case (issue 26) ---------------------------
def test_dalex_is_invariant_to_a_constant_added_to_each_case():
    from deapnn.operators import dalex
    rng = np.random.default_rng(0)
    errors = rng.integers(0, 5, size=(12, 30)).astype(float)
    offsets = rng.integers(-10**6, 10**6, size=30).astype(float)   # exact in float64
    for sign in (1.0, -1.0):                       # errors, and negated maximised values
        base = sign * errors
        plain = dalex(base, 500, rng=np.random.default_rng(1))
        moved = dalex(base + offsets, 500, rng=np.random.default_rng(1))
        assert np.array_equal(plain, moved)


def test_seldalex_on_maximised_values_keeps_lexicase_like_tie_breaking():
    """Four individuals, one all ones and dominating (maximised fitness): before the shift, the
    wrapper's negated values let rounding erase the low-priority weights, and it picked the
    dominating one 2,362 times in 4,000."""
    import random

    from deap import base, creator

    from deapnn.operators import selDALex, selLexicase
    if not hasattr(creator, "FitMax4"):
        creator.create("FitMax4", base.Fitness, weights=(1.0,) * 4)
        creator.create("IndMax4", list, fitness=creator.FitMax4)
    values = [(1, 1, 0, 0), (0, 1, 1, 0), (0, 0, 0, 0), (1, 1, 1, 1)]
    pop = []
    for v in values:
        ind = creator.IndMax4(v)
        ind.fitness.values = v
        pop.append(ind)
    random.seed(0)
    picks = selDALex(pop, 4000, rng=np.random.default_rng(0))
    assert sum(p is pop[3] for p in selLexicase(pop, 4000)) == 4000
    # DALex: the dominating one, but for weights that underflow to 0 (a tie broken at random)
    assert sum(p is pop[3] for p in picks) >= 3990
