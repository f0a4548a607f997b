"""Your data and your model on the command line: an ``.npz`` and a model factory.

Writes, into ``--dir`` (default ``runs/bring_your_own``):

* ``wine.npz`` — scikit-learn's wine data (178 samples, 13 features, 3 classes) split 80/20 into
  ``x_train, y_train, x_test, y_test`` (no ``x_val``: deapnn splits one off, stratified by the
  seed), with the class names in ``classes``;
* ``my_models.py`` — a factory ``small_net(input_shape, num_classes)`` returning an
  ``nn.Module``, the way you would write your own;

then runs, from that directory (so ``my_models`` imports, on SCOOP workers too),

    deapnn gls  --dataset wine.npz --model my_models:small_net ...
    deapnn nlfs --dataset wine.npz --model my_models:small_net ...

and prints both results. Every run directory records the file's SHA-256 (``--resume`` refuses a
changed file) and ``environment.json``.

    python examples/bring_your_own.py            # a few minutes on 2 cores
    python examples/bring_your_own.py --smoke    # seconds: tiny budgets
"""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

MODEL_FACTORY = '''"""A researcher's own network: (input_shape, num_classes) -> nn.Module."""
import math

from torch import nn


def small_net(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 32), nn.Tanh(),
                         nn.Linear(32, num_classes))
'''

#: (full, smoke) budgets of each command
GLS = (["--population-size", "4", "--epochs", "20", "--seeds", "0-2", "--compare", "sgd"],
       ["--population-size", "2", "--epochs", "1", "--seeds", "0", "--compare", "sgd"])
NLFS = (["--population-size", "10", "--pool", "20", "--cycles", "40", "--sample-size", "3",
         "--budget", "150", "--seeds", "0-2", "--final-steps", "450"],
        ["--population-size", "3", "--pool", "4", "--cycles", "4", "--sample-size", "2",
         "--budget", "20", "--seeds", "none", "--top", "1"])


def write_npz(path: Path, seed: int = 0) -> None:
    """scikit-learn's wine data as the arrays deapnn reads (``allow_pickle=False``: plain
    numeric arrays and a unicode ``classes`` array, no objects)."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split
    wine = load_wine()
    x_tr, x_te, y_tr, y_te = train_test_split(wine.data.astype(np.float32), wine.target,
                                              test_size=0.2, stratify=wine.target,
                                              random_state=seed)
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
             classes=np.array(wine.target_names))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="runs/bring_your_own", type=Path)
    parser.add_argument("--smoke", action="store_true", help="tiny budgets (the test suite's)")
    args = parser.parse_args(argv)
    work = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    write_npz(work / "wine.npz")
    (work / "my_models.py").write_text(MODEL_FACTORY)
    budget = 1 if args.smoke else 0
    common = ["--dataset", "wine.npz", "--model", "my_models:small_net", "--device", "cpu"]
    for command, flags in (("gls", GLS[budget]), ("nlfs", NLFS[budget])):
        out = work / command
        print(f"== deapnn {command} on wine.npz with my_models:small_net -> {out}", flush=True)
        argv = [sys.executable, "-m", "deapnn", command, *common, *flags, "--out", str(out)]
        if (out / "config.json").exists():
            argv = [sys.executable, "-m", "deapnn", command, "--resume", str(out)]
        done = subprocess.run(argv, cwd=work)
        if done.returncode != 0:
            print(f"deapnn {command} exited {done.returncode}", file=sys.stderr)
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
