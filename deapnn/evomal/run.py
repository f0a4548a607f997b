"""The ``deapnn evomal`` run: search, checkpoint/resume, best formulas, final comparison.

Raymond et al. 2023 (TPAMI §5 "Experimental design"): loss search on the training/validation
splits, then meta-testing — fresh networks trained with the best learned loss and with the
baseline (MSE or CE) on the training split, reported on the *disjoint* test split over several
seeds (the reference's tabular test split overlaps its training data; ours does not).

Seed ``s`` of the final comparison gives both losses the same initial network and batch order,
so the comparison is paired (mean difference, wins/ties/losses, paired t and Wilcoxon p). Test
and validation are evaluated every ``final_eval_every`` steps; besides the test metric after
the last step, the test metric at the best-validation step (early stopping, chosen on validation
only) is reported. Every finished (loss, seed) training is stored in ``final_runs.json``, so a
run killed during the final comparison resumes without retraining them.

:func:`run_evomal` is the runner; its phases are :func:`search` (the GP search with a checkpoint
after every generation), :func:`best_formulas`, :func:`compare_final` (the final trainings,
resumable) and :func:`write_outputs`. Nothing here prints: progress lines go to ``log``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
from dataclasses import dataclass

from deap import tools

from deapnn.algorithms.evomal import eaEvoMAL
from deapnn.checkpoint import StateError, restoring
from deapnn.evomal.config import EvoMALConfig, EvoMALRunConfig
from deapnn.data import cache_dataset
from deapnn.evomal.evaluator import (batch_seed, build_base_model, guarded_evaluator,
                                     split_errors, training_recipe)
from deapnn.loss_training import train_with_loss
from deapnn.evomal.toolbox import fitness_stats, make_toolbox
from deapnn.losses.archive import LossArchive, to_sympy
from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.progress import no_progress
from deapnn.runtime import derive_seed

CKPT_KEY = "evomal"
FINAL_FILE = "final_runs.json"
PLOT_FILE = "learning_curve.png"


def _quiet(text: str) -> None:
    """The default ``log``: drop the line."""


@dataclass
class SearchResult:
    """What :func:`search` returns: the final population, logbook, hall of fame (5 distinct
    best), the archive of every evaluated tree, and the search seconds accumulated over every
    invocation of the run (time lost to a kill not counted)."""
    population: list
    logbook: tools.Logbook
    halloffame: tools.HallOfFame
    archive: LossArchive
    seconds: float


@dataclass
class EvoMALSummary:
    """The outcome of a run (``result.json`` is :meth:`to_dict`). ``final``, ``paired`` and
    ``paired_early_stopped`` are None when no candidate passed the rejection protocol (no
    final comparison)."""
    dataset: str
    task: str
    best: list
    archive_size: int
    rejected: int
    evaluations: int
    archive_hits: int
    timing: dict
    final: dict | None = None
    paired: dict | None = None
    paired_early_stopped: dict | None = None
    tuned: dict | None = None      # the tuned comparison (deapnn.comparison; default protocol)
    scale: dict | None = None      # scale report of the best losses (deapnn.losses.scale)

    @property
    def metric(self) -> str:
        return "error" if self.task == "classification" else "MSE"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if self.final is None:
            for key in ("final", "paired", "paired_early_stopped"):
                d.pop(key)
        for key in ("tuned", "scale"):
            if d[key] is None:
                d.pop(key)
        return d


def best_formulas(halloffame, archive: LossArchive, k: int = 5) -> list[dict]:
    """The ``k`` best distinct trees with fitness, learned-weight expression and sympy form."""
    rows = []
    for ind in list(halloffame)[:k]:
        record = archive.entries.get(archive.key(ind), {})
        try:
            simple = str(to_sympy(ind))
        except Exception as exc:  # sympy trouble never stops a report
            simple = f"<sympy: {type(exc).__name__}>"
        # the archive may have evaluated an equivalent tree: weights belong to that one
        rows.append({"tree": str(ind), "fitness": float(ind.fitness.values[0]),
                     "evaluated": record.get("tree", str(ind)),
                     "learned": record.get("expression", str(ind)), "sympy": simple,
                     "weights": record.get("weights", []),
                     "reason": record.get("reason") or record.get("error")})
    return rows


def _std(values) -> float:
    """Sample standard deviation (n - 1), 0 for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def train_final(best: dict, data, cfg: EvoMALConfig, seeds: int, steps: int, eval_every: int,
                device, log=_quiet, done: dict | None = None, on_run=None) -> dict:
    """Train fresh networks with the learned loss and with the baseline on ``seeds`` seeds;
    test and validation error rate / MSE every ``eval_every`` steps. Returns per-loss results and
    curves. Each run reports ``test`` (after the last step) and ``test_es`` (at the step with the
    lowest validation metric, i.e. early stopping on the validation split, ``es_step``).

    Seed ``s`` gives both losses the same initial network and the same batch order, so the
    comparison is paired. ``done`` maps a loss name to runs already finished (a resumed run:
    they are reused, not retrained); ``on_run(name, runs)`` is called after every new run."""
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
        runs = [dict(r) for r in done.get(name, [])][:seeds]
        for r in runs:
            log(f"  {name:7s} seed {r['seed']}: test {r['test']:.4f}, early-stopped "
                f"{r['test_es']:.4f} (stored)")
        for s in range(len(runs), seeds):
            seed = derive_seed(cfg.seed, "final", s)
            network = cfg.final_network() if hasattr(cfg, "final_network") else cfg
            model = build_base_model(network, data, seed)
            start = time.perf_counter()
            res = train_with_loss(model, loss, data, training_recipe(cfg, steps, eval_every),
                                  batch_seed=batch_seed(seed), device=device,
                                  evaluate=split_errors(data, ("test", "val"), device),
                                  eval_at_start=bool(eval_every))
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
    Wilcoxon signed-rank p-values (None when undefined) — :func:`deapnn.comparison.paired_stats`
    on the seeds both losses finished."""
    from deapnn.comparison import paired_stats
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
    """The per-loss part of ``result.json`` from :func:`train_final`'s results."""
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
        lines.append(f"{'loss':8s} {'test ' + metric + ' (mean ± std)':>28s}   per seed   [{title}]")
        for name, res in final.items():
            per = " ".join(f"{v:.4f}" for v in res[key])
            lines.append(f"{name:8s} {res[prefix + 'mean']:>19.4f} ± {res[prefix + 'std']:.4f}   "
                         f"{per}")
        if pair:
            lines.append(pair_line(pair))
    return "\n".join(lines)


def search_text(summary: EvoMALSummary, seconds: float) -> str:
    """The search's summary lines: counts, then the best formulas (learned weights, sympy)."""
    lines = [f"\nsearch: {seconds:.0f} s; {summary.evaluations} evaluations, "
             f"{summary.archive_hits} archive hits (equivalent trees not re-evaluated)",
             f"best learned losses (validation {summary.metric}; archive: {summary.archive_size} "
             f"distinct, {summary.rejected} rejected/failed):"]
    for i, row in enumerate(summary.best, 1):
        same = "" if row["evaluated"] == row["tree"] else f" (equivalent to {row['evaluated']})"
        lines.append(f"{i}. {row['fitness']:.4f}  {row['tree']}{same}")
        if math.isfinite(row["fitness"]):
            lines.append(f"     learned: {row['learned']}\n     sympy:   {row['sympy']}")
        else:
            lines.append(f"     {row['reason'] or 'rejected'}")
    return "\n".join(lines)


def generation_line(record: dict, generations: int, seconds: float) -> str:
    """One logbook record as the run's per-generation log line: generation ``gen + 1`` of
    ``generations`` (the logbook's ``gen`` is DEAP's, 0 = the initial population)."""
    best = record.get("min")
    return (f"generation {record['gen'] + 1:>3}/{generations}: {record['nevals']:>3} evaluated, "
            f"{record['cached']:>3} archive hits, {record.get('rejected', 0):>3} rejected in "
            f"population; best {best:.4g}, median {record.get('median', float('nan')):.4g}"
            + (f"; {record['failed']} evaluations failed (reasons in logbook.csv)"
               if record.get("failed") else "") + f" [{seconds:.0f} s]")


def search(cfg: EvoMALRunConfig, data, rundir, resume_state: dict | None = None, *,
           map_fn=None, progress=no_progress, log=_quiet) -> SearchResult:
    """The GP search (§4, Algorithm 1): ``cfg.generations`` populations, the initial one
    included, with a checkpoint (``rundir``'s ``checkpoint.pt`` and ``logbook.csv``) after every
    generation; ``resume_state`` (the stored search state) continues it exactly."""
    evaluator = guarded_evaluator(cfg.evaluation())      # failure (timeout, OOM...) is data
    cache_dataset(data, cfg.dataset, cfg.seed, cfg.root)  # in-process evaluations reuse it
    toolbox = make_toolbox(evaluator, tournsize=cfg.tournament, max_height=cfg.max_height,
                           map_fn=map_fn)
    population = toolbox.population(cfg.population) if resume_state is None else []
    archive = LossArchive(data.task, data.num_classes)
    hof = tools.HallOfFame(5, similar=lambda a, b: archive.key(a) == archive.key(b))
    bar = progress(cfg.generations, "evomal generations", unit="gen")
    bar.update(resume_state["generation"] + 1 if resume_state else 0)
    # search seconds so far (accumulated across resumes; not counted: time lost to a kill)
    prior = float(resume_state.get("seconds", 0.0)) if resume_state else 0.0
    start = time.perf_counter()
    elapsed = [prior]

    def checkpoint(state):
        elapsed[0] = prior + time.perf_counter() - start
        state["seconds"] = elapsed[0]
        rundir.save_checkpoint({CKPT_KEY: state})
        rundir.write_logbook(state["logbook"])
        bar.update(1)
        last = state["logbook"][-1]
        best = last.get("min")
        bar.set_postfix(best=f"{best:.4g}" if best is not None else "-")
        log(generation_line(last, cfg.generations, elapsed[0]))   # in --quiet too: the run's log

    population, logbook = eaEvoMAL(population, toolbox, cfg.ngen(), cxpb=cfg.cxpb,
                                   mutpb=cfg.mutpb, elitism=cfg.elitism, stats=fitness_stats(),
                                   halloffame=hof, archive=archive, checkpoint=checkpoint,
                                   resume_state=resume_state)
    bar.close()
    if resume_state is not None and resume_state["generation"] >= cfg.ngen():
        elapsed[0] = prior
    return SearchResult(population, logbook, hof, archive, elapsed[0])


def compare_final(best: dict, data, cfg: EvoMALRunConfig, rundir, device, *,
                  resuming: bool = False, log=_quiet) -> tuple[dict, float]:
    """Train the best learned loss and the baseline on ``cfg.seeds`` seeds (:func:`train_final`);
    every finished (loss, seed) training is written to ``final_runs.json`` at once, and a
    resumed run reuses the ones made for the same best loss and settings. Returns the results
    and the seconds this invocation spent."""
    ident = {"tree": best["evaluated"], "weights": best["weights"], "steps": cfg.final_steps,
             "seed": cfg.seed, "eval_every": cfg.eval_every(),
             **({"final_model": cfg.final_model} if getattr(cfg, "final_model", None) else {})}
    stored = None
    if resuming and os.path.exists(rundir.file(FINAL_FILE)):
        with open(rundir.file(FINAL_FILE), encoding="utf-8") as fh:
            stored = json.load(fh)
        if stored.get("ident") != ident:
            log(f"{FINAL_FILE} belongs to another best loss or settings: retraining")
            stored = None
    partial = {"ident": ident, "runs": dict(stored["runs"]) if stored else {}}

    def save_run(name, runs):
        partial["runs"][name] = runs
        rundir.write_json(FINAL_FILE, partial)

    start = time.perf_counter()
    log(f"\nfinal training: {cfg.final_steps} SGD steps, {cfg.seeds} seeds; test and "
        f"validation {'error' if data.task == 'classification' else 'MSE'} every "
        f"{cfg.eval_every()} steps")
    results = train_final(best, data, cfg, cfg.seeds, cfg.final_steps, cfg.eval_every(), device,
                          log=log, done=partial["runs"], on_run=save_run)
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
    <deapnn.evomal.config.EvoMALRunConfig.final_network>`, :func:`training_recipe` at ``lr``)
    with the arm's loss from ``seed``. ``metric``: the ``split`` error rate / MSE after the last
    step (∞ when training diverged) or, for ``spec["stop"] == "early"``, at the step with the
    lowest validation metric (early stopping). ``split="val"`` evaluates the validation split
    only; ``"test"`` the test and validation splits."""
    from deapnn.data import cached_dataset
    from deapnn.runtime import get_device, set_device
    if cfg.device:
        set_device(cfg.device)
    device = get_device()
    data = cached_dataset(cfg.dataset, cfg.seed)
    loss = comparison_loss(spec, data.task, cfg.nonnegative, device)
    model = build_base_model(cfg.final_network(), data, seed)
    every = cfg.eval_every()
    splits = ("val",) if split == "val" else (split, "val")
    start = time.perf_counter()
    res = train_with_loss(model, loss, data,
                          dataclasses.replace(training_recipe(cfg, cfg.final_steps, every), lr=lr),
                          batch_seed=batch_seed(seed), device=device,
                          evaluate=split_errors(data, splits, device),
                          eval_at_start=bool(every))
    curve = res.curve
    if spec.get("stop") == "early":
        best = min(curve, key=lambda p: p[-1]) if curve else None
        metric, step = (best[1], best[0]) if best else (float("inf"), None)
    else:
        metric = curve[-1][1] if curve and not res.reason else float("inf")
        step = res.steps
    return {"metric": metric, "step": step, "reason": res.reason,
            "seconds": round(time.perf_counter() - start, 2)}


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
    protocol = Protocol(lr=cfg.lr, seeds=cfg.seeds, run_seed=cfg.seed,
                        metric=f"test {'error' if task == 'classification' else 'MSE'}",
                        higher_is_better=False, grid=tuple(cfg.lr_grid),
                        tune_seeds=cfg.tune_seeds,
                        extra={"model": final.model, "steps": cfg.final_steps})
    ident = {**training_recipe(cfg, cfg.final_steps, cfg.eval_every()).to_dict(),
             "model": final.model, "hidden": list(final.hidden) if final.hidden else None,
             "dataset": cfg.dataset, "seed": cfg.seed, "nonnegative": cfg.nonnegative}
    ident.pop("lr")
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
    from deapnn.data import cache_dataset
    cache_dataset(data, cfg.dataset, cfg.seed)          # the trainings reuse the loaded data
    stored = None
    if resuming and os.path.exists(rundir.file(TUNED_FILE)):
        with open(rundir.file(TUNED_FILE), encoding="utf-8") as fh:
            stored = json.load(fh)
    start = time.perf_counter()
    log(f"\ntuned final comparison: {cfg.final_steps} SGD steps; lr grid "
        f"{len(cfg.lr_grid)} × {cfg.tune_seeds} tuning seed(s) on validation, then {cfg.seeds} "
        f"final seeds on test")
    tuned = compare_tuned(best, cfg, data.task, state=stored, progress=progress, log=log,
                          checkpoint=lambda s: rundir.write_json(TUNED_FILE, s))
    return tuned, time.perf_counter() - start


def write_outputs(rundir, summary: EvoMALSummary, results: dict | None = None) -> list[str]:
    """``learning_curve.png`` (when there was a final comparison) and ``result.json``; returns
    the paths written."""
    written = []
    if results is not None:
        written.append(plot_learning_curves(results, rundir.file(PLOT_FILE), summary.metric,
                                            f"EvoMAL vs baseline on {summary.dataset}"))
    written.append(rundir.write_json("result.json", summary.to_dict()))
    return written


def run_evomal(cfg: EvoMALRunConfig, rundir, *, map_fn=None, progress=no_progress,
               log=None) -> EvoMALSummary:
    """Search, report the best formulas, compare the best learned loss with the baseline.

    ``rundir`` (a :class:`deapnn.rundir.RunDir`) holding a checkpoint is resumed: the search
    continues after its last generation and finished final trainings are reused, so the result
    is the one of an uninterrupted run. ``map_fn`` evaluates a generation (default: SCOOP when
    running under it, else ``map``); ``progress(total, desc, unit=...)`` makes the progress
    bar; ``log(text)`` receives the run's progress lines (default: dropped)."""
    from deapnn.data import load_dataset
    from deapnn.runtime import get_device, seed_everything, set_device
    log = log or _quiet
    cfg.validate()
    if cfg.device:
        set_device(cfg.device)
    seed_everything(cfg.seed)
    data = load_dataset(cfg.dataset, root=cfg.root, download=cfg.download, seed=cfg.seed)
    stored = rundir.load_checkpoint()
    with restoring(rundir.file(rundir.CHECKPOINT)):
        resume_state = stored.get(CKPT_KEY) if stored else None
        if resume_state is not None:
            int(resume_state["generation"]), float(resume_state.get("seconds", 0.0))
    if resume_state is not None:
        log(f"resuming {rundir.path} after generation {resume_state['generation']}")
    try:
        found = search(cfg, data, rundir, resume_state, map_fn=map_fn, progress=progress,
                       log=log)
    except StateError as exc:       # raised by the loop's restoring: name the checkpoint
        raise exc.at(rundir.file(rundir.CHECKPOINT)) from None
    rows = best_formulas(found.halloffame, found.archive)
    summary = EvoMALSummary(dataset=cfg.dataset, task=data.task, best=rows,
                            archive_size=len(found.archive), rejected=found.archive.rejected(),
                            evaluations=found.archive.misses, archive_hits=found.archive.hits,
                            timing={"search_seconds": round(found.seconds, 1)})
    log(search_text(summary, found.seconds))
    if not rows or not math.isfinite(rows[0]["fitness"]):
        write_outputs(rundir, summary)
        return summary
    summary.scale = scale_reports(rows, data.task, data.num_classes, cfg.nonnegative)
    if cfg.tune:
        summary.tuned, seconds = tuned_phase(rows[0], data, cfg, rundir, progress=progress,
                                             resuming=resume_state is not None, log=log)
        summary.timing["final_seconds_this_invocation"] = round(seconds, 1)
        write_outputs(rundir, summary)
        return summary
    results, seconds = compare_final(rows[0], data, cfg, rundir, get_device(),
                                     resuming=resume_state is not None, log=log)
    summary.timing["final_seconds"] = round(sum(r.get("seconds", 0.0) for res in results.values()
                                                for r in res["runs"]), 1)
    summary.timing["final_seconds_this_invocation"] = round(seconds, 1)
    summary.final = final_summary(results)
    summary.paired = paired_comparison(results)
    summary.paired_early_stopped = paired_comparison(results, "test_es")
    write_outputs(rundir, summary, results)
    return summary


__all__ = ["EvoMALSummary", "SearchResult", "run_evomal", "search", "best_formulas",
           "compare_final", "train_final", "write_outputs", "paired_comparison",
           "comparison_table", "search_text", "generation_line", "final_summary",
           "compare_tuned", "tuned_job", "tuned_phase", "comparison_arms", "comparison_loss",
           "scale_reports", "TUNED_FILE"]
