"""Real ``python -m scoop -n 2`` (CI's SCOOP smoke test, issue 7 items 2, 3 and 6).

One SCOOP run of a small script (written to a temporary directory) that

* maps a probe over the workers: each reports its pid, claimed slot, the GPU it would take on a
  host with ``DEAPNN_FAKE_GPUS=2`` GPUs, and its torch thread count;
* runs ``eaRegularizedEvolution`` (the NLFS search loop) with ``toolbox.map = get_map()`` and an
  evaluate, guarded by :func:`deapnn.failsafe.guarded`, that raises for some individuals, raises a
  CUDA out-of-memory error for one and overruns its time limit for another.

The run must finish; the failed individuals get the worst fitness and their reasons are in the
logbook; the workers hold distinct slots → distinct (simulated) GPUs.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from deapnn.runtime import scoop_launch_env

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 150

SCRIPT = r'''
import json, os, sys, time
from deap import base, creator, tools
from deapnn.algorithms.regularized import eaRegularizedEvolution
from deapnn.failsafe import guarded
from deapnn.runtime import (assign_gpu, cuda_device_count, get_device, get_map,
                            running_under_scoop, worker_slot)

if not hasattr(creator, "ScaleFit"):
    creator.create("ScaleFit", base.Fitness, weights=(1.0,))
    creator.create("ScaleInd", list, fitness=creator.ScaleFit)


def probe(i):
    time.sleep(0.3)                      # long enough for both workers to take some
    import torch
    slot = worker_slot()
    dev = str(get_device())              # CPU host: cpu, one thread per worker
    return {"pid": os.getpid(), "slot": slot, "gpu": assign_gpu(slot, cuda_device_count()),
            "threads": torch.get_num_threads(), "device": dev}


def evaluate(ind):
    ident, kind = ind
    time.sleep(0.05)
    if kind == "raise":
        raise ValueError(f"bad individual {ident}")
    if kind == "oom":
        import torch
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
    if kind == "slow":
        time.sleep(60)
    return (float(ident),)


def mutate(ind):
    ind[0] += 10
    return (ind,)


if __name__ == "__main__":
    probes = list(get_map()(probe, range(8)))
    tb = base.Toolbox()
    tb.register("map", get_map())
    tb.register("evaluate", guarded(evaluate, worst=(-1.0,), timeout=1.0))
    tb.register("clone", lambda ind: creator.ScaleInd(list(ind)))
    tb.register("mutate", mutate)
    kinds = ["ok", "raise", "oom", "slow", "ok", "raise"]
    pop = [creator.ScaleInd([i, k]) for i, k in enumerate(kinds)]
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    pop, log = eaRegularizedEvolution(pop, tb, cycles=4, sample_size=2, batch=2, stats=stats,
                                      verbose=False)
    print(json.dumps({"scoop": running_under_scoop(), "probes": probes,
                      "logbook": [dict(r) for r in log],
                      "population": [[list(i), i.fitness.values[0], getattr(i, "info", {})]
                                     for i in pop]}), flush=True)
'''


def scoop_env(tmp_path, **extra):
    env = scoop_launch_env()
    env.update(OMP_NUM_THREADS="1", DEAPNN_THREADS="1", DEAPNN_DEVICE="cpu",
               DEAPNN_SLOT_DIR=str(tmp_path / "slots"), PYTHONHASHSEED="0")
    for var in ("DEAPNN_WORKER_SLOT", "SCOOP_WORKER_SLOT", "DEAPNN_EVAL_TIMEOUT"):
        env.pop(var, None)
    env.update(extra)
    return env


def run_group(cmd, env, cwd=REPO, timeout=TIMEOUT):
    """Run ``cmd`` in its own session (a hung SCOOP run is ended as a whole); (rc, out, err)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{cmd[:6]} timed out after {timeout} s\n{err[-3000:]}") from None
    return proc.returncode, out, err


def test_scoop_workers_claim_distinct_slots_and_failures_are_data(tmp_path):
    script = tmp_path / "scale_script.py"
    script.write_text(SCRIPT)
    rc, out, err = run_group([sys.executable, "-m", "scoop", "-n", "2", str(script)],
                             scoop_env(tmp_path, DEAPNN_FAKE_GPUS="2"))
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert rc == 0 and lines, f"rc {rc}\nstdout: {out[-2000:]}\nstderr: {err[-3000:]}"
    res = json.loads(lines[-1])
    assert res["scoop"] is True

    # --- GPU assignment: one slot per worker process, distinct, → distinct simulated GPUs
    by_pid = {}
    for p in res["probes"]:
        by_pid.setdefault(p["pid"], set()).add((p["slot"], p["gpu"]))
    assert len(by_pid) == 2, f"both workers should have evaluated: {res['probes']}"
    claims = [next(iter(v)) for v in by_pid.values()]
    assert all(len(v) == 1 for v in by_pid.values())            # a worker keeps its slot
    assert sorted(s for s, _ in claims) == [0, 1]
    assert sorted(g for _, g in claims) == [0, 1]               # slot mod 2
    assert all(p["threads"] == 1 and p["device"] == "cpu" for p in res["probes"])

    # --- failure is data: the run finished all 4 cycles, failures worst + reason in logbook
    log = res["logbook"]
    assert [r["cycle"] for r in log] == [0, 2, 4]
    first = log[0]
    assert first["nevals"] == 6 and first["failed"] == 4
    errors = " | ".join(first["errors"])
    assert "ValueError: bad individual 1" in errors and "ValueError: bad individual 5" in errors
    assert "OutOfMemoryError: CUDA out of memory" in errors
    assert "EvaluationTimeout" in errors and "1 s" in errors
    assert first["max"] == 4.0
    for genome, fit, info in res["population"]:
        if genome[1] == "ok":
            assert fit == float(genome[0]) and not info.get("error")
        else:
            # a failed evaluation is an ``error`` (deapnn.evaluation vocabulary), not a reason
            assert fit == -1.0 and info["error"] and "reason" not in info
    assert sum(r["failed"] for r in log) == 4 + sum(
        1 for r in log[1:] for e in r.get("errors", []))
