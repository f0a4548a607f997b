"""Scale report of a loss: is it cross-entropy (or label-smoothed cross-entropy) in disguise?

SGD sees a loss only through its gradient with respect to the network outputs. A found loss
whose gradient is ``k`` times cross-entropy's everywhere (e.g. ``2.606 × CE``, or CE plus a
constant) trains exactly like CE with a ``k`` times larger learning rate: against an *untuned*
baseline it "wins" by being a learning-rate change (``docs/results.md``; Morgan & Hougen 2024
§4 compare with CE at one fixed learning rate).

Definition (what :func:`scale_report` computes). ``batches`` batches of ``rows`` random outputs
are drawn from one seeded generator: logits ``z ~ N(0, 1)`` (the scale of a freshly initialised
network's outputs) with class labels uniform over ``num_classes`` (classification), or outputs
and targets ``~ N(0, 1)`` (regression). On each batch ``g_L = ∂L/∂z`` is the gradient of the
(batch-mean) loss, in float64. Reported:

* ``grad_ratio`` = ``sqrt(Σ‖g_L‖² / Σ‖g_CE‖²)`` over the batches — the loss's gradient scale
  at initialisation relative to the task's baseline (CE; MSE for regression);
* for every reference ``R`` (CE and label-smoothed CE with ε = 0.1; MSE for regression) the
  least-squares multiple ``k = Σ⟨g_L, g_R⟩ / Σ‖g_R‖²`` over all batches and its relative residual
  ``‖g_L − k g_R‖ / ‖g_L‖``; the loss is flagged as ``k × R`` when the residual is below
  ``tolerance`` (default 1e-4: float rounding and the ε of protected logarithms stay far below
  it, a genuinely different loss far above).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TOLERANCE = 1e-4


def _ce(z, y):
    return F.cross_entropy(z, y)


def _ls_ce(z, y):
    return F.cross_entropy(z, y, label_smoothing=0.1)


def _mse(z, y):
    return F.mse_loss(z, y.reshape(z.shape))


def references(task: str) -> dict:
    """The reference losses of a task: ``{name: loss(outputs, targets)}``, baseline first."""
    if task == "classification":
        return {"CE": _ce, "label-smoothed CE": _ls_ce}
    return {"MSE": _mse}


def _batches(task: str, num_classes: int, batches: int, rows: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        if task == "classification":
            z = torch.randn(rows, num_classes, generator=gen, dtype=torch.float64)
            y = torch.randint(0, num_classes, (rows,), generator=gen)
        else:
            z = torch.randn(rows, num_classes, generator=gen, dtype=torch.float64)
            y = torch.randn(rows, num_classes, generator=gen, dtype=torch.float64)
        out.append((z, y))
    return out


def _grad(loss_fn, z, y) -> torch.Tensor | None:
    z = z.clone().requires_grad_(True)
    try:
        loss = loss_fn(z, y)
        (g,) = torch.autograd.grad(loss.sum(), z)
    except (RuntimeError, ValueError, TypeError):
        return None
    return g.detach().to(torch.float64).reshape(-1)


def scale_report(loss_fn, num_classes: int, task: str = "classification", *, batches: int = 8,
                 rows: int = 256, seed: int = 0, tolerance: float = TOLERANCE) -> dict:
    """The scale report of ``loss_fn(outputs, targets)`` (module docstring): ``{"grad_ratio",
    "multiples": {reference: {"k", "residual"}}, "flag"}``; ``flag`` is ``"k × R"`` for the
    reference with the smallest residual below ``tolerance``, else None. A loss whose gradient
    cannot be computed or is not finite gets ``grad_ratio`` None and no flag. Draws no numbers
    from the global random generators."""
    refs = references(task)
    data = _batches(task, num_classes, batches, rows, seed)
    grads = [_grad(loss_fn, z, y) for z, y in data]
    if any(g is None or not torch.isfinite(g).all() for g in grads):
        return {"grad_ratio": None, "multiples": {}, "flag": None,
                "reason": "gradient undefined or not finite on random outputs"}
    g = torch.cat(grads)
    ref_grads = {name: torch.cat([_grad(fn, z, y) for z, y in data]) for name, fn in refs.items()}
    base = next(iter(ref_grads.values()))
    ratio = float(g.norm() / base.norm())
    multiples, flag, best = {}, None, math.inf
    for name, r in ref_grads.items():
        k = float(torch.dot(g, r) / torch.dot(r, r))
        residual = float((g - k * r).norm() / g.norm()) if g.norm() > 0 else math.inf
        multiples[name] = {"k": k, "residual": residual}
        if residual < tolerance and residual < best:
            best, flag = residual, f"{k:.4g} × {name}"
    return {"grad_ratio": ratio, "multiples": multiples, "flag": flag}


def scale_line(name: str, report: dict) -> str:
    """One printed line of a scale report."""
    if report.get("grad_ratio") is None:
        return f"  {name}: {report.get('reason', 'no scale report')}"
    base = next(iter(report["multiples"]), "baseline")
    fits = ", ".join(f"{ref}: k={m['k']:.4g} residual {m['residual']:.1e}"
                     for ref, m in report["multiples"].items())
    verdict = f"IS {report['flag']} (same gradient direction: a learning-rate change)" \
        if report["flag"] else "not a multiple of a reference"
    return (f"  {name}: gradient norm {report['grad_ratio']:.4g} × {base}'s at initialisation; "
            f"{verdict} [{fits}]")


__all__ = ["scale_report", "scale_line", "references", "TOLERANCE"]
