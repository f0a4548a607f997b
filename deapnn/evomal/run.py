"""The ``deapnn evomal`` run: search, checkpoint/resume, best formulas, final comparison.

Raymond et al. 2023 (TPAMI §5 "Experimental design"): loss search on the training/validation
splits, then meta-testing — fresh networks trained with the best learned loss and with the
baseline (MSE or CE) on the training split, reported on the *disjoint* test split over several
seeds (the reference's tabular test split overlaps its training data; ours does not).
"""
from __future__ import annotations

import math
import os
import statistics
import sys

from deap import tools

from deapnn.algorithms.evomal import eaEvoMAL
from deapnn.evomal.evaluator import (EvoMALConfig, EvoMALEvaluator, _DATA_CACHE, build_base_model,
                                     train_with_loss)
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


def final_comparison(best: dict, data, cfg: EvoMALConfig, seeds: int, steps: int,
                     eval_every: int, device, log=print) -> dict:
    """Train fresh networks with the learned loss and with the baseline on ``seeds`` seeds;
    test error rate / MSE every ``eval_every`` steps. Returns per-loss results and curves."""
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
    results = {}
    for name, loss in (("EvoMAL", learned), (baseline_name, baseline)):
        runs = []
        for s in range(seeds):
            seed = derive_seed(cfg.seed, "final", s)
            model = build_base_model(cfg, data, seed)
            curve, reason = train_with_loss(model, loss, data, cfg, steps, seed, device,
                                            eval_every=eval_every, eval_split="test")
            final = curve[-1][1] if curve and not reason else float("inf")
            runs.append({"seed": s, "test": final, "curve": curve, "reason": reason})
            log(f"  {name:7s} seed {s}: test {final:.4f}" + (f" ({reason})" if reason else ""))
        finite = [r["test"] for r in runs if math.isfinite(r["test"])]
        results[name] = {"runs": runs, "mean": statistics.fmean(finite) if finite else float("inf"),
                         "std": statistics.pstdev(finite) if len(finite) > 1 else 0.0}
    return results


def comparison_table(results: dict, metric: str) -> str:
    lines = [f"{'loss':8s} {'test ' + metric + ' (mean ± std)':>28s}   per seed"]
    for name, res in results.items():
        per = " ".join(f"{r['test']:.4f}" for r in res["runs"])
        lines.append(f"{name:8s} {res['mean']:>19.4f} ± {res['std']:.4f}   {per}")
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
    """The GP search with per-generation checkpoints; returns (population, logbook, hof, archive)."""
    from deapnn.commands.common import progress
    evaluator = EvoMALEvaluator(cfg)
    _DATA_CACHE[(cfg.dataset, cfg.seed)] = data          # in-process workers reuse the loaded data
    toolbox = make_toolbox(evaluator, tournsize=args.tournament, max_height=args.max_height)
    population = toolbox.population(args.population) if resume_state is None else []
    archive = LossArchive(data.task, data.num_classes)
    hof = tools.HallOfFame(5, similar=lambda a, b: archive.key(a) == archive.key(b))
    done = resume_state["generation"] if resume_state else -1
    bar = progress(args.generations + 1, "evomal generations", args.quiet, unit="gen")
    bar.update(done + 1)

    def checkpoint(state):
        run_dir.save_checkpoint({CKPT_KEY: state})
        run_dir.write_logbook(state["logbook"])
        bar.update(1)
        best = state["logbook"][-1].get("min")
        bar.set_postfix(best=f"{best:.4g}" if best is not None else "-")

    population, logbook = eaEvoMAL(population, toolbox, args.generations, cxpb=args.cxpb,
                                   mutpb=args.mutpb, elitism=args.elitism, stats=fitness_stats(),
                                   halloffame=hof, verbose=not args.quiet, archive=archive,
                                   checkpoint=checkpoint, resume=resume_state)
    bar.close()
    return population, logbook, hof, archive


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
    pop, logbook, hof, archive = run_search(args, run_dir, data, cfg, resume_state)
    metric = "error" if data.task == "classification" else "MSE"
    rows = best_formulas(hof, archive)
    print(f"\nbest learned losses (validation {metric}; archive: {len(archive)} distinct, "
          f"{archive.rejected()} rejected/failed, {archive.hits} re-evaluations skipped):")
    for i, row in enumerate(rows, 1):
        same = "" if row["evaluated"] == row["tree"] else f" (equivalent to {row['evaluated']})"
        print(f"{i}. {row['fitness']:.4f}  {row['tree']}{same}\n     learned: {row['learned']}\n"
              f"     sympy:   {row['sympy']}")
    summary = {"dataset": args.dataset, "task": data.task, "best": rows,
               "archive_size": len(archive), "rejected": archive.rejected()}
    if not rows or not math.isfinite(rows[0]["fitness"]):
        print("no candidate loss passed the rejection protocol; no final comparison")
        run_dir.write_json("result.json", summary)
        return 1
    device = get_device()
    print(f"\nfinal training: {args.final_steps} SGD steps, {args.seeds} seeds, test split")
    results = final_comparison(rows[0], data, cfg, args.seeds, args.final_steps,
                               max(1, args.final_steps // 20), device)
    print("\n" + comparison_table(results, metric))
    png = plot_learning_curves(results, run_dir.file("learning_curve.png"), metric,
                               f"EvoMAL vs baseline on {args.dataset}")
    summary["final"] = {k: {"mean": v["mean"], "std": v["std"],
                             "test": [r["test"] for r in v["runs"]],
                             "curves": [r["curve"] for r in v["runs"]]} for k, v in results.items()}
    run_dir.write_json("result.json", summary)
    print(f"\nrun directory: {run_dir.path} (logbook.csv, checkpoint.pt, result.json, "
          f"{png.rsplit('/', 1)[-1]})", file=sys.stderr)
    return 0
