"""A real ``python -m scoop -n 2`` run gives exactly the fitnesses of the serial map.

``tests/scoop_eval_script.py`` evaluates a 4-individual DEAP population, each evaluation training
a small MLP on iris seeded by ``derive_seed(run_seed, identity)``, through
``toolbox.map = deapnn.runtime.get_map()``. Run plainly it uses the builtin ``map``; under SCOOP
it uses ``futures.map`` and the evaluations run in two worker processes.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "scoop_eval_script.py"
TIMEOUT = 120

# Batch-system variables make SCOOP take its host list from the scheduler instead of using
# 127.0.0.1; without them it launches its workers locally through /bin/bash (no ssh, and no
# hostname resolution is needed: loopback hosts are always treated as local).
_SCHEDULER_VARS = ("SLURM_NODELIST", "SLURM_JOB_NODELIST", "PBS_ENVIRONMENT", "PE_HOSTFILE")


def _env():
    env = {k: v for k, v in os.environ.items() if k not in _SCHEDULER_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    env["DEAPNN_DEVICE"] = "cpu"
    env.pop("DEAPNN_WORKER_SLOT", None)
    return env


def _start(cmd):
    # Own process group, so a hung SCOOP run (launcher, broker, workers) can be ended as a whole.
    return subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc, what, started):
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{what} timed out after {TIMEOUT} s\n{err[-3000:]}")
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, f"{what} failed ({proc.returncode})\n{err[-3000:]}"
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"{what} printed no result\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    return json.loads(lines[-1]), seconds


def test_scoop_map_matches_serial_map_exactly():
    # One after the other: on 2 shared cores, running both at once is slower than in turn.
    serial, serial_s = _finish(_start([sys.executable, str(SCRIPT), "3"]), "serial run",
                               time.perf_counter())
    t0 = time.perf_counter()
    scoop_cmd = [sys.executable, "-m", "scoop", "-n", "2", str(SCRIPT), "3"]
    parallel, scoop_s = _finish(_start(scoop_cmd), "python -m scoop -n 2", t0)
    print(f"\nserial {serial_s:.1f} s, scoop -n 2 {scoop_s:.1f} s; "
          f"worker pids that evaluated: {parallel['pids']}")

    assert serial["scoop"] is False
    assert parallel["scoop"] is True                    # get_map() really was futures.map
    assert len(serial["fitnesses"]) == 4
    # Exactly equal, not approximately: same seeds, same CPU arithmetic, whichever worker ran it.
    assert parallel["fitnesses"] == serial["fitnesses"]
    assert parallel["fingerprints"] == serial["fingerprints"]
    # Non-trivial: each individual trained differently (own seed, own hyper-parameters).
    assert len(set(serial["fingerprints"])) == 4
    assert all(0.0 <= f[0] <= 1.0 for f in serial["fitnesses"])
