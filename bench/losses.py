"""Compiled NLFS loss graph (Morgan & Hougen 2024 §3.1) vs hand-written torch.

Times forward + backward of cross-entropy written as a loss graph (``-(y * log(yhat))``, compiled
by :class:`deapnn.losses.graph.LossGraph`) against the same formula hand-written in torch without
``F.cross_entropy``: ``-(y * log(|softmax(z)| + ε)).sum(1).mean()``.  Target ratio ≤ 1.2.

Run: ``python bench/losses.py [--rows 4096] [--classes 10] [--repeats 21] [--inner 50]``.
Timings interleave the two functions, take the median of ``repeats`` blocks of ``inner`` calls.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from deapnn.losses.graph import LossGraph  # noqa: E402
from deapnn.losses.graph_ops import EPS  # noqa: E402


def hand_written(logits, targets):
    yhat = torch.softmax(logits, 1)
    y = F.one_hot(targets, logits.shape[1]).to(yhat.dtype)
    return (-(y * torch.log(torch.abs(yhat) + EPS))).sum(1).mean()


def time_block(fn, logits, targets, inner, device):
    t0 = time.perf_counter()
    for _ in range(inner):
        z = logits.detach().requires_grad_()
        fn(z, targets).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / inner


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--inner", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(args.rows, args.classes, generator=gen).to(device)
    targets = torch.randint(0, args.classes, (args.rows,), generator=gen).to(device)
    compiled = LossGraph.from_expression("-(y * log(yhat))").compile()
    assert torch.allclose(compiled(logits, targets), hand_written(logits, targets))
    assert torch.allclose(compiled(logits, targets), F.cross_entropy(logits, targets), atol=1e-5)
    for fn in (compiled, hand_written):                       # warm-up
        time_block(fn, logits, targets, args.inner, device)
    tc, th = [], []
    for _ in range(args.repeats):
        tc.append(time_block(compiled, logits, targets, args.inner, device))
        th.append(time_block(hand_written, logits, targets, args.inner, device))
    mc, mh = statistics.median(tc), statistics.median(th)
    ref = statistics.median(time_block(lambda z, t: F.cross_entropy(z, t), logits, targets,
                                       args.inner, device) for _ in range(5))
    print(f"batch {args.rows}x{args.classes} on {device}, {args.threads} thread(s), "
          f"median of {args.repeats}x{args.inner} forward+backward")
    print(f"  compiled graph  -(y * log(yhat)) : {mc * 1e6:9.1f} us")
    print(f"  hand-written torch (same formula): {mh * 1e6:9.1f} us")
    print(f"  F.cross_entropy (for reference)  : {ref * 1e6:9.1f} us")
    print(f"ratio compiled / hand-written = {mc / mh:.3f}  (target <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
