"""A real ``python -m scoop -n 2`` run gives exactly the fitnesses of the serial map.

``tests/scoop_eval_script.py`` evaluates a 4-individual DEAP population, each evaluation training
a small MLP on iris seeded by ``derive_seed(run_seed, identity)``, through
``toolbox.map = deapnn.runtime.get_map()``. Run plainly it uses the builtin ``map``; under SCOOP
it uses ``futures.map`` and the evaluations run in two worker processes.
"""
import json
import sys
import time
from pathlib import Path

from test_scale import run_group, scoop_env

SCRIPT = Path(__file__).resolve().parent / "scoop_eval_script.py"
TIMEOUT = 120


def _run(cmd, what, tmp_path):
    """Run ``cmd`` (own process group, ended as a whole on time-out); (its JSON result, seconds)."""
    started = time.perf_counter()
    rc, out, err = run_group(cmd, scoop_env(tmp_path), timeout=TIMEOUT)
    seconds = time.perf_counter() - started
    assert rc == 0, f"{what} failed ({rc})\n{err[-3000:]}"
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"{what} printed no result\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    return json.loads(lines[-1]), seconds


def test_scoop_map_matches_serial_map_exactly(tmp_path):
    # One after the other: on 2 shared cores, running both at once is slower than in turn.
    serial, serial_s = _run([sys.executable, str(SCRIPT), "3"], "serial run", tmp_path)
    scoop_cmd = [sys.executable, "-m", "scoop", "-n", "2", str(SCRIPT), "3"]
    parallel, scoop_s = _run(scoop_cmd, "python -m scoop -n 2", tmp_path)
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
