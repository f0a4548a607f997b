"""Issue 26 (part A) fixes of the DEAP lexicase wrappers: DEAP's k <= 0 result, one refusal for
every former/new keyword pair given together, ``key_weights=`` for higher-is-better ``key=``
values, and DALex's offset invariance seen through the wrapper (both weight signs)."""
import random

import numpy as np
import pytest
from deap import base, creator, tools

from operators.lexicase_deap import (case_errors, selAutomaticEpsilonLexicase, selDALex,
                                     selDownsampledLexicase, selEpsilonLexicase, selLexicase)
from test_lexicase_deap import _population

OPS = [selLexicase, selEpsilonLexicase, selAutomaticEpsilonLexicase, selDownsampledLexicase,
       selDALex]
#: one all-ones individual that dominates, three that do not (per-case values, higher is better)
SCORES = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1.0]])


def _ids(selected):
    return [ind[0] for ind in selected]


# ------------------------------------------------------------------ k <= 0, as deap.tools
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("k", [0, -1, -5])
def test_k_zero_or_negative_returns_an_empty_list_as_deap(op, k):
    pop = _population(SCORES, (1.0,) * 4)
    assert tools.selLexicase(pop, k) == [] and tools.selEpsilonLexicase(pop, k, 0.1) == []
    assert tools.selAutomaticEpsilonLexicase(pop, k) == []
    assert op(pop, k) == []
    assert op([], k) == []
    with pytest.raises(ValueError, match="k must be an integer"):
        op(pop, 2.5)


# ------------------------------------------------------------------ former keyword names
CONFLICTS = [
    (selAutomaticEpsilonLexicase, (), dict(mode="semi-dynamic", epsilon_mode="dynamic")),
    (selAutomaticEpsilonLexicase, (), dict(mode="dynamic", epsilon_mode="semi-dynamic")),
    (selAutomaticEpsilonLexicase, (), dict(mode="dynamic", epsilon_mode="dynamic")),
    (selDownsampledLexicase, (0.1,), dict(rate=0.5)),
    (selDownsampledLexicase, (0.5,), dict(rate=0.5)),
    (selDownsampledLexicase, (), dict(rate=0.5, downsample=0.1)),
    (selDownsampledLexicase, (), dict(rate=0.1, downsample=0.5)),
]


@pytest.mark.parametrize("op, args, kw", CONFLICTS)
def test_former_and_new_keyword_together_are_refused_the_same_way(op, args, kw):
    pop = _population(SCORES, (1.0,) * 4)
    old, new = ("mode", "epsilon_mode") if "mode" in kw else ("rate", "downsample")
    with pytest.raises(TypeError, match=f"got both {old}= and {new}=: give {new}= only"):
        op(pop, 1, *args, **kw)


def test_former_keyword_alone_still_works_with_a_warning():
    pop = _population(SCORES, (1.0,) * 4)
    with pytest.warns(DeprecationWarning, match="mode= is deprecated: use epsilon_mode="):
        a = selAutomaticEpsilonLexicase(pop, 30, mode="semi-dynamic", rng=np.random.default_rng(1))
    b = selAutomaticEpsilonLexicase(pop, 30, epsilon_mode="semi-dynamic",
                                    rng=np.random.default_rng(1))
    assert _ids(a) == _ids(b)
    with pytest.warns(DeprecationWarning, match="rate= is deprecated: use downsample="):
        a = selDownsampledLexicase(pop, 30, rate=0.5, rng=np.random.default_rng(2))
    assert _ids(a) == _ids(selDownsampledLexicase(pop, 30, 0.5, rng=np.random.default_rng(2)))


# ------------------------------------------------------------------ key_weights=
@pytest.mark.parametrize("op", OPS)
def test_key_weights_maximise_higher_is_better_key_values(op):
    pop = _population(np.zeros((4, 1)), (-1.0,))
    for ind, row in zip(pop, SCORES):
        ind.scores = list(row)
    kw = {"downsample": 1.0} if op is selDownsampledLexicase else {}
    random.seed(0)
    best = _ids(op(pop, 200, key=lambda ind: ind.scores, key_weights=1.0, **kw))
    assert best.count(3) >= 190                          # the all-ones one dominates
    per_case = _ids(op(pop, 200, key=lambda ind: ind.scores, key_weights=(2.0, 1.0, 1.0, 0.5),
                       **kw))
    assert per_case.count(3) >= 190
    worst = _ids(op(pop, 200, key=lambda ind: ind.scores, **kw))   # key= values: minimised
    assert worst.count(2) >= 190
    # exactly what the negated scores give as errors
    a = op(pop, 100, key=lambda ind: ind.scores, key_weights=1.0, rng=np.random.default_rng(9))
    b = op(pop, 100, key=lambda ind: [-v for v in ind.scores], rng=np.random.default_rng(9))
    assert _ids(a) == _ids(b)


def test_key_weights_follow_the_sign_as_fitness_weights_do():
    weights = (1.0, -1.0, 2.0, -0.5)
    pop = _population(SCORES, weights)
    via_key = case_errors(pop, key=lambda ind: ind.fitness.values, key_weights=weights)
    assert np.array_equal(via_key, case_errors(pop))
    with pytest.raises(ValueError, match="key_weights= applies to key= values"):
        case_errors(pop, key_weights=1.0)
    with pytest.raises(ValueError, match="key_weights has 3 weights but key= gives 4 values"):
        case_errors(pop, key=lambda ind: ind.fitness.values, key_weights=(1.0, 1.0, 1.0))
    for bad in (0.0, np.nan, (1.0, 0.0, 1.0, 1.0)):
        with pytest.raises(ValueError, match="key_weights must be non-zero finite numbers"):
            case_errors(pop, key=lambda ind: ind.fitness.values, key_weights=bad)


def test_key_weights_onemax_climbs():
    """A key returning bits (higher is better): with key_weights=1 selection climbs onemax."""
    rnd = random.Random(3)
    creator_name = "FitFixOneMax"
    if not hasattr(creator, creator_name):
        creator.create(creator_name, base.Fitness, weights=(1.0,))
        creator.create("IndFixOneMax", list, fitness=getattr(creator, creator_name))
    cls = creator.IndFixOneMax
    pop = [cls(rnd.randint(0, 1) for _ in range(30)) for _ in range(40)]
    gen = np.random.default_rng(0)
    for _ in range(15):
        for ind in pop:
            ind.fitness.values = (sum(ind),)
        parents = selLexicase(pop, len(pop), key=list, key_weights=1.0, rng=gen)
        pop = [cls(b if rnd.random() > 1 / 30 else 1 - b for b in p) for p in parents]
    assert np.mean([sum(ind) for ind in pop]) > 25


# ------------------------------------------------------------------ DALex through the wrapper
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_seldalex_ignores_a_constant_per_case_for_either_weight_sign(sign):
    rng = np.random.default_rng(4)
    values = rng.integers(0, 4, size=(10, 12)).astype(float)
    offsets = rng.integers(-1000, 1000, size=12).astype(float)
    weights = (sign,) * 12
    plain = _ids(selDALex(_population(values, weights), 300, rng=np.random.default_rng(5)))
    moved = _ids(selDALex(_population(values + offsets, weights), 300,
                          rng=np.random.default_rng(5)))
    assert plain == moved
