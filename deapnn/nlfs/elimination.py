"""Elimination protocol (Morgan & Hougen 2024 §3.6): successive halving of the best
candidates on progressively larger models / longer budgets / stronger regularisation.

Reference sizes 25 → 12 → 6 → 4: the top 25 by surrogate fitness are re-trained at stage 1 and the
best 12 kept, those at stage 2 keeping 6, those at stage 3 keeping the final 4.
"""
from __future__ import annotations

from dataclasses import replace

from ..evaluation import Evaluation, as_evaluation
from ..losses.graph import LossGraph
from .config import SurrogateConfig
from .evaluator import SurrogateEvaluator

DEFAULT_SIZES = (25, 12, 6, 4)


def default_stages(base: SurrogateConfig, n: int = 3, image: bool = True) -> list:
    """``n`` stage configs: budget ×2 per stage, a CNN from stage 2 on image data."""
    stages = []
    for i in range(n):
        stages.append(replace(base, steps=base.steps * 2 ** (i + 1),
                              model="cnn" if (image and i >= 1) else base.model,
                              prescreen_steps=0))
    return stages


def successive_halving(candidates, stages, sizes=DEFAULT_SIZES, map_fn=map, progress=None,
                       state=None, checkpoint=None, chunk=None):
    """Run the protocol.

    :param candidates: genomes (``LossGraph`` or JSON), best surrogate fitness first.
    :param stages: ``len(sizes) - 1`` :class:`SurrogateConfig` (one per halving round).
    :param state / checkpoint: resumable: ``checkpoint(state)`` receives a plain dict after every
        ``chunk`` evaluations (default: a whole round per ``map_fn`` call); passing it back as
        ``state`` skips what was done (evaluations are deterministic per genome, so the outcome is
        that of an uninterrupted run).
    :returns: ``(survivors, history)``: survivors as JSON genomes best first; ``history`` a list
        of per-round rows ``{"round", "expression", "fitness", "reason", "kept"}``.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or any(b > a for a, b in zip(sizes, sizes[1:])) or sizes[-1] < 1:
        raise ValueError(f"sizes must be >= 2 non-increasing positive counts, got {sizes}")
    if len(stages) != len(sizes) - 1:
        raise ValueError(f"{len(sizes) - 1} stages needed for sizes {sizes}, got {len(stages)}")
    if state is None:
        state = {"round": 0, "current": [c if isinstance(c, str) else c.to_json()
                                         for c in candidates][:sizes[0]],
                 "history": [], "partial": []}
    state = {k: (list(v) if isinstance(v, list) else v) for k, v in state.items()}
    if progress is not None and state["round"]:
        progress.update(state["round"])
    while state["round"] < len(stages):
        r = state["round"]
        cfg, keep, current = stages[r], sizes[r + 1], state["current"]
        evaluator = SurrogateEvaluator(cfg)
        step = len(current) if not chunk else max(1, int(chunk))
        while len(state["partial"]) < len(current):
            todo = current[len(state["partial"]):][:step]
            state["partial"] += [_row(as_evaluation(r)) for r in map_fn(evaluator, todo)]
            if checkpoint is not None and len(state["partial"]) < len(current):
                checkpoint(dict(state))
        results = state["partial"]
        order = sorted(range(len(current)), key=lambda i: -results[i][0])
        kept = set(order[:keep])
        for i in order:
            state["history"].append({"round": r + 1,
                                     "expression": LossGraph.from_json(current[i]).to_expression(),
                                     "fitness": results[i][0], "reason": results[i][1],
                                     "kept": i in kept})
        state.update(round=r + 1, current=[current[i] for i in order[:keep]], partial=[])
        if checkpoint is not None:
            checkpoint(dict(state))
        if progress is not None:
            progress.update(1)
    return list(state["current"]), list(state["history"])


def _row(evaluation: Evaluation) -> list:
    """``[fitness, reason]`` of one candidate in a round (the reason: why it scored 0, or why
    its evaluation failed)."""
    reason = evaluation.info.get("reason", evaluation.error)
    return [evaluation.fitness, reason]


def survivor_scores(history, expression) -> list:
    """The fitness of ``expression`` in every elimination round it took part in."""
    return [h["fitness"] for h in history if h["expression"] == expression]
