"""Gradient Lexicase Selection on your own model and tensors, composed on a DEAP toolbox.

GLS (Ding & Spector, ICLR 2022, §3) is three toolbox entries and one loop: ``mutate`` = subset
gradient descent (``mutSubGD``, §3.2), ``select`` = lexicase over training cases
(``selGradientLexicase``, §3.3), ``evaluate`` = whatever you want logged, and
``eaGradientLexicase`` runs the generations.  The toolbox is the extension point: each arm below
re-registers ``select`` and nothing else.

* ``lexicase``: the paper's selection (pass/fail = top-1 correct on a case);
* ``eps-lexicase``: ε-lexicase on per-case cross-entropy (``case_metric="loss", epsilon="auto"``);
* ``random``: the paper's ablation, a uniformly drawn child (``deapnn.operators.selRandomChild``).

The model is a plain ``nn.Sequential`` written here, the tensors come from MNIST-1D
(``deapnn.data.load_dataset("mnist1d")``; any ``(x, y)`` tensors do).  One job per arm × seed
goes through ``deapnn.runtime.get_map()``, so SCOOP runs them in parallel:

    python examples/gls_toolbox.py --epochs 30 --seeds 0,1
    python -m scoop -n 2 examples/gls_toolbox.py --smoke
"""
from __future__ import annotations

import argparse
import time

import torch
from deap import base
from torch import nn

from deapnn.algorithms import eaGradientLexicase
from deapnn.data import load_dataset
from deapnn.runtime import configure_worker_threads, derive_seed, get_map
from deapnn.training import TrainConfig, evaluate
from deapnn.operators import mutSubGD, selGradientLexicase, selRandomChild

ARMS = ("lexicase", "eps-lexicase", "random")


def my_model(length: int, classes: int) -> nn.Module:
    """The user's own network: a small 1-D conv net for 40-step MNIST-1D sequences."""
    return nn.Sequential(nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(16, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Flatten(), nn.Linear(16 * (length // 4), 64), nn.ReLU(),
                         nn.Linear(64, classes))


def make_toolbox(arm: str, x, y, val_x, val_y) -> base.Toolbox:
    tb = base.Toolbox()
    tb.register("mutate", mutSubGD, x=x, y=y, batch_size=32)
    if arm == "lexicase":
        tb.register("select", selGradientLexicase, x=x, y=y)
    elif arm == "eps-lexicase":                      # the swapped arm: same loop, other operator
        tb.register("select", selGradientLexicase, x=x, y=y, case_metric="loss", epsilon="auto")
    else:
        tb.register("select", selRandomChild)
    tb.register("evaluate", lambda net: {"val_acc": evaluate(net, val_x, val_y)})
    return tb


def run_arm(task: dict) -> dict:
    """One GLS run; returns plain data (under SCOOP only the return value comes back)."""
    configure_worker_threads()
    data = load_dataset("mnist1d", seed=task["seed"])
    n = task["train_size"] or len(data.train.x)
    x, y = data.train.x[:n], data.train.y[:n]
    tb = make_toolbox(task["arm"], x, y, data.val.x, data.val.y)
    torch.manual_seed(derive_seed(task["seed"], "init"))      # same initial weights for every arm
    parent = my_model(x.shape[-1], data.num_classes)
    cfg = TrainConfig(lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=32, schedule="cosine")
    ngen = task["epochs"] * (task["pop"] + 1)                 # the paper's budget: epochs·(p+1)
    start = time.perf_counter()
    parent, logbook = eaGradientLexicase(parent, tb, ngen, cfg=cfg, population_size=task["pop"],
                                         seed=task["seed"], eval_interval=0)
    return {"arm": task["arm"], "seed": task["seed"],
            "val_acc": logbook[-1]["val_acc"],
            "test_acc": evaluate(parent, data.test.x, data.test.y),
            "cases_examined": sum(r["cases_examined"] or 0 for r in logbook),   # random: none
            "seconds": time.perf_counter() - start}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma list of {', '.join(ARMS)}")
    ap.add_argument("--pop", type=int, default=4, help="children per generation (p)")
    ap.add_argument("--epochs", type=int, default=10, help="GLS runs epochs·(p+1) generations")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--train-size", type=int, default=0, help="first N training rows (0: all)")
    ap.add_argument("--smoke", action="store_true", help="1 epoch on 600 rows, p = 2")
    args = ap.parse_args(argv)
    arms = args.arms.split(",")
    if any(a not in ARMS for a in arms):
        ap.error(f"--arms: choose from {', '.join(ARMS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if args.pop < 1 or args.epochs < 1 or args.train_size < 0:
        ap.error("--pop and --epochs must be >= 1, --train-size >= 0")
    if args.smoke:
        args.pop, args.epochs, args.train_size = 2, 1, 600
    tasks = [{"arm": a, "seed": s, "pop": args.pop, "epochs": args.epochs,
              "train_size": args.train_size} for s in seeds for a in arms]
    results = list(get_map()(run_arm, tasks))
    print(f"{'arm':<14}{'seed':>5}{'val acc':>9}{'test acc':>10}{'cases':>9}{'seconds':>9}")
    for r in results:
        print(f"{r['arm']:<14}{r['seed']:>5}{r['val_acc']:>9.4f}{r['test_acc']:>10.4f}"
              f"{r['cases_examined']:>9}{r['seconds']:>9.1f}")
    best = max(results, key=lambda r: r["test_acc"])
    print(f"best arm: {best['arm']} (seed {best['seed']}) test accuracy {best['test_acc']:.4f} "
          f"after {args.epochs * (args.pop + 1)} generations of p = {args.pop}")
    return results


if __name__ == "__main__":
    main()
