"""Failure is data: an exception, a CUDA out-of-memory or a timeout in
one evaluation gives that individual the worst fitness and a reason, recorded in the logbook, and
the run goes on — for the generic wrapper, NLFS, EvoMAL and GLS jobs. (The same under real SCOOP:
``tests/test_scale.py``.)"""
import pickle
import signal
import threading
import time

import pytest
import torch
from deap import base, creator

from deapnn.evaluation import Evaluation
from deapnn.failsafe import (EvaluationTimeout, Guarded, describe, failure_reason,
                             guarded, time_limit)

OOM = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

if not hasattr(creator, "FailsafeFit"):
    creator.create("FailsafeFit", base.Fitness, weights=(1.0,))
    creator.create("FailsafeInd", list, fitness=creator.FailsafeFit)


def flaky(ind):
    """Module level, so the guarded callable pickles (SCOOP ships it)."""
    kind = ind[1]
    if kind == "raise":
        raise KeyError("no such key")
    if kind == "oom":
        raise OOM
    if kind == "slow":
        time.sleep(30)
    return (float(ind[0]),)


def test_guarded_turns_each_failure_into_worst_plus_reason(monkeypatch):
    freed = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append(1))
    handler, (outer, _) = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)
    ev = pickle.loads(pickle.dumps(guarded(flaky, worst=(-1.0,), timeout=0.3)))
    assert ev([3, "ok"]) == (3.0,) and failure_reason(ev([3, "ok"])) is None
    r = ev([1, "raise"])
    assert isinstance(r, Evaluation) and r.values == (-1.0,)
    assert r.error == "KeyError: 'no such key'"
    r = ev([2, "oom"])
    assert r.values == (-1.0,) and r.error.startswith("OutOfMemoryError: CUDA out of memory")
    assert freed == [1]                                       # cache freed after the OOM
    t0 = time.perf_counter()
    r = ev([4, "slow"])
    assert time.perf_counter() - t0 < 5
    assert r.values == (-1.0,) and "EvaluationTimeout" in r.error and "0.3 s" in r.error
    assert pickle.loads(pickle.dumps(r)).error == r.error     # travels back from a worker
    # no alarm of ours left behind; an enclosing one (pytest-timeout's) is restored, re-armed
    assert signal.getsignal(signal.SIGALRM) == handler
    left = signal.getitimer(signal.ITIMER_REAL)[0]
    assert left == 0.0 if outer == 0.0 else 0 < left <= outer


def test_worst_as_number_and_passthrough():
    failed = Guarded(flaky, float("inf"))([0, "raise"])
    assert failed.values == (float("inf"),) and failed.failed
    assert failure_reason(failed) == failed.error == "KeyError: 'no such key'"
    with pytest.raises(KeyError):
        Guarded(flaky, (0.0,), passthrough=(KeyError,))([0, "raise"])
    with pytest.raises(ValueError, match="timeout"):
        Guarded(flaky, (0.0,), timeout=0)


def test_time_limit_limits_and_nesting():
    with pytest.raises(EvaluationTimeout):
        with time_limit(0.2):
            time.sleep(5)
    with time_limit(None):                         # no limit
        time.sleep(0.01)
    # an enclosing alarm survives an inner, shorter limit
    with pytest.raises(EvaluationTimeout, match="0.6 s"):
        with time_limit(0.6):
            with time_limit(0.1):
                pass
            time.sleep(5)
    # off the main thread there is no SIGALRM: the evaluation runs without a limit
    out = []
    t = threading.Thread(target=lambda: out.append(Guarded(flaky, (0.0,), timeout=0.01)(
        [7, "ok"])))
    t.start()
    t.join()
    assert out == [(7.0,)]


def test_regularized_evolution_records_failures_in_logbook():
    from deapnn.algorithms.regularized import eaRegularizedEvolution
    tb = base.Toolbox()
    tb.register("map", map)
    tb.register("evaluate", guarded(flaky, worst=(-1.0,), timeout=0.2))
    tb.register("clone", lambda ind: creator.FailsafeInd(list(ind)))
    tb.register("mutate", lambda ind: (creator.FailsafeInd([ind[0] + 10, ind[1]]),))
    pop = [creator.FailsafeInd([i, k]) for i, k in enumerate(["ok", "raise", "oom", "slow"])]
    pop, log = eaRegularizedEvolution(pop, tb, cycles=4, sample_size=4, batch=2, verbose=False)
    assert log[0]["failed"] == 3 and len(log[0]["errors"]) == 3
    assert [r["cycle"] for r in log] == [0, 2, 4]                 # the run went on
    for ind in pop:
        assert (ind.fitness.values[0] == -1.0) == (ind[1] != "ok")


def test_nlfs_timeout_and_oom_are_fitness_zero_with_reason(monkeypatch):
    from deapnn.losses.graph import LossGraph
    from deapnn.nlfs import evaluator as nlfs_ev
    ce = LossGraph.from_expression("-(y * log(yhat))")
    ev = pickle.loads(pickle.dumps(nlfs_ev.guarded_evaluator(
        nlfs_ev.SurrogateConfig(dataset="iris", steps=100000, eval_every=100000,
                                prescreen_steps=0), timeout=0.5)))
    res = ev(ce)
    assert res.fitness == 0.0 and "EvaluationTimeout" in res.info["reason"] and res.error

    def oom_loss(z, y):
        raise OOM
    res = nlfs_ev.surrogate_training(oom_loss, nlfs_ev.SurrogateConfig(dataset="iris", steps=5), 0)
    assert res["fitness"] == 0.0 and res["error"].startswith("OutOfMemoryError")


def test_evomal_timeout_is_worst_with_reason_and_logged():
    from deapnn.algorithms.evomal import eaEvoMAL
    from deapnn.evaluation import Evaluation
    from deapnn.evomal.evaluator import EvoMALConfig, guarded_evaluator
    from deapnn.evomal.toolbox import fitness_stats, make_toolbox
    from deapnn.losses.archive import LossArchive
    cfg = EvoMALConfig(dataset="iris", hidden=(8,), meta_steps=100000, fitness_steps=10,
                       rejection_steps=60)
    ev = pickle.loads(pickle.dumps(guarded_evaluator(cfg, timeout=0.5)))
    rec = ev("mul(-1, mul(y, log(fx)))")
    assert rec.fitness == float("inf") and "EvaluationTimeout" in rec.error

    def evaluate(text):
        if "log" in text:
            raise OOM
        return Evaluation((float(len(text)),), {"reason": None})
    tb = make_toolbox(Guarded(evaluate, (float("inf"),)), map_fn=map)
    import random
    random.seed(1)
    pop = tb.population(6)
    archive = LossArchive()
    pop, log = eaEvoMAL(pop, tb, 2, stats=fitness_stats(), verbose=False, archive=archive)
    assert [r["gen"] for r in log] == [0, 1, 2]
    failed = sum(r["failed"] for r in log)
    assert failed == sum(len(r.get("errors", [])) for r in log)
    assert all("OutOfMemoryError" in e for r in log for e in r.get("errors", []))
    # the archive records the tree whose evaluation failed (not "?"), with the error
    errors = [e for e in archive.entries.values() if e.get("error")]
    assert failed and len(errors) == failed
    assert all("log" in e["tree"] and e["fitness"] == float("inf") for e in errors)
    assert all(e["error"].startswith("OutOfMemoryError") for e in errors)


def test_gls_failing_job_is_a_failed_row_not_a_dead_comparison(monkeypatch, tmp_path):
    from deapnn import gls
    from deapnn.gls import job as gls_job
    real = gls_job._run_job

    def sometimes_oom(job):
        if job["seed"] == 1 and job["arm"] == "sgd":
            raise OOM
        return real(job)
    monkeypatch.setattr(gls_job, "_run_job", sometimes_oom)
    cfg = gls.GLSConfig(dataset="iris", model="mlp", epochs=1, population_size=2, arms=["sgd"],
                        seeds=[0, 1])
    jobs = gls.make_jobs(cfg, str(tmp_path))
    results = list(map(gls.run_job, jobs))
    bad = [r for r in results if r.failed]
    assert len(bad) == 1 and bad[0].info["arm"] == "sgd" and bad[0].info["test_acc"] is None
    assert bad[0].error.startswith("OutOfMemoryError")
    assert bad[0].info["error"] == bad[0].error                        # the results.json row
    assert not (tmp_path / "sgd" / "seed1" / "result.json").exists()   # --resume retries it
    summary = gls.summarize(results)
    assert summary["gls"]["n"] == 2 and summary["sgd"]["n"] == 1
    assert "OutOfMemoryError" in summary["sgd"]["failed"][0]
    table = gls.format_table(summary, cfg)
    assert "failed: SGD (same epochs) seed 1: OutOfMemoryError" in table


def test_gls_corrupt_checkpoint_is_the_runs_error(tmp_path):
    from deapnn import gls
    from deapnn.checkpoint import CheckpointError
    cfg = gls.GLSConfig(dataset="iris", model="mlp", epochs=1, population_size=2, arms=[],
                        seeds=[0])
    job = gls.make_jobs(cfg, str(tmp_path))[0]
    (tmp_path / "gls" / "seed0").mkdir(parents=True)
    (tmp_path / "gls" / "seed0" / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError):
        gls.run_job(job)


def test_describe_is_one_line():
    assert describe(ValueError("a\nb")) == "ValueError: a"
    assert describe(RuntimeError()) == "RuntimeError"
