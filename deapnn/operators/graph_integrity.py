"""Integrity check of NLFS loss graphs (Morgan & Hougen 2024, §3.3).

:func:`checkIntegrity` evaluates a loss on a two-class probe and rejects degenerate curves
(non-finite, flat, optimum near p = 0.5, too many bends); it decides whether the loss must be
negated ("flip") and returns the normalised probe curve, the phenotype fingerprint that
:mod:`deapnn.operators.graph_phenotype` compares.

Orientation (§3.3 and Morgan & Hougen's ``Loss.check_integrity``): a monotone curve is flipped
when it decreases, a U kept and an inverted U flipped — the paper's cases. A curve with two
bends, which the paper does not name, is oriented as the reference orients every curve that is
not strictly monotone, by its slope at the start (the third step's, flat steps taking the slope
before them): flipped when it rises (an up-down-up curve is flipped, a down-up-down one kept;
``flip_rule="start"``). ``flip_rule="end"`` (deapnn before) flips it when it ends falling
instead. Monotone curves with a flat step, and a U or an inverted U bending within the first
three steps, follow the paper, not the reference's slope at the start
(``docs/faithfulness.md``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from deapnn.losses.graph import LossGraph, GraphError, compile_key

PROBE_ROWS = 1000
PROBE_LOW, PROBE_HIGH = 1e-7, 1.0 - 1e-7
CENTRE = (0.49, 0.51)
MAX_FLAT = 10
MAX_SIGN_CHANGES = 2
FLAT_RTOL, FLAT_ATOL = 1e-9, 1e-12
#: the rules orienting a curve with two bends, by its slope at the start (the reference's) or
#: at the end
FLIP_RULES = ("start", "end")
#: the step whose slope is "the slope at the start" (the reference's ``t[2]``)
START_STEP = 2


class IntegrityResult(NamedTuple):
    """Outcome of :func:`checkIntegrity` (a named tuple).

    Parameters
    ----------
    accept : bool
        Whether the loss passes the integrity check.
    flip : bool
        Whether the loss must be negated so that it grows as the prediction gets worse.
    fingerprint : numpy.ndarray or None
        The min–max-normalised probe curve *after* the flip (float32, 1,000 values), or ``None``
        when the curve is not finite or is constant.
    reason : str
        Why the loss was rejected, or the curve's shape when accepted (``"monotone"``, ``"U"``,
        ``"inverted U, flipped"`` ...).

    Examples
    --------
    >>> from deapnn.operators import IntegrityResult
    >>> IntegrityResult(False, False, None, "flat (constant) curve").accept
    False

    References
    ----------
    Morgan & Hougen 2024, "Neural loss function evolution for large-scale image classifier
    convolutional neural networks" (arXiv 2403.08793), §3.3.
    """
    accept: bool
    flip: bool
    fingerprint: np.ndarray | None
    reason: str


@lru_cache(maxsize=2)
def probe(dtype=torch.float64):
    """The probe batch ``(y, ŷ, p)``: ŷ = [p, 1−p], y = [0, 1], p from 1e-7 to 1−1e-7."""
    p = torch.linspace(PROBE_LOW, PROBE_HIGH, PROBE_ROWS, dtype=dtype)
    yhat = torch.stack([p, 1.0 - p], 1)
    y = torch.zeros_like(yhat)
    y[:, 1] = 1.0
    return y, yhat, p.numpy()


def probe_curve(genome_or_fn) -> np.ndarray:
    """The raw (un-flipped) loss of every probe row: ``sum_classes root(y, ŷ)``, float64."""
    y, yhat, _ = probe()
    fn = genome_or_fn.raw_fn() if isinstance(genome_or_fn, LossGraph) else genome_or_fn
    with torch.no_grad():
        out = torch.as_tensor(fn(y, yhat), dtype=torch.float64)
    if out.dim() == 2:
        out = out.sum(1)
    return out.expand(PROBE_ROWS).numpy().astype(np.float64, copy=True)


def _slope_at(d: np.ndarray, flat: np.ndarray, step: int) -> float:
    """The sign of step ``step``; a flat step takes the sign of the nearest non-flat step before
    it, circularly (the reference fills zero signs with ``np.roll(t, 1)``)."""
    before = np.flatnonzero(~flat[:step + 1])
    return float(np.sign(d[before[-1]] if len(before) else d[np.flatnonzero(~flat)[-1]]))


def check_flip_rule(flip_rule: str) -> None:
    """Raise ``ValueError`` unless ``flip_rule`` is one of :data:`FLIP_RULES`."""
    if flip_rule not in FLIP_RULES:
        raise ValueError(f"flip_rule must be one of {', '.join(FLIP_RULES)}, got {flip_rule!r}")


def analyse_curve(curve: np.ndarray, flip_rule: str = "start") -> IntegrityResult:
    """Apply the integrity rules (Morgan & Hougen 2024 §3.3) to a probe curve (see
    :func:`checkIntegrity`)."""
    check_flip_rule(flip_rule)
    curve = np.asarray(curve, dtype=np.float64)
    if not np.all(np.isfinite(curve)):
        return IntegrityResult(False, False, None, "non-finite values on the probe")
    _, _, p = probe()
    d = np.diff(curve)
    scale = np.maximum(np.abs(curve[:-1]), np.abs(curve[1:]))
    flat = np.abs(d) <= FLAT_ATOL + FLAT_RTOL * scale
    n_flat = int(flat.sum())
    if n_flat == len(d):
        return IntegrityResult(False, False, None, "flat (constant) curve")
    lo, hi = CENTRE
    for which, idx in (("minimum", int(np.argmin(curve))), ("maximum", int(np.argmax(curve)))):
        if lo <= p[idx] <= hi:
            return IntegrityResult(False, False, None, f"{which} at p={p[idx]:.3f} (≈0.5)")
    if n_flat > MAX_FLAT:
        return IntegrityResult(False, False, None, f"{n_flat} flat steps (> {MAX_FLAT})")
    signs = np.sign(d[~flat])
    changes = int(np.count_nonzero(signs[1:] != signs[:-1]))
    if changes > MAX_SIGN_CHANGES:
        return IntegrityResult(False, False, None,
                               f"slope changes sign {changes} times (> {MAX_SIGN_CHANGES})")
    # increasing -> keep; decreasing -> flip; U (down then up) -> keep; inverted U -> flip (the
    # paper's shapes); two bends: "start" flips when the third step rises (the reference's t[2],
    # flat steps taking the slope before them), "end" when the last step falls (deapnn before)
    if changes == 2 and flip_rule == "start":
        flip = bool(_slope_at(d, flat, START_STEP) > 0)
    else:
        flip = bool(signs[-1] < 0)
    shape = {0: "monotone", 1: "U" if signs[0] < 0 else "inverted U"}.get(changes, "two-bend")
    eff = -curve if flip else curve
    span = eff.max() - eff.min()
    fp = ((eff - eff.min()) / span).astype(np.float32)
    return IntegrityResult(True, flip, fp, f"{shape}{', flipped' if flip else ''}")


@lru_cache(maxsize=4096)
def _integrity_cached(key, flip_rule: str) -> IntegrityResult:
    try:
        curve = probe_curve(compile_key(key, False)[0])
    except (RuntimeError, ValueError) as exc:      # e.g. an op rejecting float64 input
        return IntegrityResult(False, False, None, f"probe failed: {exc}")
    return analyse_curve(curve, flip_rule)


def checkIntegrity(genome_or_fn, flip_rule: str = "start") -> IntegrityResult:
    """Integrity check of a loss (Morgan & Hougen 2024 §3.3).

    The raw loss is evaluated on a 1,000-row two-class probe ŷ = [p, 1−p], y = [0, 1] with
    p from 1e-7 to 1−1e-7 (float64; the loss of a row is the sum over both classes). Rejected:
    non-finite values; argmin or argmax at p ∈ [0.49, 0.51]; a flat curve or more than 10 flat
    steps (``|Δ| ≤ 1e-12 + 1e-9·|value|``); more than 2 slope sign changes. Accepted with
    ``flip`` for a decreasing monotone curve and an inverted U, without for an increasing one and
    a U; a curve with two bends is flipped when it starts rising (``flip_rule="start"``, the
    reference's rule: the slope at the third step) or when it ends falling (``"end"``, deapnn
    before).

    Parameters
    ----------
    genome_or_fn : LossGraph or callable
        A :class:`~deapnn.losses.LossGraph` (results cached per active structure) or a callable
        ``f(y, ŷ)`` returning ``(N, 2)`` element-wise or ``(N,)`` per-row losses.
    flip_rule : {"start", "end"}, optional
        Orientation of a curve with two bends (default ``"start"``, see the module docstring).

    Returns
    -------
    IntegrityResult
        ``(accept, flip, fingerprint, reason)``; a genome that is invalid or a probe that raises
        gives a rejection with the reason, never an exception.

    Examples
    --------
    >>> from deapnn.losses import LossGraph
    >>> from deapnn.operators import checkIntegrity
    >>> checkIntegrity(LossGraph.from_expression("-(y * log(yhat))")).accept
    True
    >>> checkIntegrity(lambda y, yhat: (y - yhat) ** 2).reason
    'monotone'
    >>> up_down_up = lambda y, yhat: (yhat ** 3 / 3 - yhat ** 2 / 2 + 0.16 * yhat)[:, :1]
    >>> checkIntegrity(up_down_up).reason, checkIntegrity(up_down_up, flip_rule="end").reason
    ('two-bend, flipped', 'two-bend')

    References
    ----------
    Morgan & Hougen 2024, "Neural loss function evolution for large-scale image classifier
    convolutional neural networks" (arXiv 2403.08793), §3.3 (integrity check).
    """
    check_flip_rule(flip_rule)
    if isinstance(genome_or_fn, LossGraph):
        try:
            key = genome_or_fn.key()
        except GraphError as exc:
            return IntegrityResult(False, False, None, f"invalid genome: {exc}")
        return _integrity_cached(key, flip_rule)
    try:
        curve = probe_curve(genome_or_fn)
    except (RuntimeError, ValueError, TypeError) as exc:
        return IntegrityResult(False, False, None, f"probe failed: {exc}")
    return analyse_curve(curve, flip_rule)
