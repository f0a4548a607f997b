"""Informed down-sampled lexicase selection (issue 26; Boldi et al. 2024): the case distances, the
farthest-first traversal against hand-worked traversals, the recomputation schedule, and a
checkpoint taken in the middle of a seeded run that resumes with the selections of an
uninterrupted one."""
import pickle
import random
import warnings

import numpy as np
import pytest
from deap import base

from operators.lexicase_informed import (CaseGroups, case_distances, farthest_first,
                                         informed_downsampled_lexicase)
from operators.lexicase_informed_deap import selInformedDownsampledLexicase
from test_lexicase_deap import _population

#: five cases on a line at 0, 1, 3, 7, 15: every traversal step has a unique farthest case
LINE = np.array([0, 1, 3, 7, 15])
LINE_D = np.abs(LINE[:, None] - LINE[None, :])
#: worked by hand: start -> the full traversal (each next case maximises its distance to the
#: nearest chosen one; e.g. from 0: 15 (d 15), then 7 (min(7, 8)), then 3 (min(3, 12, 4)), then 1)
LINE_TRAVERSALS = {0: [0, 4, 3, 2, 1], 1: [1, 4, 3, 2, 0], 2: [2, 4, 3, 0, 1],
                   3: [3, 4, 0, 2, 1], 4: [4, 0, 3, 2, 1]}


def test_case_distances_count_the_rows_that_solve_exactly_one_of_two_cases():
    E = np.array([[0, 0, 1, 3], [0, 2, 0, 0], [1, 1, 1, 0]])
    S = E <= 0
    brute = np.array([[sum(S[i, a] != S[i, b] for i in range(3)) for b in range(4)]
                      for a in range(4)])
    assert (case_distances(E) == brute).all() and (np.diag(brute) == 0).all()
    # threshold 1: solve vectors (rows) of the cases 0..3 are TTT, TFT, TTT, FTT
    assert case_distances(E, threshold=1).tolist() == [[0, 1, 0, 1], [1, 0, 1, 2],
                                                       [0, 1, 0, 1], [1, 2, 1, 0]]
    # NaN and +inf never solve, -inf always does
    assert case_distances([[np.nan, -np.inf, np.inf, 0.0]]).tolist() == \
        case_distances([[1, 0, 1, 0]]).tolist()


def test_farthest_first_matches_the_hand_worked_traversals_from_every_start():
    starts = set()
    for seed in range(60):
        order = farthest_first(LINE_D, 5, rng=np.random.default_rng(seed)).tolist()
        assert order == LINE_TRAVERSALS[order[0]]
        starts.add(order[0])
        prefix = farthest_first(LINE_D, 3, rng=np.random.default_rng(seed)).tolist()
        assert prefix == order[:3]                   # a shorter down-sample is a prefix
    assert starts == set(range(5))                   # the first case is random


def test_farthest_first_breaks_ties_at_random_and_fills_with_synonyms_last():
    # cases 0-2 are synonyms (distance 0), 3 and 4 are both at 2 from them and 4 from each other
    D = np.array([[0, 0, 0, 2, 2], [0, 0, 0, 2, 2], [0, 0, 0, 2, 2],
                  [2, 2, 2, 0, 4], [2, 2, 2, 4, 0]])
    seen = set()
    for seed in range(80):
        order = farthest_first(D, 5, rng=seed).tolist()
        assert sorted(order) == list(range(5))
        firsts = order[:3]
        assert {3, 4} <= set(firsts) and len({0, 1, 2} & set(firsts)) == 1
        seen.add(tuple(order[:3]))
    assert len(seen) > 6                             # starts and ties vary


def test_grouped_distances_traverse_as_the_full_matrix_does():
    """The operator stores cases grouped by solve vector; its traversal equals the one on the full
    distance matrix, draw for draw."""
    E = np.random.default_rng(3).integers(0, 3, size=(6, 30))
    S = E <= 0
    for seed in range(10):
        a = farthest_first(case_distances(E), 12, rng=np.random.default_rng(seed))
        b = CaseGroups.of(S).downsample(12, np.random.default_rng(seed))
        assert (a == b).all()


def test_a_down_sample_covers_every_group_of_synonymous_cases():
    # 12 cases in 3 groups of 4 identical columns: a down-sample of 3 takes one of each
    rng = np.random.default_rng(0)
    base_cols = rng.integers(0, 2, size=(30, 3))
    base_cols[:, 1] = 1 - base_cols[:, 0]
    E = np.repeat(base_cols, 4, axis=1)
    sel = selInformedDownsampledLexicase(downsample=0.25, parent_sample=1.0, interval=1, rng=1)
    for _ in range(20):
        sel.select(E, 4)
    for _ in range(20):
        sel.select(E, 4)
        assert sorted(sel.cases // 4) == [0, 1, 2]


def test_distances_are_recomputed_every_interval_generations_after_the_selection():
    gens = [np.random.default_rng(g).integers(0, 3, size=(8, 10)) for g in range(8)]
    sel = selInformedDownsampledLexicase(downsample=0.3, parent_sample=1.0, interval=3, rng=0)
    for g, E in enumerate(gens):
        sel.select(E, 4)
        st = sel.state_dict()
        U, grp = st["group_solve"], st["case_group"]
        D = (U[grp][:, None, :] != U[grp][None, :, :]).sum(axis=2)
        assert (D == case_distances(gens[g - g % 3])).all(), g
        assert sel.generation == g + 1 and sel.cases.size == 3


def _run(sel, generations, k=6, start=0):
    out = []
    for g in range(start, generations):
        E = np.random.default_rng(100 + g).integers(0, 3, size=(20, 24))
        out.append(sel.select(E, k).tolist())
    return out


def _op(rng):
    return selInformedDownsampledLexicase(downsample=0.25, parent_sample=0.2, interval=3,
                                          rng=rng)


def test_a_pickled_checkpoint_resumes_with_the_selections_of_an_uninterrupted_run():
    whole = _run(_op(np.random.default_rng(5)), 10)
    first = _op(np.random.default_rng(5))
    head = _run(first, 4)
    blob = pickle.dumps(first)
    del first
    tail = _run(pickle.loads(blob), 10, start=4)
    assert head + tail == whole
    # state_dict into a fresh instance: its own generator is reset to the checkpoint's state
    second = _op(np.random.default_rng(5))
    head = _run(second, 7)
    fresh = _op(np.random.default_rng(12345))
    fresh.load_state_dict(second.state_dict())
    assert head + _run(fresh, 10, start=7) == whole


def test_with_pythons_random_state_a_checkpoint_holds_the_operator_and_random_getstate():
    random.seed(9)
    whole = _run(_op(None), 8)
    random.seed(9)
    sel = _op(None)
    head = _run(sel, 5)
    blob = pickle.dumps((sel, random.getstate()))
    random.seed(0)                                    # the crash
    sel, state = pickle.loads(blob)
    random.setstate(state)
    assert head + _run(sel, 8, start=5) == whole


def test_deap_registration_of_an_instance_and_a_clear_error_for_the_bare_class():
    pop = _population(np.random.default_rng(0).integers(0, 2, size=(12, 20)), (-1.0,) * 20)
    tb = base.Toolbox()
    sel = selInformedDownsampledLexicase()
    tb.register("select", sel)
    random.seed(1)
    for _ in range(3):
        chosen = tb.select(pop, 12)
        assert len(chosen) == 12 and all(ind in pop for ind in chosen)
    assert tb.select(pop, 0) == [] and tb.select(pop, -2) == []
    assert sel.generation == 3                        # selecting nothing is not a generation
    tb.register("select", selInformedDownsampledLexicase)
    with pytest.raises(TypeError, match="register an instance"):
        tb.select(pop, 12)


def test_maximised_fitness_with_the_default_threshold_warns_once():
    pop = _population(np.random.default_rng(0).integers(0, 2, size=(10, 16)), (1.0,) * 16)
    sel = selInformedDownsampledLexicase(parent_sample=0.5, interval=1, rng=0)
    with pytest.warns(UserWarning, match="threshold=-0.5"):
        sel(pop, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel(pop, 5)                                   # once per instance
    good = selInformedDownsampledLexicase(parent_sample=0.5, interval=1, threshold=-0.5, rng=0)
    good(pop, 5)
    assert len(np.unique(good.state_dict()["case_group"])) > 1


def test_stateless_function_selects_only_on_its_down_sample_and_validates():
    # column 0 is won by row 0, everything else by row 1: a one-case down-sample picks one winner
    E = np.ones((3, 10))
    E[1, 1:] = 0
    E[0, 0] = 0
    for seed in range(10):
        idx = informed_downsampled_lexicase(E, 20, downsample=0.1, parent_sample=1.0, rng=seed)
        assert len(set(idx.tolist())) == 1 and idx[0] in (0, 1)
    idx = informed_downsampled_lexicase(E, 50, downsample=1.0, rng=0)
    assert set(idx.tolist()) == {0, 1}
    assert informed_downsampled_lexicase(E, 0).size == 0
    for kw in ({"downsample": 0}, {"downsample": 1.5}, {"parent_sample": 0},
               {"threshold": np.nan}, {"epsilon": [0.1, 0.2]}):
        with pytest.raises(ValueError):
            informed_downsampled_lexicase(E, 2, **kw)
    with pytest.raises(ValueError, match="cases"):
        sel = selInformedDownsampledLexicase(rng=0)
        sel.select(E, 2)
        sel.select(E[:, :5], 2)
    with pytest.raises(ValueError, match="interval"):
        selInformedDownsampledLexicase(interval=0)
