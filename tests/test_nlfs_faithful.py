"""NLFS against Morgan & Hougen's implementation (issue 22): a child whose training diverges
after the pre-screen, and the orientation of probe curves with two bends.

Reference (``OUStudent/NeuralLossFunctionEvolution``): ``fitness_functions.py``
``fitness_function_resnet_rand_aug`` returns ``None`` only when the pre-screen fails (L218–L219);
a later NaN stops training (``TerminateOnNaN``) and the fitness is ``nanmax(val_accuracy)``
(L227–L236), which ``loss_function_evolution.py`` ``evolve`` inserts (L506–L517, L537–L543).
``Loss.check_integrity`` (L339–L357) orients every curve that is not strictly monotone by its
slope at the start (``t[2]``).
"""
import json
import random

import pytest
import torch.nn.functional as F

from deapnn.losses.graph import LossGraph
from deapnn.nlfs import NLFSConfig, SurrogateConfig, SurrogateEvaluator, surrogate_training
from operators.graph_integrity import checkIntegrity

TINY = dict(steps=40, eval_every=10, prescreen_steps=10)


pytestmark = pytest.mark.usefixtures("one_thread")


class Diverging:
    """Cross-entropy for ``at`` steps, then NaN: a loss that trains, passes the pre-screen and
    diverges (with ``at`` below the pre-screen step, one that diverges before it)."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, logits, targets):
        self.calls += 1
        loss = F.cross_entropy(logits, targets)
        return loss * float("nan") if self.calls > self.at else loss


# --- the surrogate training --------------------------------------------------------------------
def test_a_training_diverging_after_the_prescreen_keeps_its_best_accuracy():
    """Before: fitness 0 with reason "non-finite loss at step 25", like a failed pre-screen.
    The reference stops (TerminateOnNaN) and scores nanmax(val_accuracy)."""
    res = surrogate_training(Diverging(25), SurrogateConfig(**TINY), 0)
    assert res["steps"] == 25 and res["reason"] is None
    assert res["diverged"] == "non-finite loss at step 25"
    assert res["fitness"] == res["val_acc"] > 0.5          # the evaluations at steps 10 and 20
    test = surrogate_training(Diverging(25), SurrogateConfig(**TINY), 0, test=True)
    assert test["fitness"] == res["fitness"] and 0.5 < test["test_acc"] <= 1
    # diverged_fitness="zero": deapnn before (a failure, fitness 0, the reason)
    old = surrogate_training(Diverging(25), SurrogateConfig(**TINY, diverged_fitness="zero"), 0)
    assert old == {"fitness": 0.0, "val_acc": res["val_acc"], "steps": 25,
                   "reason": "non-finite loss at step 25"}


@pytest.mark.parametrize("mode", ["best", "zero"])
def test_a_training_diverging_before_the_prescreen_still_fails(mode):
    res = surrogate_training(Diverging(5), SurrogateConfig(**TINY, diverged_fitness=mode), 0)
    assert res == {"fitness": 0.0, "val_acc": 0.0, "steps": 5,
                   "reason": "non-finite loss at step 5"}


def test_the_evaluator_reports_the_divergence(monkeypatch):
    monkeypatch.setattr(LossGraph, "compile", lambda self: Diverging(25))
    ev = SurrogateEvaluator(**TINY)(LossGraph.from_expression("-(y * log(yhat))"))
    assert ev.error is None and ev.fitness > 0.5 and ev.info["reason"] is None
    assert ev.info["diverged"] == "non-finite loss at step 25"
    with pytest.raises(ValueError, match="diverged_fitness"):
        SurrogateConfig(diverged_fitness="keep").validate()


# --- the search --------------------------------------------------------------------------------
def _seeded(fits):
    from deapnn.nlfs.run import random_pool, seed_population
    pool = random_pool(0, len(fits))
    pool["fitness"], pool["info"] = list(fits), [{"reason": None} for _ in fits]
    return seed_population(pool, len(fits))


@pytest.fixture
def diverging_children(monkeypatch):
    """Every candidate trains with CE for 15 steps (pre-screen at step 10) and then diverges."""
    monkeypatch.setattr(LossGraph, "compile", lambda self: Diverging(15))


def _evolve(**kw):
    from deapnn.nlfs.run import evolve
    cfg = NLFSConfig(population_size=4, pool=4, cycles=3, sample_size=2, seeds=[], budget=40,
                     **kw)
    return evolve(cfg, _seeded([0.99, 0.98, 0.97, 0.96]), SurrogateEvaluator(cfg.surrogate()),
                  map)


def test_a_child_diverging_after_the_prescreen_is_inserted_with_its_best_accuracy(
        diverging_children):
    """Before: such a child failed, was re-mutated 7 times and discarded (the population
    unchanged). The reference inserts it with its best validation accuracy so far."""
    evo = _evolve()
    children = [i for i in evo.population if i.birth > 0]
    assert len(children) == 3
    for child in children:
        assert child.info["diverged"] == "non-finite loss at step 15"
        assert child.fitness.values[0] == child.info["val_acc"] > 0.15
    assert (evo.mutation["diverged_inserted"], evo.mutation["remutated"],
            evo.mutation["discarded"]) == (3, 0, 0)
    assert [r["diverged_inserted"] for r in evo.logbook] == [0, 1, 1, 1]
    from deapnn.nlfs.summary import NLFSSummary
    text = NLFSSummary(NLFSConfig(), [], evo.mutation).render()
    assert "children diverged after the pre-screen (insert): 3 inserted" in text


def test_diverged_child_failed_keeps_the_previous_behaviour(diverging_children):
    evo = _evolve(diverged_child="failed")
    assert all(i.birth == 0 for i in evo.population)              # population unchanged
    assert (evo.mutation["discarded"], evo.mutation["remutated"],
            evo.mutation["diverged_inserted"]) == (3, 18, 0)
    evo = _evolve(diverged_child="failed", failed_child="insert")
    assert sorted(i.fitness.values[0] for i in evo.population) == [0.0, 0.0, 0.0, 0.99]
    assert evo.mutation["inserted_failed"] == 3 and evo.mutation["diverged_inserted"] == 0


def test_the_config_maps_diverged_child_to_the_surrogate():
    assert (NLFSConfig().diverged_child, NLFSConfig().flip_rule) == ("insert", "start")
    assert NLFSConfig().surrogate().diverged_fitness == "best"
    assert NLFSConfig().standard_surrogate().diverged_fitness == "best"
    old = NLFSConfig(diverged_child="failed")
    assert old.surrogate().diverged_fitness == old.standard_surrogate().diverged_fitness == "zero"
    # the final comparison's metrics do not depend on it: a resumed run keeps its trainings
    from deapnn.nlfs.compare import _ident, final_config
    assert _ident(final_config(old)) == _ident(final_config(NLFSConfig()))


def _parser():
    import argparse
    from deapnn.commands import nlfs
    p = argparse.ArgumentParser()
    nlfs.register(p.add_subparsers(dest="command"))
    return p


def test_cli_diverged_child_and_flip_rule_flags():
    from deapnn.commands.common import UsageError
    from deapnn.commands.nlfs import COMMAND
    cfg = COMMAND.config_of(_parser().parse_args(
        ["nlfs", "--diverged-child", "failed", "--flip-rule", "end"]))
    assert (cfg.diverged_child, cfg.flip_rule) == ("failed", "end")
    with pytest.raises(UsageError, match=r"^--diverged-child must be one of insert, failed, "
                                         r"got 'keep'$"):
        COMMAND.config_of(_parser().parse_args(["nlfs", "--diverged-child", "keep"]))
    with pytest.raises(UsageError, match=r"^--flip-rule must be one of start, end"):
        COMMAND.config_of(_parser().parse_args(["nlfs", "--flip-rule", "middle"]))


@pytest.mark.parametrize("version", [0, 1])
def test_an_older_run_resumes_with_the_behaviour_it_had(tmp_path, version):
    """A config.json written before these settings (versions 0 and 1) describes a run that
    treated diverged children as failed and flipped two-bend curves by their end."""
    from deapnn.rundir import RunDir
    block = {k: v for k, v in NLFSConfig().to_dict().items()
             if k not in ("diverged_child", "flip_rule")}
    (tmp_path / "config.json").write_text(json.dumps(
        {"command": "nlfs", "config": block, **({"schema_version": 1} if version else {})}))
    cfg = RunDir.resume(tmp_path).stored("nlfs", NLFSConfig)
    assert (cfg.diverged_child, cfg.flip_rule) == ("failed", "end")
    assert cfg.surrogate().diverged_fitness == "zero"
    current = tmp_path / "now"
    current.mkdir()
    RunDir.create(current, "nlfs", NLFSConfig())
    cfg = RunDir.resume(current).stored("nlfs", NLFSConfig)
    assert (cfg.diverged_child, cfg.flip_rule) == ("insert", "start")


# --- the integrity check: curves with two bends -------------------------------------------------
def _cubic(y, yhat):
    """p³/3 − p²/2 + 0.16 p on the probe: rising to p = 0.2, falling to 0.8, rising again."""
    p = yhat[:, :1]
    return p ** 3 / 3 - p ** 2 / 2 + 0.16 * p + 0 * y[:, :1]


def test_an_up_down_up_curve_is_flipped_as_in_the_reference():
    """Before: kept (it ends rising). The reference flips a curve that starts rising."""
    res = checkIntegrity(_cubic)
    assert res.accept and res.flip and res.reason == "two-bend, flipped"
    assert checkIntegrity(_cubic, flip_rule="end").reason == "two-bend"      # deapnn before


def test_a_down_up_down_curve_is_kept_as_in_the_reference():
    res = checkIntegrity(lambda y, yhat: -_cubic(y, yhat))
    assert res.accept and not res.flip and res.reason == "two-bend"
    assert checkIntegrity(lambda y, yhat: -_cubic(y, yhat), "end").flip


def _first_point_raised(curve):
    """``curve`` of p with the first probe point (p = 1e-7) raised by 1: a bend at step 0."""
    return lambda y, yhat: curve(yhat[:, :1]) + (yhat[:, :1] < 5e-4) + 0 * y[:, :1]


def test_a_two_bend_curve_is_oriented_by_its_third_step_as_in_the_reference():
    """The reference reads the slope at the start at the third step (``t[2]``): a dip at the
    first point followed by an inverted U is flipped (the dip is not the start)."""
    res = checkIntegrity(_first_point_raised(lambda p: -(p - 0.6) ** 2))
    assert res.accept and res.reason == "two-bend, flipped"
    res = checkIntegrity(lambda y, yhat: -_first_point_raised(lambda p: -(p - 0.6) ** 2)(y, yhat))
    assert res.accept and res.reason == "two-bend"


def test_a_u_bending_in_the_first_steps_follows_the_paper():
    """The paper keeps a U; the reference's third-step slope would flip one whose minimum lies
    in the first three steps (its slope there is already rising). deapnn keeps it."""
    res = checkIntegrity(_first_point_raised(lambda p: p ** 2))
    assert res.accept and res.reason == "U" and not res.flip


@pytest.mark.parametrize("expr,flip", [("-(y * log(yhat))", False), ("y * log(yhat)", True),
                                       ("-(log(yhat) - y / yhat)", False),
                                       ("log(yhat) - y / yhat", True)])
def test_monotone_and_one_bend_curves_do_not_depend_on_the_rule(expr, flip):
    g = LossGraph.from_expression(expr)
    assert checkIntegrity(g).flip is checkIntegrity(g, "end").flip is flip


def test_genomes_random_and_mutated_follow_the_rule(monkeypatch):
    g = LossGraph.from_expression("min(yhat^2, i0e(y))")
    assert checkIntegrity(g).reason == "two-bend, flipped"
    assert checkIntegrity(g, "end").reason == "two-bend"
    with pytest.raises(ValueError, match="flip_rule must be one of start, end"):
        checkIntegrity(g, "middle")
    from deapnn.operators import graph
    from deapnn.operators.graph import mutGraph
    from deapnn.nlfs.toolbox import make_toolbox, random_individual
    rules, real = [], graph.checkIntegrity
    monkeypatch.setattr(graph, "checkIntegrity",
                        lambda c, rule: rules.append(rule) or real(c, rule))
    mutGraph(LossGraph.from_expression("-(y * log(yhat))"), rng=random.Random(0), flip_rule="end")
    assert rules and set(rules) == {"end"}
    tb = make_toolbox(lambda ind: (0.0,), [], map, flip_rule="end")
    assert tb.mutate.keywords["flip_rule"] == tb.individual.keywords["flip_rule"] == "end"
    ind = random_individual(random.Random(3), flip_rule="end")
    assert ind.flip == checkIntegrity(ind, "end").flip


def test_the_search_gives_its_flip_rule_to_the_operators(monkeypatch):
    from deapnn.nlfs import run
    made, real = [], run.make_toolbox
    monkeypatch.setattr(run, "make_toolbox", lambda *a, **kw: made.append(kw) or real(*a, **kw))
    cfg = NLFSConfig(population_size=4, pool=4, cycles=0, sample_size=2, seeds=[],
                     flip_rule="end")
    run.evolve(cfg, _seeded([0.4, 0.3, 0.2, 0.1]), lambda ind: (0.0,), map)
    assert made[0]["flip_rule"] == "end"
    pool = run.random_pool(0, 3, flip_rule="end")["genomes"]
    assert all(g.flip == checkIntegrity(g, "end").flip for g in map(LossGraph.from_json, pool))
