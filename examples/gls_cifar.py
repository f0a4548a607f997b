"""Gradient Lexicase Selection on CIFAR-10 in the paper's setting (Ding & Spector 2022, §4):
VGG19-BN or ResNet18, p = 4 children, SGD lr 0.1 / momentum 0.9 / weight decay 1e-4, batch 64,
cosine learning rate over 200·(p+1) generations, random-crop + flip augmentation for SubGD and the
unaugmented training set for selection.

    python examples/gls_cifar.py --root DATA_DIR [--download] [--arch resnet18] [--seeds 0,1,2]
    # a seed per worker/GPU:
    python -m scoop -n 3 examples/gls_cifar.py --root DATA_DIR --seeds 0,1,2
    python examples/gls_cifar.py --smoke       # tiny fake CIFAR-format files, a few generations

The DEAP toolbox is composed here explicitly: ``mutate`` = subset gradient descent,
``select`` = lazy lexicase over training cases, ``evaluate`` = test accuracy.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from deap import base

from deapnn.algorithms import eaGradientLexicase
from deapnn.data import load_dataset
from deapnn.models import build_model
from deapnn.runtime import configure_worker_threads, derive_seed, get_device, get_map
from deapnn.training import TrainConfig, evaluate
from deapnn.operators import mutSubGD, selGradientLexicase


def run_seed(task: dict) -> dict:
    """One GLS run (one seed); returns the final parent's test accuracy (reported as in
    Ding & Spector 2022, §4: the final parent, not the best evaluation)."""
    configure_worker_threads()
    device = get_device()
    with _data_context(task):
        data = load_dataset("cifar10", root=task["root"], download=task["download"],
                            seed=task["seed"])
    x, y = data.train.x.to(device), data.train.y.to(device)
    test_x, test_y = data.test.x.to(device), data.test.y.to(device)

    toolbox = base.Toolbox()
    toolbox.register("mutate", mutSubGD, x=x, y=y, batch_size=task["batch_size"],
                     augment="crop_flip")
    toolbox.register("select", selGradientLexicase, x=x, y=y,       # unaugmented cases
                     max_cases=task["max_cases"])
    toolbox.register("evaluate", lambda net: {"test_acc": evaluate(net, test_x, test_y)})

    torch.manual_seed(derive_seed(task["seed"], "init"))
    parent = build_model(task["arch"], data.input_shape, data.num_classes).to(device)
    ngen = task["epochs"] * (task["pop"] + 1)
    cfg = TrainConfig(lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=task["batch_size"],
                      schedule="cosine")
    start = time.perf_counter()
    parent, logbook = eaGradientLexicase(parent, toolbox, ngen, cfg=cfg,
                                         population_size=task["pop"], seed=task["seed"],
                                         eval_interval=task["eval_every"],
                                         verbose=task["verbose"])
    return {"seed": task["seed"], "test_acc": logbook[-1]["test_acc"],
            "cases_examined_last": logbook[-1]["cases_examined"],
            "seconds": time.perf_counter() - start, "device": str(device)}


def _data_context(task):
    if task["smoke"]:
        from deapnn.data.fake import trust_local_files
        return trust_local_files()
    import contextlib
    return contextlib.nullcontext()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="directory holding cifar-10-batches-py")
    ap.add_argument("--download", action="store_true")
    ap.add_argument("--arch", default="vgg19_bn", choices=["vgg19_bn", "resnet18", "mobilenetv2"])
    ap.add_argument("--pop", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=200, help="GLS runs epochs·(p+1) generations")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--max-cases", type=int, default=None,
                    help="cases one selection may examine (down-sampled lexicase; default: all)")
    ap.add_argument("--smoke", action="store_true", help="tiny fake CIFAR files, resnet18, p=2")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    tmp, batch_size = None, 64
    if args.smoke:
        from deapnn.data.fake import fake_cifar10
        tmp = tempfile.TemporaryDirectory()
        fake_cifar10(tmp.name, n_train=48, n_test=16)
        args.root, args.arch, args.pop, args.epochs, args.eval_every = tmp.name, "resnet18", 2, 1, 1
        batch_size = 16          # 44 training images: every child must get mini-batches
    tasks = [{"seed": s, "root": args.root, "download": args.download, "arch": args.arch,
              "pop": args.pop, "epochs": args.epochs, "eval_every": args.eval_every,
              "max_cases": args.max_cases, "smoke": args.smoke, "verbose": args.verbose,
              "batch_size": batch_size}
             for s in seeds]
    for result in get_map()(run_seed, tasks):
        print(json.dumps(result))
        print(f"seed {result['seed']}: test accuracy {result['test_acc']:.4f} "
              f"({result['seconds']:.0f} s on {result['device']})")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
