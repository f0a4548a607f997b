"""Speed of the opt-in fast paths (issue 27) against eager float32, measured in one run.

For ``cnn`` and ``mlp`` on ``mnist1d_large`` and ``resnet18`` on 2,048 random 32×32 images:
one SGD epoch and one GLS generation (p = 4 children: SubGD + lazy lexicase selection, from a
fresh network) on each path — eager float32 (the anchor), ``--compile``, ``--precision bf16``,
both, and on CUDA ``--precision fp16`` — in interleaved rounds (the paths' order reverses every
round, so a slow spell of a busy machine hits all of them); each ratio is the median over
rounds of eager time / path time (> 1: faster) with its interquartile range.

Compiled paths: ``compile`` is the first epoch (or generation) less a steady one — what the
graphs cost to build, training graph and selection graph (the on-disk inductor cache is
pointed at a fresh directory, so this is a first run's cost; ``--warm-cache`` keeps the
user's cache); ``break-even``: compile time / seconds saved per epoch, the epochs after which
the path has paid for itself. ``recompiles``: graphs compiled after the first generation (the
target is 0). A path slower than eager is marked ``WARN`` with the measured cause
(:func:`deapnn.fastcheck.cause`). Verdicts (issue 27): ``--compile`` >= 1.3× on the cnn SGD
epoch and GLS generation, compile time paid back within 5 epochs, no recompilation.

``--quick``: a smoke run (2,048 MNIST-1D examples, 256 images, one round, the user's inductor
cache; no verdicts).
Run: ``python bench/speed.py [--quick] [--repeats 5] [--models cnn,mlp,resnet18]``.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import tempfile
import time

os.environ["DEAPNN_SPEED_CHECK"] = "0"        # the run's own check would be timed with it
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from deapnn.compiled import compile_stats, reset_compiled  # noqa: E402
from deapnn.fastcheck import cause  # noqa: E402
from deapnn.fastpath import FastPath  # noqa: E402
from deapnn.models import build_model  # noqa: E402
from deapnn.operators import mutSubGD, selGradientLexicase  # noqa: E402
from deapnn.runtime import get_device  # noqa: E402
from deapnn.training import TrainConfig, batch_order, make_optimizer, train_steps  # noqa: E402

TARGET_SPEEDUP, TARGET_EPOCHS = 1.3, 5


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paths(model, device) -> dict[str, FastPath]:
    """The paths timed on ``model``: the flags' combinations and, for a network with 2-D
    convolutions, the training layout's two alternatives (``channels-last``: eager float32 in
    that layout, a library option; ``bf16 NCHW``: bf16 in the default layout, which the bf16
    path replaces by channels-last on CPU)."""
    out = {"eager fp32": FastPath(), "--compile": FastPath(compile=True),
           "bf16": FastPath(precision="bf16"), "--compile bf16": FastPath(True, "bf16")}
    if device.type == "cuda":
        out.update({"fp16": FastPath(precision="fp16"), "--compile fp16": FastPath(True, "fp16")})
    if any(p.dim() == 4 for p in model.parameters()):
        out.update({"channels-last": FastPath(channels_last=True),
                    "bf16 NCHW": FastPath(precision="bf16", channels_last=False)})
    return out


def sgd_epoch(model, x, y, cfg, seed, fast) -> float:
    opt = make_optimizer(model.parameters(), cfg)
    order = batch_order(len(x), torch.Generator().manual_seed(seed))
    return train_steps(model, opt, x, y, F.cross_entropy, order.split(cfg.batch_size),
                       fast=fast)[0]


def gls_generation(parent, x, y, cfg, seed, fast, p=4, chunk=8):
    """One generation from ``parent`` (left as it is). ``chunk``: selection's first chunk of
    cases (16 in the warm-up: a chunk of fewer runs eagerly, so the selection graph is compiled
    there, not in a timed round)."""
    children = [copy.deepcopy(parent) for _ in range(p)]
    opts = [make_optimizer(c.parameters(), cfg) for c in children]
    mutSubGD(children, x, y, optimizers=opts, batch_size=cfg.batch_size, fast=fast,
             generator=torch.Generator().manual_seed(seed))
    selGradientLexicase(children, 1, x=x, y=y, rng=np.random.default_rng(seed), fast=fast,
                        chunk_size=chunk)


def timed(fn, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def recompiles() -> int:
    """Graphs compiled by a compiled forward after its own first call (all of this process's)."""
    return sum(s["recompiles"] for s in compile_stats().values())


def quartiles(values):
    q1, med, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return med, q1, q3


def measure(name, model, x, y, rounds, device, cfg):
    """Time every path on ``model``; print its table; return {path: row}."""
    chosen = paths(model, device)
    first, times = {}, {k: {"sgd": [], "gls": []} for k in chosen}
    extra = {}
    def both(seed, fast, chunk=8):
        return (timed(lambda: sgd_epoch(copy.deepcopy(model), x, y, cfg, seed, fast), device),
                timed(lambda: gls_generation(model, x, y, cfg, seed, fast, chunk=chunk), device))

    for label, fast in chosen.items():          # warm-up: compiles, counted as compile time
        first[label] = both(0, fast, chunk=16)
    after_first = recompiles()
    for r in range(1, rounds + 1):
        order = list(chosen.items())
        for label, fast in (order if r % 2 else order[::-1]):
            epoch, generation = both(r, fast)
            times[label]["sgd"].append(epoch)
            times[label]["gls"].append(generation)
    again = recompiles() - after_first
    warm = {}
    for label, fast in chosen.items():      # compile again from inductor's on-disk cache
        if fast.compile:
            reset_compiled()
            warm[label] = both(rounds + 1, fast, chunk=16)
    steps = math.ceil(len(x) / cfg.batch_size)
    print(f"\n{name}   ({rounds} round(s); ratio = eager / path, > 1 faster; "
          f"recompiles after the first generation: {again})")
    print(f"  {'path':<16}{'SGD epoch':>11}{'ratio [IQR]':>22}{'GLS gen':>11}"
          f"{'ratio [IQR]':>22}{'compile':>10}{'break-even':>13}")
    base = times["eager fp32"]
    rows = {}
    for label, fast in chosen.items():
        t = times[label]
        row = {"recompiles": again}
        for kind in ("sgd", "gls"):
            row[kind] = quartiles([b / s for b, s in zip(base[kind], t[kind])])
            row[kind + "_s"] = statistics.median(t[kind])
        # a first call less a steady one; below 0 is timing noise (a graph loaded from cache)
        compile_s = max(0.0, (first[label][0] - row["sgd_s"]) + (first[label][1] - row["gls_s"]))
        saved = statistics.median(base["sgd"]) - row["sgd_s"]
        row["compile_s"] = compile_s if fast.compile else None
        row["break_even"] = (compile_s / saved if saved > 0 else math.inf) if fast.compile \
            else None
        if label in warm:
            row["warm_s"] = max(0.0, (warm[label][0] - row["sgd_s"])
                                + (warm[label][1] - row["gls_s"]))
            row["warm_even"] = row["warm_s"] / saved if saved > 0 else math.inf
        rows[label] = row
        cells = "".join(f"{row[k + '_s']:>9.3f} s{row[k][0]:>7.2f} "
                        f"[{row[k][1]:.2f}–{row[k][2]:.2f}]{'':>3}" for k in ("sgd", "gls"))
        comp = f"{compile_s:>8.1f} s" if fast.compile else f"{'':>10}"
        even = (f"{row['break_even']:>8.1f} ep." if row["break_even"] != math.inf
                else f"{'never':>12}") if fast.compile else ""
        print(f"  {label:<16}{cells}{comp}{even}")
        if label in warm:
            again_even = (f"{row['warm_even']:.1f} epochs" if row["warm_even"] != math.inf
                          else "never")
            print(f"    from inductor's on-disk cache (a later run): compile {row['warm_s']:.1f} s,"
                  f" break-even {again_even}")
        slower = [what for kind, what in (("sgd", "SGD epoch"), ("gls", "GLS generation"))
                  if label != "eager fp32" and row[kind][0] < 1.0]
        if slower:
            eager_step = statistics.median(base["sgd"]) / steps
            print(f"    WARN {label} is slower than eager float32 here ({' and '.join(slower)}): "
                  f"{cause(fast, device, eager_step, row['sgd_s'] / steps)}")
    extra.update(rows)
    return extra


def verdicts(results) -> None:
    print("\nverdicts (issue 27):")
    cnn = results.get("cnn", {}).get("--compile")
    if cnn:
        for kind, what in (("sgd", "SGD epoch"), ("gls", "GLS generation")):
            med, q1, q3 = cnn[kind]
            ok = "PASS" if med >= TARGET_SPEEDUP else "FAIL"
            if q1 < TARGET_SPEEDUP <= q3 or q3 < TARGET_SPEEDUP <= q1:
                ok += " (unsteady)"
            print(f"  --compile on the cnn {what}: {med:.2f}x (target >= {TARGET_SPEEDUP}x)  "
                  f"{ok}")
        even = cnn["break_even"]
        print(f"  cnn compile time paid back in {even:.1f} epochs (target <= {TARGET_EPOCHS})  "
              f"{'PASS' if even <= TARGET_EPOCHS else 'FAIL'}")
    again = {m: r["eager fp32"]["recompiles"] for m, r in results.items()}
    print(f"  recompilations after the first generation: {again}  "
          f"{'PASS' if not any(again.values()) else 'FAIL'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: small data, one round")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds after warm-up")
    ap.add_argument("--models", default="cnn,mlp,resnet18")
    ap.add_argument("--resnet-n", type=int, default=2048, help="random 32×32 images")
    ap.add_argument("--warm-cache", action="store_true",
                    help="keep the user's inductor cache (compile time of a later run)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)     # each table as it is measured
    if not (args.warm_cache or args.quick):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="deapnn-speed-")
    device = get_device()
    rounds = 1 if args.quick else args.repeats
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}"
          + (" (quick: a smoke run, no verdicts)" if args.quick else ""))
    cfg = TrainConfig(lr=0.05, batch_size=64)
    results = {}
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if {"cnn", "mlp"} & set(models):
        from deapnn.data import load_dataset
        data = load_dataset("mnist1d_large", seed=0)
        n = 2048 if args.quick else len(data.train)
        x, y = data.train.x[:n].to(device), data.train.y[:n].to(device)
        for name in ("cnn", "mlp"):
            if name in models:
                torch.manual_seed(0)
                model = build_model(name, data.input_shape, data.num_classes).to(device)
                results[name] = measure(f"{name} / mnist1d_large ({n:,} examples)", model, x, y,
                                        rounds, device, cfg)
    if "resnet18" in models:
        n = 256 if args.quick else args.resnet_n
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 3, 32, 32, generator=g).to(device)
        y = torch.randint(10, (n,), generator=g).to(device)
        torch.manual_seed(0)
        model = build_model("resnet18", (3, 32, 32), 10).to(device)
        results["resnet18"] = measure(f"resnet18 / {n:,} random 32×32 images", model, x, y,
                                      rounds, device, cfg)
    if not args.quick:
        verdicts(results)


if __name__ == "__main__":
    main()
