"""Quality of the opt-in fast paths (issue 27): do they change what a study concludes?

Runs ``deapnn gls`` (cnn on ``mnist1d_large``, p = 4, augmentation on, arms GLS and SGD) once
per path — eager float32 (the anchor), ``--compile``, ``--precision bf16`` and both — with the
same seeds, then prints each path's test accuracy against eager float32, paired by seed:
mean ± std of the difference and wins/ties/losses (:func:`deapnn.paired.paired_stats`), for
GLS and SGD. A path passes when its differences sit within the seed noise of eager float32
(the spread of eager's own per-seed accuracies is printed beside them).

Resumable: each path is its own run directory under ``--out``; a directory that holds a
``config.json`` is resumed (``deapnn gls --resume``), so killing this script loses at most the
seeds in flight. Progress goes to ``OUT/<path>.log``.

Run: ``python bench/fastpath_quality.py [--out runs/fastpath-quality] [--seeds 0-4]
[--epochs 10] [--workers 2] [--paths eager,compile,bf16,compile+bf16]``
(about 50 CPU-minutes per path at the defaults on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

from deapnn.paired import paired_stats, paired_text  # noqa: E402

PATHS = {"eager": [], "compile": ["--compile"], "bf16": ["--precision", "bf16"],
         "compile+bf16": ["--compile", "--precision", "bf16"]}
ARMS = (("gls", "GLS"), ("sgd", "SGD (same epochs)"))


def run_path(name: str, out: str, args) -> int:
    """Train (or resume) the run of path ``name``; its exit status."""
    run_dir = os.path.join(out, name.replace("+", "-"))
    common = ["--workers", str(args.workers), "--quiet"]
    if os.path.exists(os.path.join(run_dir, "config.json")):
        cmd = ["--resume", run_dir] + common
    else:
        cmd = (["--dataset", "mnist1d_large", "--model", "cnn", "--population-size", "4",
                "--epochs", str(args.epochs), "--compare", "sgd", "--seeds", args.seeds,
                "--out", run_dir] + PATHS[name] + common)
    with open(run_dir + ".log", "a") as log:
        return subprocess.call([sys.executable, "-m", "deapnn", "gls"] + cmd,
                               stdout=log, stderr=subprocess.STDOUT, cwd=_ROOT)


def accuracies(run_dir: str) -> dict:
    """``{arm: {seed: test accuracy}}`` of a finished run."""
    with open(os.path.join(run_dir, "results.json")) as fh:
        rows = json.load(fh)["results"]
    acc: dict = {}
    for row in rows:
        acc.setdefault(row["arm"], {})[row["seed"]] = row.get("test_acc")
    return acc


def table(out: str, names: list[str]) -> list[str]:
    """The paired table: each path against eager float32, per arm."""
    runs = {n: accuracies(os.path.join(out, n.replace("+", "-"))) for n in names}
    base = runs["eager"]
    lines = [f"{'arm':<20} {'path':<14} {'test accuracy':>17}  path − eager fp32 (paired)"]
    for arm, label in ARMS:
        seeds = sorted(base.get(arm, {}))
        for name in names:
            vals = [runs[name].get(arm, {}).get(s) for s in seeds]
            finite = [v for v in vals if v is not None]
            spread = (f"{statistics.fmean(finite):.4f} ± {statistics.stdev(finite):.4f}"
                      if len(finite) > 1 else "—")
            pair = (paired_stats(vals, [base[arm][s] for s in seeds], higher_is_better=True)
                    if name != "eager" else None)
            lines.append(f"{label:<20} {name:<14} {spread:>17}  "
                         + (paired_text(pair) if pair else ""))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("runs", "fastpath-quality"))
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--paths", default=",".join(PATHS))
    args = ap.parse_args(argv)
    names = [n for n in args.paths.split(",") if n]
    unknown = [n for n in names if n not in PATHS]
    if unknown or "eager" not in names:
        ap.error(f"--paths: {','.join(unknown) or 'eager is missing'} "
                 f"(choose from {','.join(PATHS)}; eager is the anchor)")
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        print(f"[{name}] deapnn gls {' '.join(PATHS[name]) or '(eager float32)'}", flush=True)
        rc = run_path(name, args.out, args)
        if rc != 0:
            print(f"[{name}] failed with exit {rc}: see {args.out}/{name}.log", file=sys.stderr)
            return 1
    print("\n".join(table(args.out, names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
