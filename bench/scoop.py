"""SCOOP speed-up: a population of 8 small trainings evaluated with 2 SCOOP workers vs 1.

Each individual trains the small CNN on digits for a fixed number of SGD steps (about 1–2 s on
one thread), seeded by ``derive_seed(run seed, identity)``, through ``toolbox.map =
deapnn.runtime.get_map()`` (``futures.map`` under SCOOP). ``python -m scoop -n 1`` and ``-n 2`` run
this file as subprocesses in the same bench run, one torch thread per worker; inside each, a
warm-up map brings every worker up (imports, data) before the timed map, so start-up is reported
separately and not counted in the speed-up. Each training's wall and CPU time are printed: a
wall time well above the CPU time means other processes held the cores (the speed-up then
measures the machine's load, not SCOOP). For the same reason the bench first measures the
machine's own ceiling without SCOOP: the same 8 trainings in one plain process vs split over two
plain processes running at once.

Target (issue 7): speed-up (1 worker map time / 2 workers map time) >= 1.6 on a 2-core machine,
with identical fitnesses. Run:
``python bench/scoop.py [--repeats 1] [--pop 8] [--epochs 3] [--no-ceiling]``.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 1.6
TIMEOUT = 600
# Batch-system variables make SCOOP take its hosts from the scheduler (see tests/test_scoop.py).

@functools.cache
def _data():
    from deapnn.data import load_dataset
    return load_dataset("digits", seed=0)


def warm(_):
    """Bring a worker up: torch, the data, one thread; the sleep spreads tasks over workers."""
    from deapnn.runtime import configure_worker_threads
    configure_worker_threads(1)
    _data()
    time.sleep(0.2)
    return os.getpid()


def evaluate(job):
    """One individual: train the digits CNN for ``epochs`` epochs with its own lr and seed."""
    import torch
    from deapnn.models import build_model
    from deapnn.runtime import configure_worker_threads, derive_seed
    from deapnn.training import TrainConfig, evaluate as accuracy, train

    configure_worker_threads(1)
    ident, lr, epochs, run_seed = job
    seed = derive_seed(run_seed, "ind", ident)
    torch.manual_seed(seed)
    data = _data()
    model = build_model("cnn", data.input_shape, data.num_classes)
    start, cpu = time.perf_counter(), time.process_time()
    train(model, data.train.x, data.train.y, TrainConfig(epochs=epochs, lr=lr, batch_size=32),
          device=torch.device("cpu"), seed=seed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    fingerprint = float(sum(p.detach().double().sum() for p in model.parameters()))
    return (accuracy(model, data.val.x, data.val.y), fingerprint), os.getpid(), seconds, cpu


def worker_main(pop: int, epochs: int, seed: int, part: int | None = None) -> None:
    """Run under ``python -m scoop -n N`` (or plainly, ``part`` = 0/1 taking every other
    individual): warm-up map, timed map, one JSON line."""
    from deap import base
    from deapnn.runtime import get_map, running_under_scoop
    toolbox = base.Toolbox()
    toolbox.register("map", get_map())
    toolbox.register("evaluate", evaluate)
    t0 = time.perf_counter()
    warm_pids = sorted(set(toolbox.map(warm, range(8 if part is None else 1))))
    warm_s = time.perf_counter() - t0
    jobs = [(i, 0.02 + 0.01 * (i % 4), epochs, seed) for i in range(pop)
            if part is None or i % 2 == part]
    t0 = time.perf_counter()
    results = list(toolbox.map(toolbox.evaluate, jobs))
    map_s = time.perf_counter() - t0
    print(json.dumps({"scoop": running_under_scoop(), "map_s": map_s, "warm_s": warm_s,
                      "warm_pids": warm_pids, "fitnesses": [r[0] for r in results],
                      "ids": [j[0] for j in jobs], "pids": sorted({r[1] for r in results}),
                      "eval_s": [r[2] for r in results], "cpu_s": [r[3] for r in results]}),
          flush=True)


def _env() -> dict:
    from deapnn.runtime import scoop_launch_env
    env = scoop_launch_env()
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DEAPNN_THREADS="1", DEAPNN_DEVICE="cpu")
    env.pop("DEAPNN_WORKER_SLOT", None)
    return env


def _start(workers: int | None, args, part: int | None = None):
    cmd = [sys.executable] + (["-m", "scoop", "-n", str(workers)] if workers else []) + \
        [os.path.abspath(__file__), "--worker", "--pop", str(args.pop), "--epochs",
         str(args.epochs), "--seed", str(args.seed)] + \
        (["--part", str(part)] if part is not None else [])
    # own process group: a hung SCOOP run (launcher, broker, workers) is ended as a whole
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc, cmd, time.perf_counter()


def _finish(proc, cmd, start) -> dict:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SystemExit(f"{' '.join(cmd)} timed out after {TIMEOUT} s") from None
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(lines[-1])
    result["total_s"] = time.perf_counter() - start
    result["load"] = os.getloadavg()[0]
    return result


def launch(workers: int | None, args) -> dict:
    """Run this file under ``python -m scoop -n workers`` (plainly when None); its JSON line
    plus the whole subprocess wall time (start-up included)."""
    return _finish(*_start(workers, args))


def launch_pair(args) -> dict:
    """The machine's own ceiling, without SCOOP: two plain processes at once, each training
    every other individual; the map time is the slower one's."""
    a, b = [_finish(*p) for p in [_start(None, args, 0), _start(None, args, 1)]]
    order = sorted(zip(a["ids"] + b["ids"], a["fitnesses"] + b["fitnesses"]))
    return {"map_s": max(a["map_s"], b["map_s"]), "warm_s": max(a["warm_s"], b["warm_s"]),
            "total_s": max(a["total_s"], b["total_s"]), "fitnesses": [f for _, f in order],
            "pids": a["pids"] + b["pids"], "eval_s": a["eval_s"] + b["eval_s"],
            "cpu_s": a["cpu_s"] + b["cpu_s"], "load": b["load"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pop", type=int, default=8, help="individuals (trainings) to evaluate")
    ap.add_argument("--epochs", type=int, default=3,
                    help="digits epochs per training (34 SGD steps each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1, help="1-vs-2 worker measurements")
    ap.add_argument("--part", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-ceiling", action="store_true",
                    help="skip the no-SCOOP reference: 1 plain process vs 2 at once")
    args = ap.parse_args()
    if args.worker:
        worker_main(args.pop, args.epochs, args.seed, args.part)
        return 0

    print(f"SCOOP speed-up: {args.pop} trainings (cnn on digits, {args.epochs} epoch(s) each, "
          f"1 torch thread per worker), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")
    same, times = True, {"n1": [], "n2": []}
    for rep in range(args.repeats):
        runs = {}
        if not args.no_ceiling:
            runs["plain"] = launch(None, args)
            runs["plain2"] = launch_pair(args)
        runs["n1"] = launch(1, args)
        runs["n2"] = launch(2, args)
        for name, r in runs.items():
            print(f"  [{rep + 1}] {name:>6}: map {r['map_s']:6.2f} s  "
                  f"(warm-up {r['warm_s']:.2f} s, "
                  f"whole process {r['total_s']:6.2f} s; mean training "
                  f"{sum(r['eval_s']) / len(r['eval_s']):.2f} s wall, "
                  f"{sum(r['cpu_s']) / len(r['cpu_s']):.2f} s CPU; {len(r['pids'])} worker(s) "
                  f"evaluated; load average {r['load']:.2f})", flush=True)
        equal = all(r["fitnesses"] == runs["n1"]["fitnesses"] for r in runs.values())
        same &= equal and len(runs["n2"]["pids"]) == 2
        for n in times:
            times[n].append(runs[n])
        if "plain2" in runs:
            print(f"  [{rep + 1}] machine ceiling without SCOOP (1 process vs 2 at once): "
                  f"{runs['plain']['map_s'] / runs['plain2']['map_s']:.2f}x", flush=True)
        print(f"  [{rep + 1}] speed-up 2 vs 1 workers: "
              f"{runs['n1']['map_s'] / runs['n2']['map_s']:.2f}x (map only), "
              f"{runs['n1']['total_s'] / runs['n2']['total_s']:.2f}x (start-up included); "
              f"fitnesses identical: {equal}", flush=True)
    # best-of-repeats times: the least disturbed by other load on the machine
    speedup = min(r["map_s"] for r in times["n1"]) / min(r["map_s"] for r in times["n2"])
    total = min(r["total_s"] for r in times["n1"]) / min(r["total_s"] for r in times["n2"])
    ok = same and speedup >= TARGET
    print(f"speed-up 2 vs 1 SCOOP workers: {speedup:.2f}x map only ({total:.2f}x with start-up; "
          f"best of {args.repeats}), fitnesses identical: {same}; target >= {TARGET}: "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
