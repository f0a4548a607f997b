"""The final comparison of ``deapnn evomal`` (Raymond et al. 2023, TPAMI §5 "Experimental
design": meta-testing): fresh networks trained with the best learned loss and with the
baseline (MSE or CE) on the training split, scored on the *disjoint* test split over several
seeds (the reference's tabular test split overlaps its training data; ours does not).

Two protocols:

* untuned (``--no-tune``, the paper's): :func:`compare_final` / :func:`train_final` at the
  configured learning rate. Seed ``s`` gives both losses the same initial network and batch
  order, so the comparison is paired (mean difference, wins/ties/losses, paired t and Wilcoxon
  p). Test and validation are evaluated every ``final_eval_every`` steps; besides the test
  metric after the last step, the test metric at the best-validation step (early stopping,
  chosen on validation only) is reported.
* tuned (the default): :func:`tuned_phase` / :func:`compare_tuned`, every loss at its own
  learning rate chosen on validation (:mod:`deapnn.comparison`).

Every finished training is stored at once (``final_runs.json`` / ``tuned_runs.json``), so a run
killed during the comparison resumes without retraining it.
"""
from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time

from deapnn.data import cache_dataset, cached_dataset
from deapnn.evomal.config import EvoMALConfig, EvoMALRunConfig
from deapnn.evomal.evaluator import (batch_seed, build_base_model, final_recipe, split_errors,
                                     training_recipe)
from deapnn.loss_training import train_with_loss
from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.progress import no_progress
from deapnn.rundir import RunDirError, read_json_object
from deapnn.runtime import derive_seed

FINAL_FILE = "final_runs.json"


def _quiet(text: str) -> None:
    """The default ``log``: drop the line."""


def stored_runs(rundir, name: str, resuming: bool, check=None) -> dict | None:
    """The trainings a resumed run stored in ``rundir``'s ``name`` (None when not resuming or
    there are none); a file that is not a JSON object (or that ``check`` refuses with a
    ``ValueError``) is the run's error, naming the file."""
    path = rundir.file(name)
    if not resuming or not os.path.exists(path):
        return None
    try:
        data = read_json_object(path)
        return check(data) if check is not None else data
    except ValueError as exc:
        raise RunDirError(f"cannot resume {rundir.path}: {name} is {exc}") from None


def _std(values) -> float:
    """Sample standard deviation (n - 1), 0 for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def schedule_note(milestones) -> str:
    """`` (lr × 0.1 at steps …)`` for a step schedule, else empty."""
    return f" (lr × 0.1 at steps {', '.join(map(str, milestones))})" if milestones else ""


def train_final(best: dict, data, cfg: EvoMALConfig, seeds, steps: int, eval_every: int,
                device, log=_quiet, done: dict | None = None, on_run=None,
                milestones: tuple = ()) -> dict:
    """Train fresh networks with the learned loss and with the baseline on ``seeds`` (seed
    indices, each deriving the training's seed from the run seed);
    test and validation error rate / MSE every ``eval_every`` steps. Returns per-loss results and
    curves. Each run reports ``test`` (after the last step) and ``test_es`` (at the step with the
    lowest validation metric, i.e. early stopping on the validation split, ``es_step``).

    Seed ``s`` gives both losses the same initial network and the same batch order, so the
    comparison is paired. ``done`` maps a loss name to runs already finished (a resumed run:
    they are reused, not retrained); ``on_run(name, runs)`` is called after every new run.
    ``milestones``: steps at which the learning rate is multiplied by 0.1."""
    import torch.nn.functional as F
    baseline_name = "CE" if data.task == "classification" else "MSE"
    baseline = F.cross_entropy if data.task == "classification" else \
        (lambda out, y: F.mse_loss(out, y.reshape(out.shape)))
    learned = MetaLossNetwork(best.get("evaluated", best["tree"]), task=data.task,
                              nonnegative=cfg.nonnegative)
    if best.get("weights"):
        learned.set_weights(best["weights"])
    learned.requires_grad_(False)
    learned.to(device)
    done = done or {}
    results = {}
    for name, loss in (("EvoMAL", learned), (baseline_name, baseline)):
        stored = {r["seed"]: dict(r) for r in done.get(name, []) if r.get("seed") in seeds}
        runs = [stored[s] for s in seeds if s in stored]
        for r in runs:
            log(f"  {name:7s} seed {r['seed']}: test {r['test']:.4f}, early-stopped "
                f"{r['test_es']:.4f} (stored)")
        for s in [s for s in seeds if s not in stored]:
            seed = derive_seed(cfg.seed, "final", s)
            network = cfg.final_network() if hasattr(cfg, "final_network") else cfg
            model = build_base_model(network, data, seed)
            start = time.perf_counter()
            res = train_with_loss(model, loss, data,
                                  training_recipe(cfg, steps, eval_every, milestones),
                                  batch_seed=batch_seed(seed), device=device,
                                  evaluate=split_errors(data, ("test", "val"), device,
                                                        cfg.fast_path()),
                                  eval_at_start=bool(eval_every), fast=cfg.fast_path())
            curve, reason = res.curve, res.reason
            final = curve[-1][1] if curve and not reason else float("inf")
            # early stopping on validation (first minimum); a diverged run keeps its good past
            best = min(curve, key=lambda p: p[2]) if curve else None
            runs.append({"seed": s, "test": final, "curve": [[p[0], p[1]] for p in curve],
                         "val_curve": [[p[0], p[2]] for p in curve],
                         "test_es": best[1] if best else float("inf"),
                         "es_step": best[0] if best else None,
                         "reason": reason, "seconds": round(time.perf_counter() - start, 2)})
            log(f"  {name:7s} seed {s}: test {final:.4f}, early-stopped {runs[-1]['test_es']:.4f} "
                f"(step {runs[-1]['es_step']}) ({runs[-1]['seconds']:.1f} s)"
                + (f" ({reason})" if reason else ""))
            if on_run is not None:
                on_run(name, runs)
        results[name] = {"runs": runs}
        for key, prefix in (("test", ""), ("test_es", "es_")):
            finite = [r[key] for r in runs if math.isfinite(r[key])]
            results[name][prefix + "mean"] = statistics.fmean(finite) if finite else float("inf")
            results[name][prefix + "std"] = _std(finite)
    return results


def paired_comparison(results: dict, key: str = "test") -> dict | None:
    """EvoMAL − baseline per seed (lower metric is better, so a negative difference is an EvoMAL
    win): mean ± sample std of the differences, wins/ties/losses, and two-sided paired t-test and
    Wilcoxon signed-rank p-values (None when undefined) — :func:`deapnn.paired.paired_stats`
    on the seeds both losses finished."""
    from deapnn.paired import paired_stats
    names = list(results)
    if len(names) != 2:
        return None
    a = {r["seed"]: r[key] for r in results[names[0]]["runs"]}
    b = {r["seed"]: r[key] for r in results[names[1]]["runs"]}
    seeds = sorted(s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]))
    return paired_stats([a[s] for s in seeds], [b[s] for s in seeds], higher_is_better=False,
                        of=f"{names[0]} - {names[1]}")


def plot_learning_curves(results: dict, path: str, metric: str, title: str) -> str:
    from deapnn.plots import plot_curves
    series, bands = {}, {}
    for name, res in results.items():
        curves = [r["curve"] for r in res["runs"] if r["curve"] and not r["reason"]]
        if not curves:
            continue
        xs = [p[0] for p in curves[0]]
        cols = list(zip(*[[p[1] for p in c] for c in curves]))
        mean = [statistics.fmean(c) for c in cols]
        std = [statistics.pstdev(c) if len(c) > 1 else 0.0 for c in cols]
        series[name] = (xs, mean)
        bands[name] = ([m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)])
    return plot_curves(series, path, "SGD step", f"test {metric}", title, bands)


def final_summary(results: dict) -> dict:
    """The per-loss part of ``results.json`` from :func:`train_final`'s results."""
    return {k: {"mean": v["mean"], "std": v["std"],
                "test": [r["test"] for r in v["runs"]],
                "curves": [r["curve"] for r in v["runs"]],
                "es_mean": v["es_mean"], "es_std": v["es_std"],
                "test_es": [r["test_es"] for r in v["runs"]],
                "es_step": [r["es_step"] for r in v["runs"]],
                "val_curves": [r["val_curve"] for r in v["runs"]]}
            for k, v in results.items()}


def comparison_table(final: dict, metric: str, paired: dict | None = None,
                     paired_es: dict | None = None) -> str:
    """Mean ± std and per-seed test metric (``final`` as in :func:`final_summary`) after the
    last step and at the validation-selected step; the paired differences under each block."""
    def pair_line(paired):
        p = ", ".join(f"{label} p = {paired[k]:.3g}" for k, label in
                      (("t_p", "paired t"), ("wilcoxon_p", "Wilcoxon")) if paired[k] is not None)
        return (f"paired {paired['of']}: {paired['mean']:+.4f} ± {paired['std']:.4f} over "
                f"{paired['n']} seeds; EvoMAL {paired['wins']}W/{paired['ties']}T/"
                f"{paired['losses']}L" + (f"; {p}" if p else ""))

    blocks = [("test", "", "after the last step", paired),
              ("test_es", "es_", "at the best-validation step (early stopping)", paired_es)]
    lines = []
    for key, prefix, title, pair in blocks:
        lines.append(f"{'loss':8s} {'test ' + metric + ' (mean ± std)':>28s}   "
                     f"per seed   [{title}]")
        for name, res in final.items():
            per = " ".join(f"{v:.4f}" for v in res[key])
            lines.append(f"{name:8s} {res[prefix + 'mean']:>19.4f} ± {res[prefix + 'std']:.4f}   "
                         f"{per}")
        if pair:
            lines.append(pair_line(pair))
    return "\n".join(lines)


def compare_final(best: dict, data, cfg: EvoMALRunConfig, rundir, device, *,
                  resuming: bool = False, log=_quiet) -> tuple[dict, float]:
    """Train the best learned loss and the baseline on ``cfg.seeds`` seeds (:func:`train_final`);
    every finished (loss, seed) training is written to ``final_runs.json`` at once, and a
    resumed run reuses the ones made for the same best loss and settings. Returns the results
    and the seconds this invocation spent."""
    steps, milestones = cfg.steps_of_final(), cfg.milestones_of_final()
    ident = {"tree": best["evaluated"], "weights": best["weights"], "steps": steps,
             **({"milestones": list(milestones)} if milestones else {}),
             "seed": cfg.seed, "eval_every": cfg.eval_every(),
             **({"final_model": cfg.final_model} if getattr(cfg, "final_model", None) else {})}
    stored = stored_runs(rundir, FINAL_FILE, resuming)
    if stored is not None:
        if stored.get("ident") != ident:
            log(f"{FINAL_FILE} belongs to another best loss or settings: retraining")
            stored = None
    partial = {"ident": ident, "runs": dict(stored["runs"]) if stored else {}}

    def save_run(name, runs):
        partial["runs"][name] = runs
        rundir.write_json(FINAL_FILE, partial)

    start = time.perf_counter()
    log(f"\nfinal training: {steps} SGD steps{schedule_note(milestones)}, {len(cfg.seeds)} seeds; "
        f"test and validation {'error' if data.task == 'classification' else 'MSE'} every "
        f"{cfg.eval_every()} steps")
    results = train_final(best, data, cfg, cfg.seeds, steps, cfg.eval_every(), device,
                          log=log, done=partial["runs"], on_run=save_run, milestones=milestones)
    return results, time.perf_counter() - start


TUNED_FILE = "tuned_runs.json"


def comparison_loss(spec: dict, task: str, nonnegative: bool, device):
    """The loss of a tuned-comparison arm ``spec``: ``{"loss": "baseline"}`` (CE or MSE),
    ``"label_smoothing"`` (CE, ε = 0.1), ``"library"`` (``name``: ``deapnn.losses.get``) or
    ``"learned"`` (``tree`` and ``weights``: the meta-loss network, frozen)."""
    import torch.nn.functional as F
    kind = spec["loss"]
    if kind == "baseline":
        return F.cross_entropy if task == "classification" else \
            (lambda out, y: F.mse_loss(out, y.reshape(out.shape)))
    if kind == "label_smoothing":
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=0.1)
    if kind == "library":
        from deapnn.losses.library import get
        return get(spec["name"]).to(device)
    learned = MetaLossNetwork(spec["tree"], task=task, nonnegative=nonnegative)
    if spec.get("weights"):
        learned.set_weights(spec["weights"])
    learned.requires_grad_(False)
    return learned.to(device)


def tuned_job(cfg: EvoMALRunConfig, spec: dict, lr: float, seed: int, split: str) -> dict:
    """One training of the tuned comparison (:func:`deapnn.comparison.tuned_comparison`'s
    trainer): the final training of :func:`train_final` (network :meth:`final_network
    <deapnn.evomal.config.EvoMALRunConfig.final_network>`,
    :func:`~deapnn.evomal.evaluator.final_recipe` at ``lr``) with the arm's loss from ``seed``.
    ``metric``: the ``split`` error rate / MSE after the last step (∞ when training diverged)
    or, for ``spec["stop"] == "early"``, at the step with the lowest validation metric (early
    stopping). ``split="val"`` evaluates the validation split only; ``"test"`` the test and
    validation splits, and on a classification dataset the per-class test metrics of the
    trained network (issue 25: :func:`deapnn.class_metrics.class_results`'s
    ``balanced_acc``, ``worst_class_acc``, ``rare3_acc``; None when the training diverged,
    whose metric is ∞, and for ``"early"``, whose best-validation weights are not kept — no
    classification arm stops early)."""
    from deapnn.runtime import get_device, set_device
    if cfg.device:
        set_device(cfg.device)
    device = get_device()
    data = cached_dataset(cfg.dataset, cfg.seed, cfg.root, **cfg.regime())
    loss = comparison_loss(spec, data.task, cfg.nonnegative, device)
    model = build_base_model(cfg.final_network(), data, seed)
    every = cfg.eval_every()
    splits = ("val",) if split == "val" else (split, "val")
    start = time.perf_counter()
    res = train_with_loss(model, loss, data,
                          dataclasses.replace(final_recipe(cfg, every), lr=lr),
                          batch_seed=batch_seed(seed), device=device,
                          evaluate=split_errors(data, splits, device, cfg.fast_path()),
                          eval_at_start=bool(every), fast=cfg.fast_path())
    curve = res.curve
    if spec.get("stop") == "early":
        best = min(curve, key=lambda p: p[-1]) if curve else None
        metric, step = (best[1], best[0]) if best else (float("inf"), None)
    else:
        metric = curve[-1][1] if curve and not res.reason else float("inf")
        step = res.steps
    out = {"metric": metric, "step": step, "reason": res.reason,
           "seconds": round(time.perf_counter() - start, 2)}
    if split == "test" and data.task == "classification":
        from deapnn.class_metrics import SCALAR_KEYS, class_results
        measured = spec.get("stop") != "early" and math.isfinite(metric)
        out.update({k: v for k, v in class_results(data, model).items() if k in SCALAR_KEYS}
                   if measured else dict.fromkeys(SCALAR_KEYS))
    return out


def comparison_arms(best: dict, task: str, baselines=()) -> list:
    """The losses of the tuned comparison: the baseline (CE or MSE), the reference baselines
    (label-smoothed CE, ε = 0.1, for classification; MSE with early stopping on validation for
    regression), the ``baselines`` (``deapnn.losses.get`` names) and the learned loss ``best``."""
    from deapnn.comparison import Arm
    classification = task == "classification"
    arms = [Arm("CE" if classification else "MSE", {"loss": "baseline", "stop": "last"},
                "baseline")]
    arms.append(Arm("label-smoothed CE", {"loss": "label_smoothing", "stop": "last"}, "reference")
                if classification else
                Arm("MSE (early stopping)", {"loss": "baseline", "stop": "early"}, "reference"))
    arms += [Arm(name, {"loss": "library", "name": name, "stop": "last"}, "reference")
             for name in baselines]
    arms.append(Arm("EvoMAL", {"loss": "learned", "tree": best.get("evaluated", best["tree"]),
                               "weights": best.get("weights") or [], "stop": "last"}, "found"))
    return arms


def compare_tuned(best: dict, cfg: EvoMALRunConfig, task: str, *, state=None, checkpoint=None,
                  progress=no_progress, log=_quiet, map_fn=map) -> dict:
    """The tuned final comparison (:mod:`deapnn.comparison`) of :func:`comparison_arms`: lr from
    ``cfg.lr_grid`` around ``cfg.lr`` chosen on the validation split with ``cfg.tune_seeds``
    seeds, then ``cfg.seeds`` final seeds scored on test (lower is better); resumable from
    ``state`` (``checkpoint(state)`` after every training)."""
    from deapnn.comparison import Protocol, tuned_comparison
    final = cfg.final_network()
    protocol = Protocol(lr=cfg.lr, seeds=tuple(cfg.seeds), run_seed=cfg.seed,
                        metric=f"test {'error' if task == 'classification' else 'MSE'}",
                        higher_is_better=False, grid=tuple(cfg.lr_grid),
                        tune_seeds=tuple(cfg.tune_seeds),
                        extra={"model": final.model, "steps": cfg.steps_of_final()})
    hidden = final.hidden_of_model()
    ident = {**final_recipe(cfg, cfg.eval_every()).to_dict(),
             "model": final.model, "hidden": list(hidden) if hidden else None,
             "dataset": cfg.dataset, "seed": cfg.seed, "nonnegative": cfg.nonnegative}
    ident.pop("lr")
    if state and isinstance(state.get("ident"), dict) and state["ident"].get("hidden") is None:
        # written before the ident named the resolved width: None meant this run's default,
        # which its config.json states resolved
        state = {**state, "ident": {**state["ident"], "hidden": ident["hidden"]}}
    return tuned_comparison(comparison_arms(best, task, cfg.baselines), protocol, tuned_job, cfg,
                            map_fn=map_fn, state=state, checkpoint=checkpoint,
                            progress=progress, ident=ident, log=log)


def scale_reports(rows: list, task: str, num_classes: int, nonnegative: bool) -> dict:
    """The scale report (:func:`deapnn.losses.scale.scale_report`) of each best learned loss
    with a finite fitness: ``EvoMAL`` (the best), ``EvoMAL #2``, …"""
    from deapnn.losses.scale import scale_report
    out = {}
    for k, row in enumerate(rows, 1):
        if not math.isfinite(row["fitness"]):
            continue
        loss = comparison_loss({"loss": "learned", "tree": row.get("evaluated", row["tree"]),
                                "weights": row.get("weights") or []}, task, nonnegative, "cpu")
        out["EvoMAL" if k == 1 else f"EvoMAL #{k}"] = scale_report(loss, num_classes, task)
    return out


def tuned_phase(best: dict, data, cfg: EvoMALRunConfig, rundir, *, progress=no_progress,
                resuming: bool = False, log=_quiet) -> tuple[dict, float]:
    """:func:`compare_tuned` of the run: every finished training is written to
    ``tuned_runs.json`` at once and reused by a resumed run. Returns the comparison and the
    seconds this invocation spent."""
    # the trainings reuse the loaded data
    cache_dataset(data, cfg.dataset, cfg.seed, cfg.root, **cfg.regime())
    from deapnn.comparison import check_state
    stored = stored_runs(rundir, TUNED_FILE, resuming, check_state)
    start = time.perf_counter()
    log(f"\ntuned final comparison: {cfg.steps_of_final()} SGD steps"
        f"{schedule_note(cfg.milestones_of_final())}; lr grid "
        f"{len(cfg.lr_grid)} × {len(cfg.tune_seeds)} tuning seed(s) on validation, then "
        f"{len(cfg.seeds)} "
        f"final seeds on test")
    tuned = compare_tuned(best, cfg, data.task, state=stored, progress=progress, log=log,
                          checkpoint=lambda s: rundir.write_json(TUNED_FILE, s))
    return tuned, time.perf_counter() - start


__all__ = ["FINAL_FILE", "TUNED_FILE", "stored_runs", "train_final", "compare_final",
           "paired_comparison", "final_summary", "comparison_table", "plot_learning_curves",
           "compare_tuned", "tuned_job", "tuned_phase", "comparison_arms", "comparison_loss",
           "scale_reports"]
