"""Elimination protocol (Morgan & Hougen 2024 §3.6; SPEC §3): successive halving of the best
candidates on progressively larger models / longer budgets / stronger regularisation.

Reference sizes 25 → 12 → 6 → 4: the top 25 by surrogate fitness are re-trained at stage 1 and the
best 12 kept, those at stage 2 keeping 6, those at stage 3 keeping the final 4.
"""
from __future__ import annotations

from dataclasses import replace

from ..losses.graph import LossGraph
from .evaluator import SurrogateConfig, SurrogateEvaluator

DEFAULT_SIZES = (25, 12, 6, 4)


def default_stages(base: SurrogateConfig, n: int = 3, image: bool = True) -> list:
    """``n`` stage configs: budget ×2 per stage, a CNN from stage 2 on image data."""
    stages = []
    for i in range(n):
        stages.append(replace(base, steps=base.steps * 2 ** (i + 1),
                              model="cnn" if (image and i >= 1) else base.model,
                              prescreen_steps=0))
    return stages


def successive_halving(candidates, stages, sizes=DEFAULT_SIZES, map_fn=map, progress=None):
    """Run the protocol.

    :param candidates: genomes (``LossGraph`` or JSON), best surrogate fitness first.
    :param stages: ``len(sizes) - 1`` :class:`SurrogateConfig` (one per halving round).
    :returns: ``(survivors, history)``: survivors as JSON genomes best first; ``history`` a list
        of per-round rows ``{"round", "expression", "fitness", "reason", "kept"}``.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or any(b > a for a, b in zip(sizes, sizes[1:])) or sizes[-1] < 1:
        raise ValueError(f"sizes must be >= 2 non-increasing positive counts, got {sizes}")
    if len(stages) != len(sizes) - 1:
        raise ValueError(f"{len(sizes) - 1} stages needed for sizes {sizes}, got {len(stages)}")
    current = [c if isinstance(c, str) else c.to_json() for c in candidates][:sizes[0]]
    history = []
    for r, (cfg, keep) in enumerate(zip(stages, sizes[1:])):
        results = list(map_fn(SurrogateEvaluator(cfg), current))
        order = sorted(range(len(current)), key=lambda i: -results[i][0][0])
        kept = set(order[:keep])
        for i in order:
            history.append({"round": r + 1, "expression": LossGraph.from_json(current[i]).to_expression(),
                            "fitness": results[i][0][0], "reason": results[i][1].get("reason"),
                            "kept": i in kept})
        current = [current[i] for i in order[:keep]]
        if progress is not None:
            progress.update(1)
    return current, history
