"""Is the chosen fast path faster here? Measured once, at the start, with one warning if not.

``--compile`` and ``--precision bf16`` win on some networks and machines and lose on others
(bench/speed.py: a small MLP gains nothing from compiling; bfloat16 without native CPU support
is emulated). A run that turns a path on measures it on its own network and batch before its
first training step: a throw-away copy of the network takes a few training steps on the eager
float32 path and on the chosen one, interleaved, under a forked random state (the run's own
random draws are untouched). When the chosen path is slower, one ``deapnn: warning:`` line
names the measured times and the likely cause. Once per process for each architecture and
path; ``DEAPNN_SPEED_CHECK=0`` skips it (the compiled graph it builds is the one the run then
uses, so it costs a few steps, not a compilation).
"""
from __future__ import annotations

import copy
import os
import statistics
import sys
import time

import torch

_CHECKED: set = set()
#: seconds of steps each timed block aims at (a block has 1 to 5 steps)
BLOCK_SECONDS = 0.05
#: timed blocks per path
ROUNDS = 3


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cause(fast, device, eager_s: float, fast_s: float) -> str:
    """The likely reason the chosen path is slower, from what was measured."""
    if fast.precision != "fp32" and device.type == "cpu" and not _native_bf16():
        return ("this CPU has no native bfloat16 arithmetic (AVX512-BF16 or AMX), so "
                "autocast only adds conversions")
    if fast.compile and eager_s < 2e-3:
        return (f"an eager step takes {eager_s * 1e3:.2f} ms: the compiled graph's call overhead "
                "outweighs what fusing its kernels saves on a network this small")
    if fast.precision != "fp32":
        return ("at this size the conversions autocast adds cost more than the lower-precision "
                "kernels save")
    return "the compiled kernels are slower than eager's for this network on this machine"


def _steps(model, opt, forward, loss_fn, xb, yb, n, fast, device):
    for _ in range(n):
        if fast is None:
            loss = loss_fn(forward(xb), yb)
        else:
            with fast.autocast(device):
                loss = loss_fn(forward(xb).float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def measure(fast, model, loss_fn, xb, yb, device, channels_last: bool = False
            ) -> tuple[float, float]:
    """Median seconds per training step of a copy of ``model`` on ``(xb, yb)``: eager float32
    in the default layout and ``fast``'s path (compiled first, untimed; ``channels_last``: in
    that layout, as the run trains), in interleaved blocks."""
    eager_net, fast_net = copy.deepcopy(model), copy.deepcopy(model)
    eager_net.to(memory_format=torch.contiguous_format)
    fast_x = xb.contiguous(memory_format=torch.channels_last) if channels_last else xb
    if channels_last:
        fast_net.to(memory_format=torch.channels_last)
    eager_opt = torch.optim.SGD(eager_net.parameters(), lr=0.0)
    fast_opt = torch.optim.SGD(fast_net.parameters(), lr=0.0)
    eager_net.train()
    fast_net.train()
    forward = fast.train_forward(fast_net)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        _steps(fast_net, fast_opt, forward, loss_fn, fast_x, yb, 1, fast, device)   # compiles
        _sync(device)
        t0 = time.perf_counter()
        _steps(eager_net, eager_opt, eager_net, loss_fn, xb, yb, 1, None, device)
        _sync(device)
        one = time.perf_counter() - t0
        n = max(1, min(5, int(BLOCK_SECONDS / max(one, 1e-6))))
        eager: list[float] = []
        chosen: list[float] = []
        for r in range(ROUNDS):
            for which in ((0, 1) if r % 2 else (1, 0)):
                net, opt, fwd, path, inputs = (
                    (eager_net, eager_opt, eager_net, None, xb) if which == 0
                    else (fast_net, fast_opt, forward, fast, fast_x))
                _sync(device)
                t0 = time.perf_counter()
                _steps(net, opt, fwd, loss_fn, inputs, yb, n, path, device)
                _sync(device)
                (eager if which == 0 else chosen).append((time.perf_counter() - t0) / n)
    return statistics.median(eager), statistics.median(chosen)


def check_speed(fast, model, loss_fn, xb, yb, device, channels_last: bool = False
                ) -> str | None:
    """Measure ``fast`` against eager float32 on ``model`` once per process (see the module
    docstring; ``channels_last``: the run trains in that layout); the warning line printed when
    it is slower, else None."""
    if os.environ.get("DEAPNN_SPEED_CHECK", "1") == "0":
        return None
    from .compiled import architecture_key
    key = (fast, architecture_key(model), tuple(xb.shape))
    if key in _CHECKED:
        return None
    _CHECKED.add(key)
    eager_s, fast_s = measure(fast, model, loss_fn, xb, yb, device, channels_last)
    if fast_s <= eager_s:
        return None
    line = (f"deapnn: warning: {fast.describe()} is slower than eager float32 for "
            f"{type(model).__name__} on this machine (a training step of {len(xb)}: "
            f"{fast_s * 1e3:.2f} ms against {eager_s * 1e3:.2f} ms, measured at the start): "
            f"{cause(fast, device, eager_s, fast_s)}")
    print(line, file=sys.stderr, flush=True)
    return line


__all__ = ["check_speed", "measure", "cause"]
