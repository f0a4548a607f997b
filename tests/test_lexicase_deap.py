"""The DEAP wrappers select with the same frequencies as ``deap.tools`` (DEAP itself is the oracle).

Both samplers draw >= 20,000 selections from the same creator-built population; a chi-square test of
homogeneity (fixed seeds, deterministic) must give p > 1e-4, and individuals DEAP never picks must
never be picked by ours.
"""
import random

import numpy as np
import pytest
from deap import base, creator, tools
from scipy.stats import chi2_contingency

from operators.lexicase_deap import (case_errors, selAutomaticEpsilonLexicase, selDALex,
                                     selDownsampledLexicase, selEpsilonLexicase, selLexicase)

N_DRAWS = 20000
P_MIN = 1e-4

VALUES = np.array([[0, 1, 2, 0, 3, 1],
                   [1, 0, 2, 0, 3, 1],
                   [0, 1, 2, 0, 3, 1],
                   [2, 2, 0, 1, 0, 0],
                   [1, 1, 1, 1, 1, 1.0]])
FLOATS = np.array([[0.10, 0.90, 0.50, 0.30, 0.7],
                   [0.12, 0.40, 0.55, 0.90, 0.2],
                   [0.50, 0.41, 0.10, 0.35, 0.9],
                   [0.11, 0.95, 0.12, 0.31, 0.25]])


def _population(values, weights):
    name = "FitLex" + "".join("p" if w > 0 else "m" for w in weights)
    if not hasattr(creator, name):
        creator.create(name, base.Fitness, weights=tuple(weights))
        creator.create("Ind" + name, list, fitness=getattr(creator, name))
    ind_cls = getattr(creator, "Ind" + name)
    pop = []
    for i, row in enumerate(values):
        ind = ind_cls([i])
        ind.fitness.values = tuple(float(v) for v in row)
        pop.append(ind)
    return pop


def _counts(selected, n):
    return np.bincount([ind[0] for ind in selected], minlength=n)


def _assert_same(ours, theirs):
    never = theirs == 0
    assert ours[never].sum() == 0, f"ours {ours} picks what DEAP never does {theirs}"
    keep = ~never
    if keep.sum() > 1:
        p = chi2_contingency(np.vstack([ours[keep], theirs[keep]]))[1]
        assert p > P_MIN, f"p={p:.2g}: ours {ours} vs deap {theirs}"


def _flip(values, weights):
    """Values such that maximised cases (w > 0) express the same preference as errors."""
    return np.where(np.asarray(weights) > 0, -values, values)


@pytest.mark.parametrize("weights", [(-1.0,) * 6, (1.0,) * 6, (-1.0, 2.0, -0.5, 1.0, -1.0, 3.0)])
def test_selLexicase_matches_deap(weights):
    pop = _population(_flip(VALUES, weights), weights)
    random.seed(1)
    theirs = _counts(tools.selLexicase(pop, N_DRAWS), 5)
    random.seed(2)
    ours = _counts(selLexicase(pop, N_DRAWS), 5)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("weights", [(-1.0,) * 5, (1.0, -1.0, 1.0, -1.0, 1.0)])
def test_selEpsilonLexicase_matches_deap(weights):
    pop = _population(_flip(FLOATS, weights), weights)
    random.seed(3)
    theirs = _counts(tools.selEpsilonLexicase(pop, N_DRAWS, 0.05), 4)
    ours = _counts(selEpsilonLexicase(pop, N_DRAWS, 0.05), 4)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("values", [FLOATS, VALUES], ids=["floats", "ties"])
def test_selAutomaticEpsilonLexicase_matches_deap(values):
    weights = (-1.0,) * values.shape[1]
    pop = _population(values, weights)
    random.seed(4)
    theirs = _counts(tools.selAutomaticEpsilonLexicase(pop, N_DRAWS), len(pop))
    ours = _counts(selAutomaticEpsilonLexicase(pop, N_DRAWS), len(pop))
    _assert_same(ours, theirs)


def test_key_errors_and_reproducibility():
    pop = _population(np.zeros((5, 1)), (1.0,))
    for ind, row in zip(pop, VALUES):
        ind.case_errors = list(row)
    ref = _population(VALUES, (-1.0,) * 6)
    random.seed(5)
    theirs = _counts(tools.selLexicase(ref, N_DRAWS), 5)
    ours = _counts(selLexicase(pop, N_DRAWS, key=lambda ind: ind.case_errors), 5)
    _assert_same(ours, theirs)
    random.seed(6)
    a = selDownsampledLexicase(ref, 50, 0.5)
    random.seed(6)
    b = selDownsampledLexicase(ref, 50, 0.5)
    assert [id(x) for x in a] == [id(x) for x in b]          # random.seed reproduces
    assert all(any(x is p for p in ref) for x in a)             # references, as DEAP returns
    assert len(selDALex(ref, 7, 10.0)) == 7


def test_case_errors_honours_weight_signs_and_rejects_bad_input():
    pop = _population(np.array([[1.0, 2.0, 3.0]]), (-1.0, 1.0, -2.0))
    assert case_errors(pop).tolist() == [[1.0, -2.0, 3.0]]
    with pytest.raises(ValueError, match="empty population"):
        selLexicase([], 3)
    with pytest.raises(ValueError, match="k must be >= 0"):
        selLexicase(pop, -1)
    assert selLexicase(pop, 0) == []
    with pytest.raises(ValueError, match="key"):
        selLexicase(pop * 2, 2, key=lambda ind: "abc")
