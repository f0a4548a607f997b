"""Benchmark: one EvoMAL meta-step (Raymond et al. 2023 §4.5) with torch.func vs ``higher``.

A meta-step = re-initialise the base MLP, K inner SGD steps (lr 0.01, momentum 0.9, Nesterov,
weight decay 5e-4, batch 128) with the meta-loss network, MSE on a validation batch of 128,
meta-gradient into the edge weights, Adam step. Both implementations do exactly that work, on the
same batches; they are interleaved and the median over repeats is reported, in one process.

Also reported for K = 5: autograd saved-tensor bytes of one unroll (device independent) and, on
CUDA, the peak allocated memory of one meta-step. ``higher`` is a bench-only dependency
(``pip install deapnn[bench]``).

    python bench/evomal.py [--repeats 7] [--steps 20] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from deapnn.data import load_dataset
from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.unrolled import (LocalSearchConfig, reinitialise, task_loss_fn,
                                    unrolled_validation_loss)
from deapnn.models import build_model

TREE = "square(sub(y, fx))"


def _batches(data, k, step, device, bs=128):
    g = torch.Generator().manual_seed(step)
    tr = [torch.randperm(len(data.train), generator=g)[:bs] for _ in range(k)]
    va = torch.randperm(len(data.val), generator=g)[:bs]
    return ([(data.train.x[i].to(device), data.train.y[i].to(device)) for i in tr],
            (data.val.x[va].to(device), data.val.y[va].to(device)))


def _meta_update(meta_opt, loss, meta_params):
    """The meta-optimiser step shared by both implementations: gradient of the validation loss
    into the edge weights, one Adam step."""
    grads = torch.autograd.grad(loss, meta_params)
    for p, g in zip(meta_params, grads):
        p.grad = g
    meta_opt.step()
    meta_opt.zero_grad(set_to_none=True)
    return loss


def step_ours(meta, meta_opt, model, data, cfg, step, device):
    reinitialise(model, step)
    params = {k: v.detach().requires_grad_(True) for k, v in model.named_parameters()}
    batches, val = _batches(data, cfg.inner_steps, step, device)
    meta_params = dict(meta.named_parameters())
    loss = unrolled_validation_loss(meta, meta_params, model, params, batches, val, cfg,
                                    "regression")
    return _meta_update(meta_opt, loss, list(meta_params.values()))


def step_higher(meta, meta_opt, model, data, cfg, step, device):
    import higher
    reinitialise(model, step)
    batches, val = _batches(data, cfg.inner_steps, step, device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    with higher.innerloop_ctx(model, opt, copy_initial_weights=True) as (fmodel, diffopt):
        for xb, yb in batches:
            diffopt.step(meta(fmodel(xb), yb))
        loss = task_loss_fn("regression")(fmodel(val[0]), val[1])
        return _meta_update(meta_opt, loss, list(meta.parameters()))


def setup(k, device):
    data = load_dataset("diabetes")
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, 1).to(device)
    meta = MetaLossNetwork(TREE, task="regression", seed=0).to(device)
    opt = torch.optim.Adam(meta.parameters(), lr=1e-3)
    return data, model, meta, opt, LocalSearchConfig(inner_steps=k)


def time_steps(fn, k, steps, device, offset):
    data, model, meta, opt, cfg = setup(k, device)
    fn(meta, opt, model, data, cfg, 10_000, device)          # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for s in range(steps):
        fn(meta, opt, model, data, cfg, offset + s, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps, meta.weight_list()


def saved_bytes(fn, k, device):
    data, model, meta, opt, cfg = setup(k, device)
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(meta, opt, model, data, cfg, 0, device)
    return total[0]


def cuda_peak(fn, k, device):
    data, model, meta, opt, cfg = setup(k, device)
    fn(meta, opt, model, data, cfg, 0, device)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn(meta, opt, model, data, cfg, 1, device)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(device) - base


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"EvoMAL meta-step, MLP(10-256-256-1) on diabetes, tree {TREE}, device {device}, "
          f"torch {torch.__version__}, {args.repeats} repeats x {args.steps} steps")
    ours, theirs = [], []
    for r in range(args.repeats):
        t_o, w_o = time_steps(step_ours, 1, args.steps, device, r * args.steps)
        t_h, w_h = time_steps(step_higher, 1, args.steps, device, r * args.steps)
        ours.append(t_o)
        theirs.append(t_h)
    diff = max(abs(a - b) for a, b in zip(w_o, w_h))
    m_o, m_h = statistics.median(ours), statistics.median(theirs)
    print(f"K=1 time/meta-step  torch.func: {m_o * 1e3:.2f} ms   higher: {m_h * 1e3:.2f} ms   "
          f"ratio ours/higher = {m_o / m_h:.3f}  (median of {args.repeats})")
    print(f"K=1 learned edge weights agree with higher to {diff:.2e}")
    for k in (5,):
        b_o, b_h = saved_bytes(step_ours, k, device), saved_bytes(step_higher, k, device)
        print(f"K={k} autograd saved tensors per meta-step  torch.func: {b_o / 2**20:.2f} MiB   "
              f"higher: {b_h / 2**20:.2f} MiB")
        t5, _ = time_steps(step_ours, k, max(3, args.steps // 4), device, 0)
        print(f"K={k} time/meta-step torch.func: {t5 * 1e3:.2f} ms")
        if device.type == "cuda":
            p_o, p_h = cuda_peak(step_ours, k, device), cuda_peak(step_higher, k, device)
            print(f"K={k} CUDA peak allocated per meta-step  torch.func: {p_o / 2**20:.2f} MiB   "
                  f"higher: {p_h / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
