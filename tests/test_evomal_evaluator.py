"""EvoMAL fitness evaluation (Raymond et al. 2023 §4.5-4.7): rejection protocol, local search,
learned-loss training, failure as data, SCOOP-picklability."""
import pickle

import torch
from deap import tools

from deapnn.algorithms.evomal import eaEvoMAL
from deapnn.evaluation import Evaluation
from deapnn.evomal.evaluator import EvoMALConfig, EvoMALEvaluator
from deapnn.evomal.rejection import rejection_protocol
from deapnn.evomal.toolbox import fitness_stats, make_toolbox
from deapnn.losses.archive import LossArchive
from deapnn.losses.tree import TreeLoss
from evomal_helpers import toy_data as _data


def _cfg(**kw):
    base = dict(hidden=(8,), meta_steps=4, inner_steps=2, fitness_steps=30, rejection_steps=60,
                batch_size=32)
    base.update(kw)
    return EvoMALConfig(**base)


def test_rejection_protocol():
    ok = rejection_protocol(TreeLoss("mul(-1, mul(y, log(fx)))"), "classification", 4, steps=100)
    assert ok.accepted and ok.after < ok.before
    bad = rejection_protocol(TreeLoss("mul(y, log(fx))"), "classification", 4, steps=100)
    assert not bad.accepted and "did not improve" in bad.reason
    flat = rejection_protocol(TreeLoss("sign(add(y, fx))"), "classification", 4, steps=50)
    assert not flat.accepted
    reg = rejection_protocol(TreeLoss("square(sub(y, fx))", task="regression"), "regression", 1,
                             steps=100)
    assert reg.accepted


def test_evaluator_regression_deterministic_and_picklable():
    ev = EvoMALEvaluator(_cfg(), _data())
    a = ev("square(sub(y, fx))")
    assert isinstance(a, Evaluation) and not a.failed
    assert a.info["reason"] is None and 0 < a.fitness < float("inf") and not a.info["rejected"]
    assert len(a.info["weights"]) == 3 and a.info["expression"].startswith("square(")
    assert len(a.info["meta_loss"]) == 2 and a.info["tree"] == "square(sub(y, fx))"
    b = pickle.loads(pickle.dumps(ev))("square(sub(y, fx))")
    assert a == b
    state = torch.get_rng_state()
    ev("abs(sub(y, fx))")
    assert torch.equal(state, torch.get_rng_state())       # global RNG untouched


def test_evaluator_classification():
    ev = EvoMALEvaluator(_cfg(lr=0.1, fitness_steps=60), _data("classification"))
    r = ev("mul(-1, mul(y, log(fx)))")
    assert r.info["reason"] is None and 0 <= r.fitness < 0.6


def test_failures_become_worst_fitness_with_reason():
    ev = EvoMALEvaluator(_cfg(), _data())
    rejected = ev("mul(-1, square(sub(y, fx)))")
    assert rejected.fitness == float("inf") and rejected.info["rejected"]
    assert "did not improve" in rejected.info["reason"] and not rejected.failed
    missing = ev("square(fx)")
    assert missing.fitness == float("inf") and "does not use y" in missing.info["reason"]
    unknown = ev("exp(sub(y, fx))")       # an exception: the evaluation failed
    assert unknown.fitness == float("inf") and "'exp'" in unknown.error
    assert unknown.info["tree"] == "exp(sub(y, fx))"


def test_nan_in_local_search_rejects_candidate_and_run_continues():
    ev = EvoMALEvaluator(_cfg(lr=5.0, inner_steps=3), _data())
    diverged = ev("square(sub(y, fx))")
    assert diverged.fitness == float("inf") and diverged.info["rejected"]
    assert diverged.info["reason"].startswith("local search diverged")
    tb = make_toolbox(ev, map_fn=map)
    pop = [tb.parse(t) for t in ("square(sub(y, fx))", "tanh(square(sub(y, fx)))",
                                 "abs(sub(y, fx))", "mul(-1, square(sub(y, fx)))")]
    arch = LossArchive("regression")
    pop, log = eaEvoMAL(pop, tb, 1, stats=fitness_stats(), halloffame=tools.HallOfFame(1),
                        verbose=False, archive=arch)
    assert log[0]["rejected"] == 2 and log[0]["min"] < float("inf")
    assert len(log) == 2 and any(ind.fitness.values[0] < float("inf") for ind in pop)
    assert arch.get("square(sub(y, fx))")["reason"].startswith("local search diverged")


def test_archive_gives_each_tree_its_own_local_search_and_a_hit_equals_a_fresh_evaluation():
    """Raymond et al. 2023 §4.6 / the reference's ``ea.py`` cache by tree string: trees that
    compute the same function before the local search (one output fingerprint) get their own
    edge weights, so they are evaluated separately; a repeated tree is a hit, and with the
    common fitness seed its fitness is exactly what a fresh evaluation gives."""
    calls = []
    ev = EvoMALEvaluator(_cfg(), _data())

    def evaluate(text):
        calls.append(text)
        return ev(text)
    trees = ("square(sub(y, fx))", "mul(1, square(sub(y, fx)))",
             "square(sub(mul(y, 1), fx))", "square(sub(y, fx))")
    assert len({LossArchive("regression", by="fingerprint").key(t) for t in trees}) == 1
    tb = make_toolbox(evaluate, map_fn=map)
    pop = [tb.parse(t) for t in trees]
    arch = LossArchive("regression")
    pop, log = eaEvoMAL(pop, tb, 0, stats=fitness_stats(), verbose=False, archive=arch)
    assert calls == list(trees[:3]) and log[0]["nevals"] == 3     # the repeat waits for it
    assert arch.get(trees[3])["fitness"] == pop[0].fitness.values[0] and arch.hits == 1
    fitness = [ind.fitness.values[0] for ind in pop]
    assert len(set(fitness[:3])) == 3                      # three local searches, three results
    assert fitness[3] == fitness[0]
    fresh = EvoMALEvaluator(_cfg(), _data())
    assert [fresh(t).fitness for t in trees[:3]] == fitness[:3]
