"""Plexicase (Ding, Pantridge & Spector 2023): the paper's formula on a hand-worked example, its
alpha limits, the authors' reference algorithm on random matrices, sampling, non-finite values
and the DEAP drop-in."""
import math
import pickle
import random
from fractions import Fraction

import numpy as np
import pytest
from deap import base
from scipy.stats import chisquare

from operators import plexicase, plexicase_probabilities, selPlexicase
from operators.lexicase_deap import case_errors
from test_lexicase_deap import _population

#: a, b elite on two cases each, c and g on one, d on none, e Pareto-dominated by a
HAND = np.array([[0, 0, 2, 2],      # a  E=2, elite on cases 0, 1
                 [2, 0, 0, 2],      # b  E=2, elite on cases 1, 2
                 [2, 2, 2, 0],      # c  E=1, elite on case 3
                 [1, 0, 1, 1],      # g  E=1, elite on case 1
                 [2, 2, 2, 2],      # d  elite on no case
                 [0, 1, 2, 2]])     # e  elite on case 0, but a is as good everywhere
# P_0: a 1 | P_1: a 2/5, b 2/5, g 1/5 | P_2: b 1 | P_3: c 1  ->  P = mean over the 4 cases
HAND_P = [Fraction(7, 20), Fraction(7, 20), Fraction(5, 20), Fraction(1, 20), 0, 0]


def test_hand_worked_example_is_the_papers_formula():
    np.testing.assert_allclose(plexicase_probabilities(HAND), [float(p) for p in HAND_P],
                               rtol=0, atol=1e-15)
    squared = [p * p for p in HAND_P]                         # alpha = 2: P**2, renormalised
    np.testing.assert_allclose(plexicase_probabilities(HAND, alpha=2.0),
                               [float(p / sum(squared)) for p in squared], rtol=0, atol=1e-15)
    # a copy of c: the two share c's vector's probability, nothing else moves
    twins = plexicase_probabilities(np.vstack([HAND, HAND[2]]))
    np.testing.assert_allclose(twins, [0.35, 0.35, 0.125, 0.05, 0, 0, 0.125], atol=1e-15)


def test_alpha_limits():
    uniform = plexicase_probabilities(HAND, alpha=0.0)        # uniform over the candidates
    np.testing.assert_allclose(uniform, [0.25, 0.25, 0.25, 0.25, 0, 0], atol=1e-15)
    np.testing.assert_allclose(plexicase_probabilities(HAND, alpha=1e-9), uniform, atol=1e-8)
    top = plexicase_probabilities(HAND, alpha=math.inf)       # all on the likeliest (a tie)
    np.testing.assert_allclose(top, [0.5, 0.5, 0, 0, 0, 0], atol=1e-15)
    np.testing.assert_allclose(plexicase_probabilities(HAND, alpha=1e4), top, atol=1e-12)
    tops = [plexicase_probabilities(HAND, alpha=a)[0] for a in (0.0, 0.5, 1.0, 2.0, 8.0)]
    assert tops == sorted(tops)                                # more mass on the likeliest
    for bad in (-1.0, math.nan, True, "2"):
        with pytest.raises(ValueError, match="alpha must be a number >= 0"):
            plexicase_probabilities(HAND, alpha=bad)


def reference_plexicase(errors, alpha=1.0):
    """The authors' algorithm (CBGP push4/gp/population.py), transcribed: one candidate per
    distinct error vector, their dominance loop, the per-case shares weighted by E, the alpha
    power; the probability of a vector split evenly among its copies."""
    keys = [tuple(r) for r in errors]
    uniq = sorted(set(keys))
    E = np.array(uniq, dtype=float)
    n_cand, n_cases = E.shape
    best = E.min(axis=0)
    is_best = (E <= best).astype(float)
    n_best = is_best.sum(axis=1)
    unchecked = list(np.argsort(n_best, kind="stable"))
    dom = set()
    while unchecked:
        idx = unchecked[0]
        for j in range(n_cand):
            if j == idx or j in dom or n_best[j] > n_best[idx]:
                continue
            shared = (is_best[idx] * is_best[j]).sum() * (E[j] < E[idx]).sum() > 0
            new_best = (is_best[j] * (1 - is_best[idx])).sum() > 0
            if not (shared or new_best):
                dom.add(j)
        unchecked = [u for u in unchecked[1:] if u not in dom]
    keep = [i for i in range(n_cand) if i not in dom]
    per_case = is_best[keep].T * n_best[keep]
    p = (per_case / per_case.sum(axis=1, keepdims=True)).sum(axis=0)
    p = p / p.sum()
    p = p ** alpha / (p ** alpha).sum()
    prob = dict(zip([uniq[i] for i in keep], p))
    return np.array([prob.get(k, 0.0) / keys.count(k) for k in keys])


@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_equals_the_authors_reference_algorithm(alpha):
    rng = np.random.default_rng(int(alpha * 10))
    for trial in range(40):
        n, m = int(rng.integers(1, 12)), int(rng.integers(1, 9))
        X = rng.integers(0, 3 + trial % 4, size=(n, m))
        if n > 2 and trial % 3 == 0:
            X[1] = X[0]
        np.testing.assert_allclose(plexicase_probabilities(X, alpha), reference_plexicase(X, alpha),
                                   rtol=1e-12, atol=1e-15, err_msg=str(X))


def test_nonfinite_values_follow_the_lexicase_order():
    X = np.array([[np.nan, 0.0, 1.0], [0.0, np.nan, 1.0], [1.0, 1.0, -np.inf]])
    inf = np.where(np.isnan(X), np.inf, X)
    np.testing.assert_array_equal(plexicase_probabilities(X), plexicase_probabilities(inf))
    assert plexicase_probabilities([[np.nan, 1.0], [np.nan, 0.0]]).tolist() == [0.0, 1.0]
    all_bad = plexicase_probabilities([[np.nan, np.inf], [np.inf, np.nan]])
    assert all_bad.tolist() == [0.5, 0.5]                      # one vector, two copies
    assert plexicase_probabilities(np.zeros((3, 0))).tolist() == [1 / 3] * 3
    assert plexicase_probabilities(np.empty((0, 2))).shape == (0,)
    assert plexicase_probabilities([[-0.0, 1.0], [0.0, 1.0]]).tolist() == [0.5, 0.5]


def test_sampling_follows_the_probabilities():
    X = np.vstack([HAND, HAND[2], HAND[3]])
    probs = plexicase_probabilities(X)
    idx = plexicase(X, 6000, rng=np.random.default_rng(0))
    counts = np.bincount(idx, minlength=len(X))
    assert counts[probs == 0].sum() == 0
    assert chisquare(counts[probs > 0], probs[probs > 0] * 6000).pvalue > 1e-4
    assert plexicase(X, 0).shape == (0,)
    assert np.array_equal(plexicase(X, 50, rng=3), plexicase(X, 50, rng=3))
    assert set(plexicase(np.zeros((4, 0)), 40, rng=1).tolist()) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="k must be >= 0"):
        plexicase(X, -1)
    with pytest.raises(ValueError, match="empty population"):
        plexicase(np.empty((0, 3)), 2)


# ------------------------------------------------------------------ the DEAP drop-in


def test_selplexicase_is_a_drop_in():
    weights = (1.0, -1.0, 1.0, -1.0)
    flipped = np.where(np.array(weights) > 0, -HAND, HAND)       # maximised cases negated
    pop = _population(flipped, weights)
    assert np.array_equal(case_errors(pop), HAND)
    tb = base.Toolbox()
    tb.register("select", selPlexicase)
    random.seed(1)
    chosen = [ind[0] for ind in tb.select(pop, 400)]
    assert set(chosen) <= {0, 1, 2, 3} and len(chosen) == 400
    random.seed(1)
    assert [ind[0] for ind in tb.select(pop, 400)] == chosen          # random.seed reproduces
    assert selPlexicase(pop, -2) == [] and selPlexicase([], 0) == []
    by_key = selPlexicase(pop, 50, key=lambda ind: HAND[ind[0]], rng=np.random.default_rng(2))
    scores = selPlexicase(pop, 50, key=lambda ind: -HAND[ind[0]], key_weights=1.0,
                          rng=np.random.default_rng(2))
    assert [i[0] for i in by_key] == [i[0] for i in scores]
    top = selPlexicase(pop, 30, alpha=math.inf, rng=np.random.default_rng(0))
    assert {ind[0] for ind in top} <= {0, 1}
    assert pickle.loads(pickle.dumps(selPlexicase)) is selPlexicase
    assert selPlexicase.__module__ == "deapnn.operators.lexicase_variants"
