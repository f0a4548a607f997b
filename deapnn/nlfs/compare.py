"""The final comparison of ``deapnn nlfs`` (Morgan & Hougen 2024 §4): the found losses against
cross-entropy on the test split, over several paired seeds.

By default tuned (:func:`compare_tuned`, :mod:`deapnn.comparison`): every loss — CE,
label-smoothed CE, the ``--baselines`` and the found losses — gets its own learning rate, chosen
on the validation split. ``tune=False`` (``--no-tune``) keeps one learning rate for all
(:func:`compare_final`). Both train with :func:`final_config`: the surrogate's recipe for
``final_steps`` steps of ``final_model``, resumable training by training.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, replace

from ..losses.graph import LossGraph
from ..progress import no_progress
from ..runtime import derive_seed
from .config import NLFSConfig, SurrogateConfig
from .evaluator import surrogate_training


def loss_of(spec: str):
    """The loss a comparison arm names: a library name (``deapnn.losses.get``) or a loss-graph
    genome as JSON."""
    if spec.startswith("{"):
        return LossGraph.from_json(spec).compile()
    from ..losses.library import get
    return get(spec)


def _plain_result(res: dict) -> dict:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in res.items()}


def _final_job(job):
    """One final-comparison training: ``(loss spec, SurrogateConfig, train seed)`` → result."""
    spec, cfg, seed = job
    return surrogate_training(loss_of(spec), cfg, seed, test=True)


def final_config(cfg: NLFSConfig) -> SurrogateConfig:
    """The training of the final comparison: ``final_steps`` steps of ``final_model``, no
    pre-screen, evaluated 10 times."""
    return SurrogateConfig(**{**asdict(cfg.surrogate()), "steps": cfg.final_steps,
                              "model": cfg.final_model or cfg.model, "prescreen_steps": 0,
                              "eval_every": max(1, cfg.final_steps // 10)})


def compare_final(cfg: NLFSConfig, found: list, map_fn, *, state=None, checkpoint=None):
    """Test accuracy of cross-entropy and of the ``found`` losses (``(name, genome JSON)``)
    over ``cfg.seeds`` seeds, ``cfg.batch`` trainings per ``map_fn`` call; ``checkpoint(state)``
    after each call, and a ``state`` stored so skips the seeds already trained. Returns
    ``(table, paired)``: a row per loss (mean and std over its finite test accuracies: a failed
    training's is NaN), and the found − CE differences of the seeds both finished when one loss
    was found (else None)."""
    arms = [("cross-entropy", "ce")] + list(found)
    final = final_config(cfg)
    jobs = [(spec, final, derive_seed(cfg.seed, "final", s)) for _, spec in arms
            for s in cfg.seeds]
    keys = [[spec, seed] for spec, _, seed in jobs]
    results = list(state["results"]) if state and state.get("jobs") == keys else []
    step = max(1, cfg.batch)
    while len(results) < len(jobs):
        results += [_plain_result(r) for r in map_fn(_final_job, jobs[len(results):][:step])]
        if checkpoint is not None:
            checkpoint({"jobs": keys, "results": list(results)})
    table = []
    for a, (label, _) in enumerate(arms):
        n = len(cfg.seeds)
        accs = [r["test_acc"] for r in results[a * n:(a + 1) * n]]
        done = [v for v in accs if math.isfinite(v)]
        sd = statistics.stdev(done) if len(done) > 1 else 0.0
        table.append({"loss": label, "mean": statistics.mean(done) if done else math.nan,
                      "std": sd, "test": accs})
    paired = None
    if len(table) == 2:
        diffs = [b - a for a, b in zip(table[0]["test"], table[1]["test"])
                 if math.isfinite(a) and math.isfinite(b)]
        paired = {"diff": diffs, "mean_diff": statistics.mean(diffs) if diffs else math.nan,
                  "wins": sum(d > 0 for d in diffs), "ties": sum(d == 0 for d in diffs),
                  "losses": sum(d < 0 for d in diffs)}
    return table, paired


def tuned_job(final: SurrogateConfig, spec: str, lr: float, seed: int, split: str) -> dict:
    """One training of the tuned comparison (:func:`deapnn.comparison.tuned_comparison`'s
    trainer): the final training (:func:`final_config`) of loss ``spec`` at learning rate ``lr``
    from ``seed``; ``metric`` is the best validation accuracy (``split="val"``; the test split
    is not evaluated) or the test accuracy of the best-validation weights (``"test"``, with the
    per-class test metrics of the same weights, issue 25: :func:`surrogate_training`)."""
    res = surrogate_training(loss_of(spec), replace(final, lr=lr), seed, test=split == "test")
    return {**res, "metric": res["test_acc"] if split == "test" else res["val_acc"]}


def comparison_arms(baselines, found: list) -> list:
    """The losses of the tuned comparison: cross-entropy (the baseline), label-smoothed CE
    (ε = 0.1), the ``baselines`` (``deapnn.losses.get`` names) and the ``found`` losses
    (``(name, genome JSON)``)."""
    from ..comparison import Arm
    return ([Arm("cross-entropy", "ce", "baseline"),
             Arm("label-smoothed CE", "label_smoothing", "reference")]
            + [Arm(name, name, "reference") for name in baselines]
            + [Arm(name, spec, "found") for name, spec in found])


def compare_tuned(cfg: NLFSConfig, found: list, map_fn, *, state=None, checkpoint=None,
                  progress=no_progress, log=None) -> dict:
    """The tuned final comparison (:mod:`deapnn.comparison`) of CE, label-smoothed CE,
    ``cfg.baselines`` and the ``found`` losses (``(name, genome JSON)``) on the final training
    (:func:`final_config`, ``final_model`` included): lr from ``cfg.lr_grid`` around the
    surrogate's lr chosen on validation with ``cfg.tune_seeds`` seeds, then ``cfg.seeds`` final
    seeds scored on test; ``cfg.batch`` trainings per ``map_fn`` call, resumable from
    ``state``."""
    from ..comparison import Protocol, tuned_comparison
    final = final_config(cfg)
    protocol = Protocol(lr=final.lr, seeds=tuple(cfg.seeds), run_seed=cfg.seed,
                        metric="test accuracy", higher_is_better=True, grid=tuple(cfg.lr_grid),
                        tune_seeds=tuple(cfg.tune_seeds),
                        extra={"model": final.model, "steps": final.steps})
    return tuned_comparison(comparison_arms(cfg.baselines, found), protocol, tuned_job, final,
                            map_fn=map_fn, state=state, checkpoint=checkpoint, progress=progress,
                            chunk=max(1, cfg.batch), ident=_ident(final), log=log)


def _ident(final: SurrogateConfig) -> dict:
    """The trainings' identity for resuming: the final training without ``diverged_fitness``,
    which changes no metric compared (a diverged training's best-validation accuracy and
    weights are the same either way), so a run from before that setting resumes its results;
    nor the fast-path settings, which (as ``--device``) say how the arithmetic is done, not
    what is trained (:mod:`deapnn.fastpath`)."""
    from ..fastpath import FAST_PATH_FIELDS
    return {k: v for k, v in final.to_dict().items()
            if k != "diverged_fitness" and k not in FAST_PATH_FIELDS}


def scale_reports(found: list, num_classes: int) -> dict:
    """The scale report (:func:`deapnn.losses.scale.scale_report`) of each found loss
    ``(name, genome JSON)`` on random outputs with the task's ``num_classes`` classes."""
    from ..losses.scale import scale_report
    return {name: scale_report(LossGraph.from_json(spec).compile(), num_classes)
            for name, spec in found}


__all__ = ["loss_of", "final_config", "compare_final", "compare_tuned", "tuned_job",
           "comparison_arms", "scale_reports"]
