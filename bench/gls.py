"""Cost of one GLS generation (p = 4 children, SubGD + lazy lexicase selection) relative to one SGD
epoch of the same model on the same data and device, measured in the same run.

Target (issue 4): ratio <= 1.2 for ``cnn`` on digits and for ``resnet18`` on 32×32 inputs.
For digits the ratio is reported twice: from a fresh network (early generations, selection ends
within a few cases) and from a network pre-trained to ~100 % training accuracy (late generations,
selection may need every case). Selection costs forward passes per *examined case*, independent
of the training-set size N, while an epoch grows with N: the resnet18 line therefore depends on
``--resnet-n`` (CIFAR has N = 50,000; 512 keeps the CPU run short, 2048 is closer to real use).
Run: ``python bench/gls.py [--repeats 3] [--resnet-n 512]``.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from deapnn.data import load_dataset
from deapnn.models import build_model
from deapnn.runtime import get_device
from deapnn.training import TrainConfig, batch_order, make_optimizer, train, train_steps
from operators.gls import mutSubGD, selGradientLexicase


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sgd_epoch(model, x, y, cfg, seed):
    opt = make_optimizer(model.parameters(), cfg)
    order = batch_order(len(x), torch.Generator().manual_seed(seed))
    train_steps(model, opt, x, y, torch.nn.functional.cross_entropy, order.split(cfg.batch_size))


def gls_generation(parent, x, y, cfg, seed, p=4, chunk=8):
    children = [copy.deepcopy(parent) for _ in range(p)]
    opts = [make_optimizer(c.parameters(), cfg) for c in children]
    mutSubGD(children, x, y, optimizers=opts, batch_size=cfg.batch_size,
             generator=torch.Generator().manual_seed(seed))
    info = {}
    winner = selGradientLexicase(children, 1, x=x, y=y, rng=np.random.default_rng(seed),
                                 chunk_size=chunk, info=info)[0]
    parent.load_state_dict(winner.state_dict())
    return info["cases_examined"]


def measure(name, model, x, y, cfg, repeats, device):
    sgd_times, gls_times, cases = [], [], []
    for r in range(repeats + 1):            # first round warms up, not counted
        m1, m2 = copy.deepcopy(model), copy.deepcopy(model)
        sync(device); t0 = time.perf_counter()
        sgd_epoch(m1, x, y, cfg, r)
        sync(device); t1 = time.perf_counter()
        cases.append(gls_generation(m2, x, y, cfg, r))
        sync(device); t2 = time.perf_counter()
        if r:
            sgd_times.append(t1 - t0)
            gls_times.append(t2 - t1)
    ratio = statistics.median(g / s for g, s in zip(gls_times, sgd_times))
    print(f"{name:<38} SGD epoch {statistics.median(sgd_times):7.3f} s   GLS gen "
          f"{statistics.median(gls_times):7.3f} s   cases examined {int(np.median(cases)):>6}   "
          f"ratio {ratio:5.2f}  {'PASS' if ratio <= 1.2 else 'FAIL'} (target <= 1.2)")
    return ratio


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resnet-n", type=int, default=512, help="random 32×32 images for resnet18")
    args = ap.parse_args()
    device = get_device()
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    cfg = TrainConfig(lr=0.05, batch_size=64)

    data = load_dataset("digits", seed=0)
    x, y = data.train.x.to(device), data.train.y.to(device)
    torch.manual_seed(0)
    fresh = build_model("cnn", data.input_shape, data.num_classes).to(device)
    measure("cnn / digits, fresh network", fresh, x, y, cfg, args.repeats, device)
    trained = copy.deepcopy(fresh)
    train(trained, x, y, TrainConfig(epochs=15, lr=0.05), device=device, seed=0)
    measure("cnn / digits, trained network", trained, x, y, cfg, args.repeats, device)

    g = torch.Generator().manual_seed(0)
    xr = torch.randn(args.resnet_n, 3, 32, 32, generator=g).to(device)
    yr = torch.randint(10, (args.resnet_n,), generator=g).to(device)
    torch.manual_seed(0)
    resnet = build_model("resnet18", (3, 32, 32), 10).to(device)
    measure(f"resnet18 / {args.resnet_n} random 32×32", resnet, xr, yr, cfg, args.repeats, device)


if __name__ == "__main__":
    main()
