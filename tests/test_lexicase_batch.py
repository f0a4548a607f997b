"""Batch lexicase selection (issue 26; Aenugu & Spector 2019): a hand-worked example, exact
selection probabilities by enumerating case orders (the brute-force reference), the limits
batch_size=1 (lexicase) and batch_size=n_cases (mean error), non-finite errors, and the DEAP
wrapper."""
import itertools
import math
import random

import numpy as np
import pytest
from deap import base
from scipy.stats import chi2

from operators.lexicase import lexicase
from operators.lexicase_batch import batch_lexicase, selBatchLexicase
from test_lexicase_deap import _population

N_DRAWS = 12000
P_MIN = 1e-4
NAN, INF = np.nan, np.inf

#: rows A, B, C; worked by hand for batches of 2 (a random pair of cases, then the other two)
HAND = np.array([[0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 1]])
HAND_ELITE = np.array([13, 13, 10]) / 36     # {0,1}: A; {2,3}: B; {0,2}: C; {1,3}: A|B; else all
HAND_THRESHOLD = np.array([5, 5, 8]) / 18    # threshold 0.5: {1,3} skipped, then {0,2}: C


def _score(values):
    """Mean of one candidate's errors on a batch in the family's order (plain Python)."""
    vals = [math.inf if math.isnan(v) else v for v in values]
    if math.inf in vals:
        return math.inf
    return sum(vals) / len(vals)


def _oracle(E, batch_size, threshold=None):
    """Exact selection probabilities: every case order equally likely, batches consecutive."""
    E = np.asarray(E, dtype=float)
    n, m = E.shape
    probs = np.zeros(n)
    perms = list(itertools.permutations(range(m)))
    for perm in perms:
        pool = list(range(n))
        for lo in range(0, m, batch_size):
            if len(pool) <= 1:
                break
            batch = perm[lo:lo + batch_size]
            scores = {i: _score([E[i, c] for c in batch]) for i in pool}
            if threshold is None:
                best = min(scores.values())
                pool = [i for i in pool if scores[i] == best]
            else:
                passed = [i for i in pool if scores[i] < threshold]
                pool = passed or pool
        for i in pool:
            probs[i] += 1 / (len(pool) * len(perms))
    return probs


def _check(idx, probs):
    counts = np.bincount(idx, minlength=probs.size)
    zero = probs < 1e-12
    assert counts[zero].sum() == 0, f"selected a row of probability 0: {counts}"
    exp = probs[~zero] * idx.size
    stat = ((counts[~zero] - exp) ** 2 / exp).sum()
    p = chi2.sf(stat, max(int((~zero).sum()) - 1, 1))
    assert p > P_MIN, f"chi2 p={p:.2g}: counts {counts} expected {exp}"


def test_the_hand_worked_example():
    assert np.allclose(_oracle(HAND, 2), HAND_ELITE)
    assert np.allclose(_oracle(HAND, 2, threshold=0.5), HAND_THRESHOLD)
    _check(batch_lexicase(HAND, N_DRAWS, batch_size=2, rng=np.random.default_rng(0)), HAND_ELITE)
    _check(batch_lexicase(HAND, N_DRAWS, batch_size=2, threshold=0.5,
                          rng=np.random.default_rng(1)), HAND_THRESHOLD)


# ties, duplicate rows (0 == 3), NaN, +inf beside -inf, a remainder batch (5 cases, batches of 2)
BRUTE = {
    "ints-dups": (np.array([[0, 1, 2, 0, 1], [1, 0, 2, 1, 0], [2, 2, 0, 0, 1], [0, 1, 2, 0, 1],
                            [1, 1, 1, 1, 1]]), 2, None),
    "floats-nonfinite": (np.array([[0.1, NAN, 0.5, 0.3], [0.2, 0.4, -INF, INF],
                                   [0.5, 0.4, 0.1, 0.35], [0.15, 0.9, 0.12, 0.3]]), 2, None),
    "threshold": (np.array([[0, 1, 1, 0, 1], [1, 0, 0, 1, 1], [0, 0, 1, 1, 0], [1, 1, 0, 0, 0]]),
                  3, 0.5),
    "batch-3": (np.array([[0, 1, 2, 0, 1], [1, 0, 2, 1, 0], [2, 2, 0, 0, 1], [1, 1, 1, 1, 1]]),
                3, None),
}


@pytest.mark.parametrize("name", sorted(BRUTE))
def test_matches_the_exact_probabilities_of_enumerated_case_orders(name):
    E, b, t = BRUTE[name]
    probs = _oracle(E, b, t)
    _check(batch_lexicase(E, N_DRAWS, batch_size=b, threshold=t,
                          rng=np.random.default_rng(len(name))), probs)


def test_batch_size_one_is_lexicase_and_all_cases_is_the_best_mean():
    E = BRUTE["ints-dups"][0]
    assert (batch_lexicase(E, 50, batch_size=1, rng=7) == lexicase(E, 50, rng=7)).all()
    means = E.mean(axis=1)
    idx = batch_lexicase(E, 200, batch_size=5, rng=0)
    assert set(idx.tolist()) == set(np.flatnonzero(means == means.min()).tolist())
    idx = batch_lexicase(E, 200, batch_size=99, rng=0)            # larger than n_cases: one batch
    assert set(idx.tolist()) == set(np.flatnonzero(means == means.min()).tolist())


def test_non_finite_errors_never_win_and_integers_sum_exactly():
    E = np.array([[NAN, NAN, NAN, NAN], [5.0, 5.0, 5.0, 5.0], [-INF, INF, 0.0, 0.0]])
    assert set(batch_lexicase(E, 300, batch_size=2, rng=0).tolist()) <= {1, 2}
    assert set(batch_lexicase(E[[0]], 5, batch_size=2, rng=0).tolist()) == {0}
    big = np.array([[2**61, 0], [2**61 - 1, 0]], dtype=np.int64)  # float64 would tie them
    assert set(batch_lexicase(big, 50, batch_size=2, rng=0).tolist()) == {1}
    assert batch_lexicase(np.zeros((3, 0)), 4, rng=0).shape == (4,)
    assert batch_lexicase(E, 0).size == 0


@pytest.mark.parametrize("kw", [{"batch_size": 0}, {"batch_size": 2.0}, {"batch_size": True},
                                {"threshold": INF}, {"threshold": "0.1"}])
def test_invalid_settings_are_refused(kw):
    with pytest.raises(ValueError):
        batch_lexicase(HAND, 3, **kw)


def test_deap_wrapper_registers_bare_and_reads_maximised_fitness():
    tb = base.Toolbox()
    tb.register("select", selBatchLexicase)
    right = 1 - HAND                                   # maximised: 1 = right
    pop = _population(right, (1.0,) * 4)
    random.seed(0)
    ids = [ind[0] for ind in tb.select(pop, N_DRAWS)]
    _check(np.array(ids), _oracle(HAND, 4))            # default batch 10 > 4 cases: best mean
    tb.register("select", selBatchLexicase, batch_size=2, threshold=-0.5)    # accuracy > 0.5
    ids = [ind[0] for ind in tb.select(pop, N_DRAWS)]
    _check(np.array(ids), HAND_THRESHOLD)
    assert tb.select(pop, 0) == [] and tb.select(pop, -1) == [] and tb.select([], 0) == []
    with pytest.warns(UserWarning, match="re-seeds"):
        selBatchLexicase(pop, 2, rng=3)
