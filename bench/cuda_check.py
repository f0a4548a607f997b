"""One prepared check of deapnn's CUDA paths, for a session that is lent a GPU (a few minutes).

Runs, each as its own process with a time limit, and prints what it measured:

1. ``deapnn train`` (cnn on digits) on the GPU and on the CPU: test accuracy and wall time;
2. ``bench/gls.py`` on the GPU: GLS generation / SGD epoch for cnn on digits (fresh, trained,
   ``--max-cases``) and resnet18 on random 32×32 tensors (N = 8,192 by default);
3. ``bench/evomal.py`` on the GPU: meta-step time vs ``higher`` and the K = 5 peak memory;
4. ``deapnn gls --workers 2`` on the GPU: the per-worker device assignment (host and device of
   every job, from its ``result.json``) and the accuracies next to a serial run;
5. ``bench/speed.py`` on the GPU: the fast paths (``--compile``, ``--precision bf16`` and
   ``fp16``, compiled and not) against eager float32 — SGD epoch and GLS generation of cnn and
   mlp on mnist1d_large and resnet18 on 2,048 random 32×32 images, compile times and
   break-even epochs (``--skip-speed`` leaves it out).

The device image has torch, torchvision, scikit-learn, scipy, sympy, tqdm and matplotlib, but
not deap, scoop (with greenlet and pyzmq) or higher. Make wheels for its Python 3.12 here, in
the repository root, and carry the folder (``.whl``, ignored by git)::

    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \\
        deap==1.4.4 greenlet==3.5.6 pyzmq==27.3.0
    pip wheel --no-deps -w .whl scoop==0.7.2.0 higher==0.2.1

and run there::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
    PYTHONPATH=/tmp/site:. python3 bench/cuda_check.py --out $OUT

``--device cpu`` is a dry run of the same steps without a GPU.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step(title: str, argv: list[str], timeout: int, env: dict) -> bool:
    """Run one step, stream its output, print its exit status and wall time."""
    print(f"\n== {title}\n$ {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    try:
        code = subprocess.run(argv, cwd=ROOT, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    print(f"-- {title}: exit {code}, {time.perf_counter() - start:.1f} s", flush=True)
    return code == 0


def job_results(run_dir: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(run_dir, "*", "seed*", "result.json"))):
        with open(path, encoding="utf-8") as fh:
            rows.append(json.load(fh))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "runs/cuda_check"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--resnet-n", type=int, default=8192)
    ap.add_argument("--skip-speed", action="store_true", help="leave out bench/speed.py")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", DEAPNN_DEVICE=args.device,
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    py = sys.executable
    import torch
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"
          + (f", {torch.cuda.device_count()} × {torch.cuda.get_device_name(0)}"
             if torch.cuda.is_available() else ""))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: use --device cpu for a dry run")
        return 2

    ok = {}
    for device in dict.fromkeys([args.device, "cpu"]):
        run_dir = os.path.join(out, f"train-{device.replace(':', '')}")
        ok[f"train {device}"] = step(
            f"train cnn on digits, {device}",
            [py, "-m", "deapnn", "train", "--dataset", "digits", "--model", "cnn", "--epochs",
             "10", "--seed", "0", "--device", device, "--quiet", "--out", run_dir],
            300, env)
        if ok[f"train {device}"]:
            with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as fh:
                r = json.load(fh)
            print(f"   {device}: test accuracy {r['test_accuracy']:.4f} in {r['seconds']:.1f} s")
    ok["bench gls"] = step("GLS generation / SGD epoch", [
        py, "bench/gls.py", "--repeats", "3", "--resnet-n", str(args.resnet_n)], 420, env)
    ok["bench evomal"] = step("EvoMAL meta-step", [
        py, "bench/evomal.py", "--device", args.device, "--repeats", "5"], 240, env)
    for workers in ("2", "1"):
        run_dir = os.path.join(out, f"gls-workers{workers}")
        ok[f"gls workers {workers}"] = step(f"deapnn gls --workers {workers}", [
            py, "-m", "deapnn", "gls", "--dataset", "digits", "--model", "cnn", "--pop", "4",
            "--epochs", "3", "--compare", "sgd", "--seeds", "0,1", "--workers", workers,
            "--device", args.device, "--quiet", "--out", run_dir], 420, env)
        for r in job_results(run_dir):
            print(f"   workers {workers}: {r['arm']:<4} seed {r['seed']}  test {r['test_acc']:.4f}"
                  f"  on {r.get('host')} {r.get('device')}  {r['seconds']:.1f} s")
    if not args.skip_speed:
        ok["bench speed"] = step("fast paths against eager float32", [
            py, "bench/speed.py", "--repeats", "2"], 540, env)
    print("\nsummary: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in ok.items()))
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
