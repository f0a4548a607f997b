"""NLFS surrogate evaluator, elimination protocol, run driver and CLI (Morgan & Hougen 2024, §3)."""
import argparse
import os
import pickle
import random

import pytest
import torch

from deapnn.losses.graph import LossGraph
from deapnn.nlfs import (NLFSConfig, SurrogateConfig, SurrogateEvaluator, run_nlfs,
                         successive_halving, surrogate_training)
from deapnn.nlfs.toolbox import LossIndividual, make_toolbox, random_individual

CE = "-(y * log(yhat))"
TINY = dict(steps=40, eval_every=10, prescreen_steps=10)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_evaluator_trains_ce_and_is_deterministic_and_picklable():
    ev = SurrogateEvaluator(**TINY)
    ind = LossIndividual.from_expression(CE)
    res = ev(ind)
    fit, info = res.fitness, res.info
    assert res.error is None and fit > 0.5 and info["reason"] is None and info["steps"] == 40
    torch.manual_seed(1234)
    random.seed(99)                                   # global RNG state must not matter
    ev2 = pickle.loads(pickle.dumps(ev))
    assert ev2(ind.to_json()).fitness == fit            # same genome -> same seed -> same result


def test_diverging_loss_gets_zero_with_reason():
    ev = SurrogateEvaluator(**TINY)
    res = ev(LossGraph.from_expression("exp(exp(exp(exp(yhat)))) * y"))
    fit, info = res.fitness, res.info
    assert fit == 0.0 and "non-finite" in info["reason"]
    res = surrogate_training(lambda z, t: z.sum() * float("nan"), SurrogateConfig(**TINY), 0)
    assert res["fitness"] == 0.0 and "non-finite" in res["reason"]


def test_prescreen_aborts_a_loss_that_does_not_learn():
    # maximising the right-class probability's complement: accuracy collapses
    res = SurrogateEvaluator(**TINY)(LossGraph.from_expression("y * log(yhat)"))
    fit, info = res.fitness, res.info
    assert fit == 0.0 and info["reason"].startswith("pre-screen") and info["steps"] == 10


def test_evaluator_rejects_bad_config():
    with pytest.raises(ValueError, match="steps"):
        SurrogateEvaluator(steps=0)


def test_successive_halving_keeps_the_best():
    cands = [LossGraph.from_expression(e) for e in
             [CE, "y * log(yhat)", "(y - yhat)^2", "-(log(yhat) - y / yhat)"]]
    stage = SurrogateConfig(steps=30, eval_every=10, prescreen_steps=0)
    survivors, history = successive_halving(cands, [stage, stage], sizes=(4, 2, 1))
    assert len(survivors) == 1
    assert [h["round"] for h in history] == [1] * 4 + [2] * 2
    assert sum(h["kept"] for h in history if h["round"] == 1) == 2
    worst = LossGraph.from_expression("y * log(yhat)").to_expression()
    assert not [h for h in history if h["expression"] == worst][0]["kept"]
    with pytest.raises(ValueError, match="stages"):
        successive_halving(cands, [stage], sizes=(4, 2, 1))


def test_toolbox_mutation_respects_live_population():
    random.seed(0)
    pop = [random_individual() for _ in range(5)]
    tb = make_toolbox(lambda ind: (1.0,), pop, map_fn=map)
    child = tb.mutate(tb.clone(pop[0]))[0]
    exprs = {p.to_expression() for p in pop}
    assert child.to_expression() not in exprs and not child.fitness.valid
    assert pickle.loads(pickle.dumps(child)).to_json() == child.to_json()


class _Interrupt(Exception):
    pass


def _tracing_map(limit=None, trace=None):
    calls = [0]

    def m(fn, items):
        out = []
        for it in items:
            calls[0] += 1
            if calls[0] == limit:
                raise _Interrupt
            if trace is not None:
                trace.append(getattr(fn, "__name__", type(fn).__name__))
            out.append(fn(it))
        return out
    return m


def test_run_driver_resume_equals_uninterrupted(tmp_path):
    from deapnn.rundir import RunDir
    cfg = NLFSConfig(population_size=4, pool=6, cycles=5, sample_size=2, budget=20, seeds=[], top=2)
    full = run_nlfs(cfg, RunDir(tmp_path / "a", {"nlfs": {}}), map_fn=map, log=lambda *a: None)
    rd = RunDir(tmp_path / "b", {"nlfs": {}})
    with pytest.raises(_Interrupt):                        # dies during the evolution phase
        run_nlfs(cfg, rd, map_fn=_tracing_map(cfg.pool + cfg.rescore_count() + 2),
                 log=lambda *a: None)
    assert rd.load_checkpoint()["phase"] == "evolve"
    again = run_nlfs(cfg, RunDir.resume(tmp_path / "b"), map_fn=map, log=lambda *a: None)
    assert again.best == full.best and again.logbook == full.logbook
    assert again.population == full.population
    assert os.path.exists(tmp_path / "b" / "probe_curves.png")
    from deapnn.losses import get
    mod = get("nlfs_1", path=tmp_path / "b")
    z, t = torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.isfinite(mod(z, t))


def _parser():
    from deapnn.commands import nlfs
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    nlfs.register(sub)
    return p


@pytest.mark.parametrize("argv,match", [
    ("--population 3 --sample-size 5", "sample size 5 exceeds the population size 3"),
    ("--dataset nosuch", "unknown dataset"),
    ("--dataset diabetes", "classification"),
    ("--budget 0", "--budget"),
])
def test_cli_bad_input_fails_fast(argv, match):
    from deapnn.commands.common import UsageError
    args = _parser().parse_args(["nlfs", *argv.split()])
    with pytest.raises(UsageError, match=match):
        args.check(args)


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    args = _parser().parse_args(
        ["nlfs", "--population-size", "3", "--pool", "4", "--cycles", "2", "--sample-size", "2",
         "--budget", "20", "--seeds", "0-1", "--final-steps", "20", "--top", "1",
         "--lr-grid", "1,2", "--out", str(out), "--quiet"])
    args.check(args)
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "nlfs_1" in text and "cross-entropy" in text and "tuned comparison" in text
    assert "label-smoothed CE" in text and "scale report" in text
    for f in ("results.json", "losses.json", "probe_curves.png", "logbook.csv", "checkpoint.pt"):
        assert (out / f).exists()


def test_scale_report_uses_the_datasets_number_of_classes(tmp_path):
    """The scale report of a found loss is measured on random outputs with the task's classes
    (iris: 3), not a fixed 10: it equals scale_report(loss, 3) and differs from the 10-class one."""
    import json
    from deapnn.losses import LossGraph
    from deapnn.losses.scale import scale_report
    out = tmp_path / "run"
    args = _parser().parse_args(
        ["nlfs", "--dataset", "iris", "--population-size", "3", "--pool", "4", "--cycles", "1",
         "--sample-size", "2", "--budget", "10", "--seeds", "none", "--top", "1", "--no-tune",
         "--out", str(out), "--quiet"])
    args.check(args)
    assert args.func(args) == 0
    results = json.loads((out / "results.json").read_text())
    best, = results["best"]
    name, loss = best["name"], LossGraph.from_json(best["genome"]).compile()
    assert results["scale"][name] == scale_report(loss, 3)
    assert results["scale"][name]["grad_ratio"] != scale_report(loss, 10)["grad_ratio"]


def test_reported_best_losses_are_distinct_phenotypes():
    from deapnn.algorithms.regularized import DistinctHallOfFame
    from operators.graph import samePhenotype

    def ind(expr, fit):
        i = LossIndividual.from_expression(expr)
        i.fitness.values = (fit,)
        return i
    hof = DistinctHallOfFame(3, similar=samePhenotype)
    hof.update([ind(CE, 0.5), ind("-(y * log(yhat) + y * log(yhat))", 0.6),
                ind("(y - yhat)^2", 0.4), ind(CE, 0.5)])
    # 2·CE has CE's probe curve: only the fitter of the two is kept
    assert [h.to_expression() for h in hof] == [
        LossGraph.from_expression("-(y * log(yhat) + y * log(yhat))").to_expression(),
        LossGraph.from_expression("(y - yhat)^2").to_expression()]


# the untuned final protocol
ELIM = dict(population_size=4, pool=6, cycles=4, sample_size=2, budget=20, seeds=[0, 1],
            final_steps=20, top=2, eliminate=True, sizes=[4, 2, 1], tune=False)




@pytest.fixture(scope="module")
def elim_run(tmp_path_factory):
    """One uninterrupted tiny run with elimination and a final comparison (shared)."""
    from deapnn.rundir import RunDir
    torch.set_num_threads(1)
    trace = []
    out = run_nlfs(NLFSConfig(**ELIM), RunDir(tmp_path_factory.mktemp("elim") / "a", {"nlfs": {}}),
                   map_fn=_tracing_map(trace=trace))
    return out, out.render(), trace


def test_eliminate_reports_surrogate_fitness_and_round_scores(elim_run):
    from operators.graph import samePhenotype
    out, text, _ = elim_run
    assert "nan" not in text and "rounds=" in text
    assert len(out.best) == 1                              # sizes end at 1 survivor
    for e in out.best:
        assert 0 < e["fitness"] <= 1 and len(e["elimination"]) == 2
    assert out.paired is not None and len(out.paired["diff"]) == 2
    assert out.mutation["children"] == 4 + out.mutation["remutated"]    # 4 cycles + re-mutations
    assert out.mutation["failed"] == 0
    hof = [LossGraph.from_expression(b["expression"]) for b in out.best]
    assert not any(samePhenotype(a, b) for i, a in enumerate(hof) for b in hof[i + 1:])


def test_resume_after_kills_in_late_phases_skips_done_work(tmp_path, elim_run):
    """A run killed during an elimination round, resumed, killed again during the final
    comparison and resumed again: each resume continues from the per-candidate / per-seed
    checkpoint (no completed training is redone) and the result is the uninterrupted one."""
    from deapnn.rundir import RunDir
    cfg = NLFSConfig(**ELIM)
    full, _, trace = elim_run
    n_final = trace.count("_final_job")
    assert n_final == 2 * len(cfg.seeds)
    total = len(trace)
    n_elim = 4 + 2                                         # sizes 4 -> 2 -> 1
    kill_elim = total - n_final - n_elim + 3               # 3rd candidate of round 1
    rd = RunDir(tmp_path / "b", {"nlfs": {}})
    with pytest.raises(_Interrupt):
        run_nlfs(cfg, rd, map_fn=_tracing_map(kill_elim), log=lambda *a: None)
    assert rd.load_checkpoint()["phase"] == "eliminate"
    kill_final = (n_elim - 2) + 2                          # then the 2nd final seed
    redo = []
    with pytest.raises(_Interrupt):
        run_nlfs(cfg, RunDir.resume(tmp_path / "b"), map_fn=_tracing_map(kill_final, redo),
                 log=lambda *a: None)
    assert redo == ["SurrogateEvaluator"] * (n_elim - 2) + ["_final_job"]
    assert rd.load_checkpoint()["phase"] == "final"
    redo = []
    again = run_nlfs(cfg, RunDir.resume(tmp_path / "b"), map_fn=_tracing_map(trace=redo),
                     log=lambda *a: None)
    assert redo == ["_final_job"] * (n_final - 1)          # only the unfinished seeds
    for key in ("best", "comparison", "paired", "mutation", "logbook"):
        assert getattr(again, key) == getattr(full, key), key


def test_config_constraints_are_declared_once_and_round_trip():
    from deapnn.config import ConfigError
    for bad, field in [(dict(budget=0), "budget"), (dict(cycles=-1), "cycles"),
                       (dict(sizes=[4, 6]), "sizes"),
                       (dict(population_size=3, sample_size=5), "sample_size"),
                       (dict(population_size=8, pool=4), "pool"),
                       (dict(dataset="diabetes"), "dataset"),
                       (dict(final_model="nosuch"), "final_model")]:
        with pytest.raises(ConfigError) as info:
            NLFSConfig(**bad).validate()
        assert info.value.field == field, bad
    cfg = NLFSConfig(population_size=4, pool=6, sample_size=2, eliminate=True, sizes=[4, 2, 1])
    assert NLFSConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="lr"):
        SurrogateConfig(lr=0).validate()
    assert cfg.surrogate().validate().steps == cfg.budget


@pytest.mark.parametrize("argv,match", [
    ("--budget 0", r"^--budget must be an integer >= 1, got 0$"),
    ("--population 4 --sample-size 2 --pool 3",
     r"^--pool: pool 3 is smaller than the population 4$"),
    ("--final-model nosuch", r"^--final-model: unknown model 'nosuch'"),
])
def test_cli_error_names_the_flag(argv, match):
    from deapnn.commands.common import UsageError
    args = _parser().parse_args(["nlfs", *argv.split()])
    with pytest.raises(UsageError, match=match):
        args.check(args)


def test_cli_defaults_are_the_config_defaults():
    from deapnn.commands.nlfs import COMMAND
    args = _parser().parse_args(["nlfs"])
    d = NLFSConfig()
    assert COMMAND.config_of(args) == NLFSConfig(pool=2 * d.population_size,
                                                 final_steps=3 * d.budget)
    assert NLFSConfig().pool == 2 * d.population_size and d.final_steps == 3 * d.budget


def test_nlfs_library_does_not_import_the_command_layer():
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parents[1] / "deapnn"
    files = [*(root / "nlfs").glob("*.py"), root / "algorithms" / "regularized.py"]
    offenders = [p.name for p in files
                 if re.search(r"from \.+commands|deapnn\.commands", p.read_text())]
    assert offenders == []


def test_run_nlfs_is_phases_and_short():
    import inspect
    from deapnn.nlfs import run as run_module
    assert len(inspect.getsource(run_module.run_nlfs).splitlines()) <= 60
    for name in ("evaluate_pool", "seed_population", "evolve", "eliminate", "best_entries",
                 "register_best", "plot_probe", "compare_final"):
        assert callable(getattr(run_module, name))


# --- aging and failed children (Morgan & Hougen 2024 §3.4; defects of issue 12) ---------------

def _fake_pool(fits):
    from deapnn.nlfs.run import random_pool
    pool = random_pool(0, len(fits))
    pool["fitness"] = list(fits)
    pool["info"] = [{"reason": None} for _ in fits]
    return pool


class _FixedEvaluator:
    """Children score ``fitness``; with ``reason`` they fail (e.g. a pre-screen)."""

    def __init__(self, fitness, reason=None):
        self.fitness, self.reason, self.calls = fitness, reason, 0

    def __call__(self, ind):
        from deapnn.evaluation import Evaluation
        self.calls += 1
        return Evaluation((self.fitness,), {"reason": self.reason})


def test_nlfs_seeds_are_removed_worst_first():
    """Defect: the population is the pool sorted best first and births followed the list, so
    the fittest seed was the oldest and died first (0.9 first).  Seeds share one age: with
    children of fitness 0.1, the seeds leave worst first."""
    from deapnn.nlfs.run import evolve, seed_population
    fits = [0.6, 0.9, 0.4, 0.8, 0.5, 0.7]
    pop = seed_population(_fake_pool(fits), 6)
    assert [i.fitness.values[0] for i in pop] == sorted(fits, reverse=True)
    cfg = NLFSConfig(population_size=6, pool=6, cycles=6, sample_size=2, seeds=[])
    states = []
    evolve(cfg, pop, _FixedEvaluator(0.1), map, checkpoint=lambda s, m: states.append(s))
    gone, alive = [], set(fits)
    for s in states:
        left = alive - {r["fitness"][0] for r in s["population"]}
        gone += sorted(left)
        alive -= left
    assert gone == [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # the previous order stays reachable: initial_age="ordered" ages the best seed first
    states = []
    evolve(NLFSConfig(population_size=6, pool=6, cycles=1, sample_size=2, seeds=[],
                      initial_age="ordered"),
           seed_population(_fake_pool(fits), 6, "ordered"), _FixedEvaluator(0.1), map,
           checkpoint=lambda s, m: states.append(s))
    assert 0.9 not in {r["fitness"][0] for r in states[-1]["population"]}


def test_nlfs_failed_children_are_discarded_by_default():
    """Defect: a child failing the pre-screen got fitness 0 and replaced the oldest member.
    The reference re-mutates it (7 attempts) and then discards it: the population is
    unchanged.  ``failed_child="insert"`` keeps the previous behaviour."""
    from deapnn.nlfs.run import evolve, seed_population
    fits = [0.9, 0.8, 0.7, 0.6]
    failing = _FixedEvaluator(0.0, reason="pre-screen: val acc 0.05 < 0.15 after 10 steps")
    cfg = NLFSConfig(population_size=4, pool=4, cycles=3, sample_size=2, seeds=[])
    pop = seed_population(_fake_pool(fits), 4)
    before = [i.to_json() for i in pop]
    evo = evolve(cfg, pop, failing, map)
    assert [i.to_json() for i in evo.population] == before
    assert sorted(i.fitness.values[0] for i in evo.population) == sorted(fits)
    assert failing.calls == 3 * 7 and evo.mutation["children"] == 21
    assert (evo.mutation["discarded"], evo.mutation["remutated"]) == (3, 18)
    assert [r["discarded"] for r in evo.logbook] == [0, 1, 1, 1]
    assert all(h.fitness.values[0] > 0 for h in evo.halloffame)
    failing = _FixedEvaluator(0.0, reason="pre-screen")
    evo = evolve(NLFSConfig(population_size=4, pool=4, cycles=3, sample_size=2, seeds=[],
                            failed_child="insert"),
                 seed_population(_fake_pool(fits), 4), failing, map)
    assert sorted(i.fitness.values[0] for i in evo.population) == [0.0, 0.0, 0.0, 0.9]
    assert failing.calls == 3 and evo.mutation["inserted_failed"] == 3
    assert evo.mutation["discarded"] == 0


def test_cli_failed_child_and_initial_age_flags():
    from deapnn.commands.nlfs import COMMAND
    cfg = COMMAND.config_of(_parser().parse_args(["nlfs"]))
    assert (cfg.failed_child, cfg.initial_age) == ("discard", "shared")
    cfg = COMMAND.config_of(_parser().parse_args(
        ["nlfs", "--failed-child", "insert", "--initial-age", "ordered"]))
    assert (cfg.failed_child, cfg.initial_age) == ("insert", "ordered")
    from deapnn.commands.common import UsageError
    with pytest.raises(UsageError, match=r"^--failed-child must be one of discard, insert, "
                                         r"got 'keep'$"):
        COMMAND.config_of(_parser().parse_args(["nlfs", "--failed-child", "keep"]))


# --- two-stage pool scoring (Morgan & Hougen's implementation: standard, then augmented) ------

class _ByExpression:
    """A fake surrogate: a fixed pseudo-random fitness per expression and ``offset``."""

    def __init__(self, offset):
        self.offset = offset

    def __call__(self, ind):
        from deapnn.evaluation import Evaluation
        g = ind if isinstance(ind, LossGraph) else LossGraph.from_json(ind)
        return Evaluation((random.Random(g.to_expression() + self.offset).random(),),
                          {"reason": None})


def test_rescore_pool_rescores_the_best_and_seeds_by_the_second_stage():
    from deapnn.nlfs.run import evaluate_pool, random_pool, rescore_pool, seed_population
    pool = evaluate_pool(random_pool(0, 10), _ByExpression("standard"), map, chunk=4)
    second = rescore_pool(pool, 5, _ByExpression("augmented"), map, chunk=2)
    best = sorted(range(10), key=lambda i: -pool["fitness"][i])[:5]
    assert second["genomes"] == [pool["genomes"][i] for i in best]
    assert second["first"] == [pool["fitness"][i] for i in best]
    want = [_ByExpression("augmented")(g).fitness for g in second["genomes"]]
    assert second["fitness"] == want
    pop = seed_population(second, 3)
    assert [i.fitness.values[0] for i in pop] == sorted(want, reverse=True)[:3]
    assert {i.to_json() for i in pop} <= set(second["genomes"])


def test_pool_rescore_stages_and_resume(tmp_path):
    """Stage 1 scores the pool with the standard surrogate (no noise, no augmentation), stage 2
    re-scores the best P with the search's; a run killed during stage 2 resumes without
    re-scoring stage 1 and ends as the uninterrupted run."""
    from deapnn.rundir import RunDir
    cfg = NLFSConfig(population_size=4, pool=6, cycles=2, sample_size=2, budget=20, seeds=[], top=2)
    assert cfg.rescore_count() == 4
    std = cfg.standard_surrogate()
    assert (std.noise, std.augment) == (0.0, None) and std.steps == cfg.surrogate().steps
    assert cfg.surrogate().noise > 0 and cfg.surrogate().augment == "auto"
    trace = []
    full = run_nlfs(cfg, RunDir(tmp_path / "a", {"nlfs": {}}), map_fn=_tracing_map(trace=trace),
                    log=lambda *a: None)
    rd = RunDir(tmp_path / "b", {"nlfs": {}})
    with pytest.raises(_Interrupt):                        # dies at the 3rd re-scoring
        run_nlfs(cfg, rd, map_fn=_tracing_map(6 + 3), log=lambda *a: None)
    assert rd.load_checkpoint()["phase"] == "pool"
    redo = []
    again = run_nlfs(cfg, RunDir.resume(tmp_path / "b"), map_fn=_tracing_map(trace=redo),
                     log=lambda *a: None)
    assert len(redo) == len(trace) - 6                     # stage 1 is not redone
    assert again.best == full.best and again.logbook == full.logbook
    ck = rd.load_checkpoint()
    assert len(ck["pool"]["fitness"]) == 6 and len(ck["rescore"]["fitness"]) == 4
    # one stage (pool_rescore=0): the pool is scored once, with the search's surrogate
    one = RunDir(tmp_path / "c", {"nlfs": {}})
    run_nlfs(NLFSConfig(**{**cfg.to_dict(), "pool_rescore": 0}), one, map_fn=map,
             log=lambda *a: None)
    ck1 = one.load_checkpoint()
    assert "rescore" not in ck1 and ck1["pool"]["genomes"] == ck["pool"]["genomes"]
    assert ck1["pool"]["fitness"] != ck["pool"]["fitness"]          # another surrogate
    by_genome = dict(zip(ck1["pool"]["genomes"], ck1["pool"]["fitness"]))
    assert [by_genome[g] for g in ck["rescore"]["genomes"]] == ck["rescore"]["fitness"]


@pytest.mark.parametrize("argv,match", [
    ("--population 4 --sample-size 2 --pool 8 --pool-rescore 3",
     r"^--pool-rescore must be 0 \(one stage\) or between the population 4 and the pool 8, got 3$"),
    ("--population 4 --sample-size 2 --pool 8 --pool-rescore 9", r"^--pool-rescore must be 0"),
    ("--pool-rescore -1", r"^--pool-rescore must be an integer >= 0 or None, got -1$"),
])
def test_cli_pool_rescore_errors_name_the_flag(argv, match):
    from deapnn.commands.common import UsageError
    args = _parser().parse_args(["nlfs", *argv.split()])
    with pytest.raises(UsageError, match=match):
        args.check(args)
