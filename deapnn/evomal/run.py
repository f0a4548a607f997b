"""The ``deapnn evomal`` run: search, checkpoint/resume, best formulas, final comparison.

Raymond et al. 2023 (TPAMI §5 "Experimental design"): loss search on the training/validation
splits, then meta-testing — fresh networks trained with the best learned loss and with the
baseline (MSE or CE) on the training split, reported on the *disjoint* test split over several
seeds (the reference's tabular test split overlaps its training data; ours does not).

Seed ``s`` of the final comparison gives both losses the same initial network and batch order,
so the comparison is paired (mean difference, wins/ties/losses, paired t and Wilcoxon p). Test
and validation are evaluated every ``--final-eval-every`` steps; besides the test metric after
the last step, the test metric at the best-validation step (early stopping, chosen on validation
only) is reported. Every finished (loss, seed) training is stored in ``final_runs.json``, so a
run killed during the final comparison resumes without retraining them.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time

from deap import tools

from deapnn.algorithms.evomal import eaEvoMAL
from deapnn.evomal.evaluator import (EvoMALConfig, _DATA_CACHE, build_base_model,
                                     guarded_evaluator, train_with_loss)
from deapnn.evomal.toolbox import fitness_stats, make_toolbox
from deapnn.losses.archive import LossArchive, to_sympy
from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.runtime import derive_seed

CKPT_KEY = "evomal"


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
                     "weights": record.get("weights", []), "reason": record.get("reason")})
    return rows


FINAL_FILE = "final_runs.json"


def _std(values) -> float:
    """Sample standard deviation (n - 1), 0 for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def final_comparison(best: dict, data, cfg: EvoMALConfig, seeds: int, steps: int,
                     eval_every: int, device, log=print, done: dict | None = None,
                     on_run=None) -> dict:
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
            model = build_base_model(cfg, data, seed)
            start = time.perf_counter()
            curve, reason = train_with_loss(model, loss, data, cfg, steps, seed, device,
                                            eval_every=eval_every, eval_split=("test", "val"))
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
    Wilcoxon signed-rank p-values (None when undefined)."""
    names = list(results)
    if len(names) != 2:
        return None
    a = {r["seed"]: r[key] for r in results[names[0]]["runs"]}
    b = {r["seed"]: r[key] for r in results[names[1]]["runs"]}
    seeds = sorted(s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]))
    if not seeds:
        return None
    d = [a[s] - b[s] for s in seeds]
    out = {"of": f"{names[0]} - {names[1]}", "n": len(d), "diff": d,
           "mean": statistics.fmean(d), "std": _std(d),
           "wins": sum(x < 0 for x in d), "ties": sum(x == 0 for x in d),
           "losses": sum(x > 0 for x in d), "t_p": None, "wilcoxon_p": None}
    try:
        from scipy import stats
        if len(d) > 1 and _std(d) > 0:
            out["t_p"] = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
        if any(x != 0 for x in d):
            out["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
    except Exception:  # scipy missing or a degenerate sample: report without p-values
        pass
    return out


def comparison_table(results: dict, metric: str, paired: dict | None = None,
                     paired_es: dict | None = None) -> str:
    """Mean ± std and per-seed test metric after the last step and, when the runs carry it, at
    the validation-selected step; the paired differences under each block."""
    def pair_line(paired):
        p = ", ".join(f"{label} p = {paired[k]:.3g}" for k, label in
                      (("t_p", "paired t"), ("wilcoxon_p", "Wilcoxon")) if paired[k] is not None)
        return (f"paired {paired['of']}: {paired['mean']:+.4f} ± {paired['std']:.4f} over "
                f"{paired['n']} seeds; EvoMAL {paired['wins']}W/{paired['ties']}T/"
                f"{paired['losses']}L" + (f"; {p}" if p else ""))

    blocks = [("test", "", "after the last step", paired)]
    if all("test_es" in r for res in results.values() for r in res["runs"]):
        blocks.append(("test_es", "es_", "at the best-validation step (early stopping)", paired_es))
    lines = []
    for key, prefix, title, pair in blocks:
        lines.append(f"{'loss':8s} {'test ' + metric + ' (mean ± std)':>28s}   per seed   [{title}]")
        for name, res in results.items():
            per = " ".join(f"{r[key]:.4f}" for r in res["runs"])
            lines.append(f"{name:8s} {res[prefix + 'mean']:>19.4f} ± {res[prefix + 'std']:.4f}   "
                         f"{per}")
        if pair:
            lines.append(pair_line(pair))
    return "\n".join(lines)


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


def run_search(args, run_dir, data, cfg: EvoMALConfig, resume_state=None, log=print):
    """The GP search with per-generation checkpoints; returns (population, logbook, hof, archive,
    search seconds accumulated over every invocation of this run)."""
    from deapnn.commands.common import progress
    evaluator = guarded_evaluator(cfg)          # failure (timeout, OOM...) is data
    _DATA_CACHE[(cfg.dataset, cfg.seed)] = data          # in-process workers reuse the loaded data
    toolbox = make_toolbox(evaluator, tournsize=args.tournament, max_height=args.max_height)
    population = toolbox.population(args.population) if resume_state is None else []
    archive = LossArchive(data.task, data.num_classes)
    hof = tools.HallOfFame(5, similar=lambda a, b: archive.key(a) == archive.key(b))
    done = resume_state["generation"] if resume_state else -1
    bar = progress(args.generations + 1, "evomal generations", args.quiet, unit="gen")
    bar.update(done + 1)
    # search seconds so far (accumulated across resumes; not counted: time lost to a kill)
    prior = float(resume_state.get("seconds", 0.0)) if resume_state else 0.0
    start = time.perf_counter()
    elapsed = [prior]

    def checkpoint(state):
        elapsed[0] = prior + time.perf_counter() - start
        state["seconds"] = elapsed[0]
        run_dir.save_checkpoint({CKPT_KEY: state})
        run_dir.write_logbook(state["logbook"])
        bar.update(1)
        last = state["logbook"][-1]
        best = last.get("min")
        bar.set_postfix(best=f"{best:.4g}" if best is not None else "-")
        # one line per generation, in --quiet too (it is the run's log); through tqdm so the
        # bar is redrawn below it
        bar.write(f"gen {last['gen']:>3}/{args.generations}: {last['nevals']:>3} evaluated, "
                  f"{last['cached']:>3} archive hits, {last.get('rejected', 0):>3} rejected in "
                  f"population; best {best:.4g}, median {last.get('median', float('nan')):.4g}"
                  + (f"; {last['failed']} evaluations failed (reasons in logbook.csv)"
                     if last.get("failed") else "") + f" [{elapsed[0]:.0f} s]", file=sys.stdout)

    population, logbook = eaEvoMAL(population, toolbox, args.generations, cxpb=args.cxpb,
                                   mutpb=args.mutpb, elitism=args.elitism, stats=fitness_stats(),
                                   halloffame=hof, verbose=False, archive=archive,
                                   checkpoint=checkpoint, resume=resume_state)
    bar.close()
    if resume_state is not None and resume_state["generation"] >= args.generations:
        elapsed[0] = prior
    return population, logbook, hof, archive, elapsed[0]


def run(args) -> int:
    """Search, report the best formulas, compare the best learned loss with the baseline."""
    from deapnn.data import load_dataset
    from deapnn.rundir import RunDir
    from deapnn.runtime import configure_worker_threads, get_device, seed_everything, set_device

    set_device(args.device)
    # EvoMAL's base networks are tiny: one torch thread per process is fastest and avoids
    # oversubscription (DEAPNN_THREADS overrides)
    configure_worker_threads(None if os.environ.get("DEAPNN_THREADS") else 1)
    seed_everything(args.seed)
    run_dir = RunDir.resume(args.resume) if args.resume else (
        RunDir(args.out, {"command": "evomal", **{k: v for k, v in vars(args).items()
                                                   if not callable(v)}}) if args.out else None)
    if run_dir is None:
        raise ValueError("deapnn evomal needs --out DIR (or --resume DIR)")
    data = load_dataset(args.dataset, seed=args.seed)
    cfg = EvoMALConfig(dataset=args.dataset, seed=args.seed, model=args.model,
                       hidden=tuple(args.hidden) if args.hidden else None,
                       meta_steps=args.meta_steps, inner_steps=args.inner_steps,
                       meta_lr=args.meta_lr, lr=args.lr, fitness_steps=args.fitness_steps,
                       rejection_steps=args.rejection_steps, nonnegative=args.nonnegative,
                       device=args.device).validate()
    stored = run_dir.load_checkpoint() if args.resume else None
    resume_state = stored.get(CKPT_KEY) if stored else None
    if resume_state is not None:
        print(f"resuming {run_dir.path} after generation {resume_state['generation']}")
    pop, logbook, hof, archive, search_seconds = run_search(args, run_dir, data, cfg, resume_state)
    metric = "error" if data.task == "classification" else "MSE"
    rows = best_formulas(hof, archive)
    print(f"\nsearch: {search_seconds:.0f} s; {archive.misses} evaluations, {archive.hits} archive "
          f"hits (equivalent trees not re-evaluated)")
    print(f"best learned losses (validation {metric}; archive: {len(archive)} distinct, "
          f"{archive.rejected()} rejected/failed):")
    for i, row in enumerate(rows, 1):
        same = "" if row["evaluated"] == row["tree"] else f" (equivalent to {row['evaluated']})"
        print(f"{i}. {row['fitness']:.4f}  {row['tree']}{same}")
        if math.isfinite(row["fitness"]):
            print(f"     learned: {row['learned']}\n     sympy:   {row['sympy']}")
        else:
            print(f"     {row['reason'] or 'rejected'}")
    summary = {"dataset": args.dataset, "task": data.task, "best": rows,
               "archive_size": len(archive), "rejected": archive.rejected(),
               "evaluations": archive.misses, "archive_hits": archive.hits}
    timing = {"search_seconds": round(search_seconds, 1)}
    if not rows or not math.isfinite(rows[0]["fitness"]):
        print("no candidate loss passed the rejection protocol; no final comparison")
        run_dir.write_json("result.json", {**summary, "timing": timing})
        return 1
    device = get_device()
    # finished final-training runs survive a kill: a resumed run reuses the ones made for the
    # same best loss and settings
    eval_every = args.final_eval_every or max(1, args.final_steps // 20)
    ident = {"tree": rows[0]["evaluated"], "weights": rows[0]["weights"],
             "steps": args.final_steps, "seed": args.seed, "eval_every": eval_every}
    stored_final = None
    if args.resume and os.path.exists(run_dir.file(FINAL_FILE)):
        with open(run_dir.file(FINAL_FILE), encoding="utf-8") as fh:
            stored_final = json.load(fh)
        if stored_final.get("ident") != ident:
            print(f"{FINAL_FILE} belongs to another best loss or settings: retraining")
            stored_final = None
    partial = {"ident": ident, "runs": dict(stored_final["runs"]) if stored_final else {}}

    def save_run(name, runs):
        partial["runs"][name] = runs
        run_dir.write_json(FINAL_FILE, partial)

    start = time.perf_counter()
    print(f"\nfinal training: {args.final_steps} SGD steps, {args.seeds} seeds; test and "
          f"validation {metric} every {eval_every} steps")
    results = final_comparison(rows[0], data, cfg, args.seeds, args.final_steps, eval_every, device,
                               done=partial["runs"], on_run=save_run)
    timing["final_seconds"] = round(sum(r.get("seconds", 0.0) for res in results.values()
                                        for r in res["runs"]), 1)
    timing["final_seconds_this_invocation"] = round(time.perf_counter() - start, 1)
    paired = paired_comparison(results)
    paired_es = paired_comparison(results, "test_es")
    print("\n" + comparison_table(results, metric, paired, paired_es))
    print(f"wall time: search {timing['search_seconds']:.0f} s, final training "
          f"{timing['final_seconds']:.0f} s")
    png = plot_learning_curves(results, run_dir.file("learning_curve.png"), metric,
                               f"EvoMAL vs baseline on {args.dataset}")
    summary["final"] = {k: {"mean": v["mean"], "std": v["std"],
                             "test": [r["test"] for r in v["runs"]],
                             "curves": [r["curve"] for r in v["runs"]],
                             "es_mean": v["es_mean"], "es_std": v["es_std"],
                             "test_es": [r["test_es"] for r in v["runs"]],
                             "es_step": [r["es_step"] for r in v["runs"]],
                             "val_curves": [r["val_curve"] for r in v["runs"]]}
                        for k, v in results.items()}
    summary["paired"] = paired
    summary["paired_early_stopped"] = paired_es
    summary["timing"] = timing
    run_dir.write_json("result.json", summary)
    print(f"\nrun directory: {run_dir.path} (logbook.csv, checkpoint.pt, result.json, "
          f"{FINAL_FILE}, {png.rsplit('/', 1)[-1]})", file=sys.stderr)
    return 0
