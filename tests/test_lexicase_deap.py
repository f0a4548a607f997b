"""The DEAP wrappers select with the same frequencies as ``deap.tools`` (DEAP itself is the oracle).

Both samplers draw >= 20,000 selections from the same creator-built population; a chi-square test of
homogeneity (fixed seeds, deterministic) must give p > 1e-4, and individuals DEAP never picks must
never be picked by ours.
"""
import operator
import pickle
import random
import warnings

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
    assert selLexicase(pop, -1) == [] == tools.selLexicase(pop, -1)     # deap: range(k)
    assert selLexicase(pop, 0) == []
    with pytest.raises(ValueError, match="key values of individual 0 is not a sequence of numbers"):
        selLexicase(pop * 2, 2, key=lambda ind: "abc")


# ------------------------------------------------------------------ non-finite values, DEAP's order
INFS = np.array([[-np.inf, 1.0, 2.0, 0.0],
                 [0.0, np.inf, 1.0, 0.0],
                 [0.5, 0.0, -np.inf, 1.0],
                 [0.0, 0.0, 0.0, np.inf],
                 [1.0, 1.0, 1.0, -np.inf]])


@pytest.mark.parametrize("weights", [(-1.0,) * 4, (1.0,) * 4, (1.0, -1.0, -2.0, 1.0)])
def test_infinities_rank_as_in_deap(weights):
    """-inf is best when minimising, +inf best when maximising: the same frequencies as DEAP."""
    pop = _population(_flip(INFS, weights), weights)
    random.seed(7)
    theirs = _counts(tools.selLexicase(pop, N_DRAWS), 5)
    ours = _counts(selLexicase(pop, N_DRAWS), 5)
    _assert_same(ours, theirs)
    assert theirs[[0, 2, 4]].sum() > 0.9 * N_DRAWS          # the infinitely good ones dominate


@pytest.mark.parametrize("weights", [(-1.0,) * 4, (1.0,) * 4])
def test_nan_ranks_worst_whatever_the_weight(weights):
    """NaN ranks as the worst value of its case (DEAP itself has no order for NaN)."""
    values = np.array([[np.nan, 0.0, 1.0, 0.0], [0.0, np.nan, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    pop = _population(_flip(values, weights), weights)
    ref = _population(_flip(np.where(np.isnan(values), 9.0, values), weights), weights)
    random.seed(8)
    theirs = _counts(tools.selLexicase(ref, N_DRAWS), 3)
    ours = _counts(selLexicase(pop, N_DRAWS), 3)
    _assert_same(ours, theirs)
    tied = _population(_flip(np.where(np.isnan(values), np.inf, values), weights), weights)
    _assert_same(_counts(selLexicase(tied, N_DRAWS), 3), ours)      # NaN ties with the worst inf


# ------------------------------------------------------------------ drop-in edge cases
@pytest.mark.parametrize("op", [selLexicase, selEpsilonLexicase, selAutomaticEpsilonLexicase,
                                selDownsampledLexicase, selDALex])
def test_empty_population_with_k0_returns_empty_list_as_deap(op):
    assert tools.selLexicase([], 0) == []
    assert op([], 0) == []
    with pytest.raises(ValueError, match="empty population: cannot select 2"):
        op([], 2)


def test_unevaluated_individual_is_named():
    pop = _population(VALUES, (-1.0,) * 6) * 4
    pop = [type(p)(p) for p in pop]                   # fresh fitness objects
    for ind, row in zip(pop, np.tile(VALUES, (4, 1))):
        ind.fitness.values = tuple(row)
    del pop[17].fitness.values
    with pytest.raises(ValueError, match="individual 17 has no fitness values: was it evaluated"):
        selLexicase(pop, 3)
    for ind in pop:
        del ind.fitness.values
    with pytest.raises(ValueError, match="individual 0 has no fitness values: was it evaluated"):
        selLexicase(pop, 3)


def test_ragged_values_name_the_individual():
    pop = _population(VALUES, (-1.0,) * 6) + _population(VALUES[:1, :5], (-1.0,) * 5)
    with pytest.raises(ValueError,
                       match="individual 5 has 5 fitness values but individual 0 has 6"):
        selLexicase(pop, 3)
    rows = [list(r) for r in VALUES]
    rows[3] = rows[3][:4]
    with pytest.raises(ValueError, match="individual 3 has 4 key values but individual 0 has 6"):
        selLexicase(_population(VALUES, (-1.0,) * 6), 3, key=lambda ind: rows[ind[0]])


# ------------------------------------------------------------------ key= under SCOOP
def _evaluate_storing_attribute(ind):
    ind.case_errors = [float(ind[0] == c) for c in range(4)]       # lost in a worker process
    return (sum(ind.case_errors),)


def _remote_map(fn, individuals):
    """What SCOOP's futures.map does: the function runs on pickled copies, results come back."""
    return [fn(pickle.loads(pickle.dumps(ind))) for ind in individuals]


def test_key_attribute_lost_in_worker_processes_is_explained():
    creator.create("FitScalarLex", base.Fitness, weights=(-1.0,))
    creator.create("IndScalarLex", list, fitness=creator.FitScalarLex, case_errors=None)
    pop = [creator.IndScalarLex([i]) for i in range(6)]
    for ind, fit in zip(pop, _remote_map(_evaluate_storing_attribute, pop)):
        ind.fitness.values = fit
    with pytest.raises(ValueError, match="key returned None for individual 0.*SCOOP.*main process"):
        selLexicase(pop, 3, key=operator.attrgetter("case_errors"))
    plain = [list(ind) for ind in pop]                        # no attribute at all
    with pytest.raises(AttributeError, match="key failed on individual 0.*fitness.values"):
        selLexicase(plain, 3, key=operator.attrgetter("case_errors"))
    # the documented pattern: return the errors, assign them in the main process
    for ind, errs in zip(pop, _remote_map(lambda ind: [float(ind[0] == c) for c in range(4)], pop)):
        ind.case_errors = errs
    assert len(selLexicase(pop, 3, key=operator.attrgetter("case_errors"))) == 3


# ------------------------------------------------------------------ seeding
def test_int_rng_warns_and_a_registered_generator_advances():
    pop = _population(VALUES, (-1.0,) * 6)
    tb = base.Toolbox()
    tb.register("select", selLexicase, rng=0)
    with pytest.warns(UserWarning, match="re-seeds every call.*default_rng"):
        tb.select(pop, 10)
    tb.register("select", selLexicase, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = [[ind[0] for ind in tb.select(pop, 20)] for _ in range(3)]
    assert runs[0] != runs[1] or runs[1] != runs[2]      # a new case order each generation
    tb.register("select", selLexicase, rng=np.random.default_rng(0))
    assert [ind[0] for ind in tb.select(pop, 20)] == runs[0]     # same generator seed: same run
    random.seed(3)
    a = [ind[0] for ind in selLexicase(pop, 20)]
    random.seed(3)
    assert [ind[0] for ind in selLexicase(pop, 20)] == a         # random.seed reproduces


# ------------------------------------------------------------------ one vocabulary
@pytest.mark.parametrize("op", [selLexicase, selEpsilonLexicase, selAutomaticEpsilonLexicase,
                                selDownsampledLexicase, selDALex])
def test_every_operator_registers_without_arguments(op):
    tb = base.Toolbox()
    tb.register("select", op)
    pop = _population(FLOATS, (-1.0,) * 5)
    chosen = tb.select(pop, 7)
    assert len(chosen) == 7 and all(any(c is p for p in pop) for c in chosen)


def test_old_names_are_deprecated_aliases():
    pop = _population(FLOATS, (-1.0,) * 5)
    for old, new, op in ((dict(mode="semi-dynamic"), dict(epsilon_mode="semi-dynamic"),
                          selAutomaticEpsilonLexicase),
                         (dict(rate=0.4), dict(downsample=0.4), selDownsampledLexicase)):
        with pytest.warns(DeprecationWarning, match="is deprecated: use"):
            a = op(pop, 50, rng=np.random.default_rng(1), **old)
        b = op(pop, 50, rng=np.random.default_rng(1), **new)
        assert [x[0] for x in a] == [x[0] for x in b]
    assert len(selDownsampledLexicase(pop, 5, 0.4)) == 5      # positional, as before
    assert len(selDALex(pop, 5, 10.0)) == 5
    assert len(selEpsilonLexicase(pop, 5, 0.05)) == 5
