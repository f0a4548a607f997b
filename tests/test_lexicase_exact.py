"""``lexicase_probabilities`` is the exact lexicase selection distribution: it equals a brute-force
enumeration of every case order (Fractions, no rounding) with ties, NaN/±inf and every epsilon
mode, and the DEAP operators' selection frequencies agree with it (chi-square, 20 populations)."""
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from deap import base, creator
from scipy.stats import chisquare

from operators import (lexicase_probabilities, selAutomaticEpsilonLexicase, selEpsilonLexicase,
                       selLexicase)


# ------------------------------------------------------------------ the textbook algorithm
def _mad(v):
    f = v[np.isfinite(v)]
    return 0.0 if f.size == 0 else float(np.median(np.abs(f - np.median(f))))


def brute_force(errors, epsilon=None, dynamic=False):
    """Every case order, filtered case by case as Spector (2012) / La Cava et al. (2016) describe;
    NaN is the worst error (tied with +inf)."""
    E = np.where(np.isnan(errors), np.inf, np.asarray(errors, dtype=float))
    n, m = E.shape
    auto = isinstance(epsilon, str)
    if auto and not dynamic:
        eps = np.array([_mad(E[:, c]) for c in range(m)])
    elif epsilon is None or auto:
        eps = np.zeros(m)
    else:
        eps = np.broadcast_to(np.asarray(epsilon, dtype=float), (m,))
    total = [Fraction(0)] * n
    weight = Fraction(1, math.factorial(m))
    for order in itertools.permutations(range(m)):
        pool = list(range(n))
        for c in order:
            if len(pool) == 1:
                break
            v = E[pool, c]
            e = _mad(v) if dynamic else eps[c]
            pool = [i for i, x in zip(pool, v) if x <= v.min() + e]
        for i in pool:
            total[i] += weight / len(pool)
    return total


def _matrix(rng, n, m, kind):
    if kind == "ties":
        X = rng.integers(0, 3, size=(n, m)).astype(float)
    else:
        X = np.round(rng.random((n, m)), 2)
    if kind == "nonfinite":
        X[rng.random((n, m)) < 0.2] = np.nan
        X[rng.random((n, m)) < 0.1] = np.inf
        X[rng.random((n, m)) < 0.05] = -np.inf
    if rng.random() < 0.5 and n > 2:
        X[-1] = X[0]                                # a duplicate row
    return X


SETTINGS = [dict(), dict(epsilon=0.25), dict(epsilon="per-case"), dict(epsilon="auto"),
            dict(epsilon="auto", epsilon_mode="dynamic")]


@pytest.mark.parametrize("setting", SETTINGS, ids=["exact", "eps", "eps-per-case", "auto-semi",
                                                   "auto-dynamic"])
def test_matches_brute_force_enumeration_exactly(setting):
    rng = np.random.default_rng(list(map(ord, str(setting))))
    for trial in range(24):
        n, m = int(rng.integers(2, 7)), int(rng.integers(1, 7))
        X = _matrix(rng, n, m, ("ties", "floats", "nonfinite")[trial % 3])
        kw = dict(setting)
        if kw.get("epsilon") == "per-case":
            kw["epsilon"] = np.round(rng.random(m) * 0.3, 2)
        dynamic = kw.get("epsilon_mode") == "dynamic"
        want = brute_force(X, kw.get("epsilon"), dynamic)
        got = lexicase_probabilities(X, exact=True, **kw)
        assert list(got) == want, f"{X} {kw}"
        assert sum(got) == 1
        floats = lexicase_probabilities(X, **kw)
        assert floats.dtype == np.float64
        np.testing.assert_allclose(floats, [float(w) for w in want], rtol=0, atol=1e-12)


def test_integer_errors_and_edge_shapes():
    X = np.array([[0, 1, 2], [1, 0, 2], [2, 2, 0], [0, 1, 2]], dtype=np.uint8)
    assert list(lexicase_probabilities(X, exact=True)) == brute_force(X)
    big = np.array([[2**62, 0], [2**62 + 1, -1]], dtype=np.int64)     # compared exactly
    assert list(lexicase_probabilities(big, exact=True)) == [Fraction(1, 2), Fraction(1, 2)]
    assert lexicase_probabilities(np.empty((0, 3))).shape == (0,)
    assert lexicase_probabilities(np.zeros((4, 0))).tolist() == [0.25] * 4
    assert lexicase_probabilities([[5.0, np.nan]]).tolist() == [1.0]
    # -inf wins its case; a case of only +inf/NaN keeps everyone
    probs = lexicase_probabilities([[-np.inf, np.nan], [0.0, np.inf], [1.0, np.nan]])
    assert probs.tolist() == [1.0, 0.0, 0.0]
    assert lexicase_probabilities([[np.nan, np.inf], [np.inf, np.nan]]).tolist() == [0.5, 0.5]
    assert lexicase_probabilities([[-0.0, 1.0], [0.0, 1.0]]).tolist() == [0.5, 0.5]


def test_too_large_to_enumerate_is_refused_with_the_bound():
    X = (np.random.default_rng(0).random((40, 12)) < 0.5).astype(float)
    with pytest.raises(ValueError, match="more than max_states=50 distinct pools.*40 x 12"):
        lexicase_probabilities(X, max_states=50)
    with pytest.raises(ValueError, match=r"max_states=50 distinct \(pool, unused cases\)"):
        lexicase_probabilities(X, "auto", epsilon_mode="dynamic", max_states=50)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_states must be an integer >= 1"):
            lexicase_probabilities(X[:3, :3], max_states=bad)
    with pytest.raises(ValueError, match="epsilon_mode"):
        lexicase_probabilities(X[:3, :3], "auto", epsilon_mode="static")
    with pytest.raises(ValueError, match="per-case epsilon"):
        lexicase_probabilities(X[:3, :3], [0.1, 0.2])


def test_a_population_of_hundreds_of_binary_rows_is_practical():
    rng = np.random.default_rng(1)
    X = (rng.random((200, 14)) < 0.3).astype(np.int8)
    probs = lexicase_probabilities(X)
    assert probs.shape == (200,) and abs(probs.sum() - 1) < 1e-9


# ------------------------------------------------------------------ the operators agree with it
N_POPS, DRAWS = 20, 3000
OPERATORS = [("lexicase", selLexicase, {}, {}),
             ("eps", selEpsilonLexicase, dict(epsilon=0.3), dict(epsilon=0.3)),
             ("auto-semi", selEpsilonLexicase, {}, dict(epsilon="auto")),
             ("auto-dynamic", selAutomaticEpsilonLexicase, {},
              dict(epsilon="auto", epsilon_mode="dynamic"))]
#: family-wise significance 1e-3, Bonferroni over every (operator, population) test
P_MIN = 1e-3 / (N_POPS * len(OPERATORS))


def _population(values):
    name = f"FitExactMin{values.shape[1]}"
    if not hasattr(creator, name):
        creator.create(name, base.Fitness, weights=(-1.0,) * values.shape[1])
        creator.create("Ind" + name, list, fitness=getattr(creator, name))
    cls = getattr(creator, "Ind" + name)
    pop = []
    for i, row in enumerate(values):
        ind = cls([i])
        ind.fitness.values = tuple(row)
        pop.append(ind)
    return pop


def _goodness_of_fit(counts, probs):
    """p-value of a chi-square goodness-of-fit test, cells with expected count < 5 pooled."""
    counts, probs = counts[probs > 0], probs[probs > 0]
    expected = probs * counts.sum()
    small = expected < 5
    obs, exp = list(counts[~small]), list(expected[~small])
    if small.any():
        obs.append(counts[small].sum())
        exp.append(expected[small].sum())
    if len(obs) < 2:
        return 1.0
    return chisquare(obs, exp).pvalue


@pytest.mark.parametrize("name, op, op_kw, exact_kw", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_selection_frequencies_agree_with_the_exact_probabilities(name, op, op_kw, exact_kw):
    rng = np.random.default_rng(7)
    for trial in range(N_POPS):
        n, m = int(rng.integers(4, 11)), int(rng.integers(3, 8))
        X = rng.integers(0, 4, size=(n, m)).astype(float)
        if trial % 4 == 0:
            X[rng.random((n, m)) < 0.15] = np.nan
        pop = _population(X)
        probs = lexicase_probabilities([ind.fitness.values for ind in pop], **exact_kw)
        chosen = op(pop, DRAWS, rng=np.random.default_rng(trial), **op_kw)
        counts = np.bincount([ind[0] for ind in chosen], minlength=n)
        assert counts[probs == 0].sum() == 0, f"{name}: picks a zero-probability row\n{X}"
        p = _goodness_of_fit(counts, probs)
        assert p > P_MIN, f"{name} trial {trial}: p={p:.2g}\n{counts}\n{probs * DRAWS}"
