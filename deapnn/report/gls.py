"""Report sections of ``deapnn gls`` runs: one job per arm × seed in ``<arm>/seed<k>/``."""
from __future__ import annotations

import os
import statistics

from ..gls.config import ARM_TITLES as _TITLES
from .basic import logbook_reasons
from .classes import class_section
from ..results import job_row
from .document import (Report, code, finite, mean_std, num, plain, read_json, read_rows,
                       sample_std, seconds)


def _jobs(rep: Report, cfg: dict) -> list[dict]:
    """Every arm × seed job of the configuration (and any other ``<arm>/seed<k>`` found)."""
    arms = ["gls"] + [a for a in cfg.get("arms", []) if a != "gls"]
    seeds = list(cfg.get("seeds", [0]))
    pairs = [(a, s) for s in seeds for a in arms]
    for arm in sorted(os.listdir(rep.run_dir)):
        sub = os.path.join(rep.run_dir, arm)
        if os.path.isdir(sub):
            for name in sorted(os.listdir(sub)):
                if name.startswith("seed") and name[4:].isdigit() and (arm, int(name[4:])) \
                        not in pairs:
                    pairs.append((arm, int(name[4:])))
    jobs = []
    for arm, seed in pairs:
        d = os.path.join(rep.run_dir, arm, f"seed{seed}")
        jobs.append({"arm": arm, "seed": seed, "dir": d,
                     "result": job_row(read_json(os.path.join(d, "result.json"))),
                     "rows": read_rows(os.path.join(d, "logbook.csv")),
                     "started": os.path.isdir(d)})
    return jobs


def _summary(jobs: list[dict]) -> dict:
    """Per-arm mean ± std (sample std, as ``deapnn.gls.summarize``) of the finished jobs."""
    out = {}
    for job in jobs:
        if job["result"]:
            out.setdefault(job["arm"], []).append(job["result"])
    return {arm: {"n": len(rs), "mean": statistics.fmean(r["test_acc"] for r in rs),
                  "std": sample_std([r["test_acc"] for r in rs]),
                  "seconds": statistics.fmean(r["seconds"] for r in rs)}
            for arm, rs in out.items()}


def _mean_curve(jobs, arm, key):
    curves = [{r["compute_epochs"]: r[key] for r in j["rows"]
               if finite(r.get(key)) and finite(r.get("compute_epochs"))}
              for j in jobs if j["arm"] == arm and j["rows"]]
    curves = [c for c in curves if c]
    xs = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return xs, [statistics.fmean(c[x] for c in curves) for x in xs]


def _validation(cfg: dict, done: list[dict]) -> str:
    """Which data protocol the results used: the validation examples held out of training."""
    sizes = sorted({j["result"]["val_size"] for j in done if "val_size" in j["result"]}, key=str)
    if cfg.get("val_size") == 0 or sizes == [0]:
        return ("No validation split (`val_size` 0, the paper's protocol): every arm trained on "
                "the whole training set; the final parent's test accuracy is reported.")
    which = "the dataset's usual split" if cfg.get("val_size") is None else "`val_size`"
    held = " / ".join(f"{n:,}" if isinstance(n, int) else plain(n) for n in sizes)
    held = f"{held} examples ({which})" if sizes else which
    return (f"Validation: {held} held out of the training set; the final parent's test "
            "accuracy is reported.")


#: (result-row key, column title) of the representation metric and the --diagnostics shares
_EXTRA = (("feature_erank", "feature effective rank (test)"),
          ("diag_decided", "generations decided on a case"),
          ("diag_trained_on_decider", "winner trained on the deciding case"),
          ("diag_winner_best_val", "winner is a best child on val"))


def _regime_section(rep: Report, cfg: dict, done: list[dict], summary: dict) -> None:
    """The regime the jobs ran in (steps per child per generation, augmentation, p, case
    metric), the representation metric and the ``--diagnostics`` shares per arm."""
    rows = [j["result"] for j in done if "steps_per_child" in j["result"]]
    if not rows:
        return
    rep.heading("Regime, representation and diagnostics")
    regimes = sorted({(r.get("population_size"), r["steps_per_child"], r.get("augmentation"),
                       r.get("case_metric", "error"), r.get("epsilon")) for r in rows}, key=str)
    rep.table(["p", "SGD steps per child per generation", "augmentation (SubGD, SGD)",
               "lexicase case metric", "ε"],
              [[plain(p), plain(t), plain(a or "none"), plain(m), plain(e if e is not None
                                                                        else "—")]
               for p, t, a, m, e in regimes])
    by_arm: dict = {}
    for r in rows:
        by_arm.setdefault(r["arm"], []).append(r)
    keys = [(k, t) for k, t in _EXTRA if any(k in r for r in rows)]
    table = []
    for arm in [a for a in _TITLES if a in by_arm] + [a for a in by_arm if a not in _TITLES]:
        cells = [f"{_TITLES.get(arm, arm)} ({code(arm)})"]
        for key, _ in keys:
            vals = [r[key] for r in by_arm[arm] if finite(r.get(key))]
            cells.append(mean_std(statistics.fmean(vals), sample_std(vals)) if vals else "—")
        table.append(cells)
    rep.table(["arm"] + [t for _, t in keys], table)
    rep.para("Feature effective rank: exp of the entropy of the normalised singular values of "
             "the column-centred penultimate-layer features (input of the last linear layer) "
             "of the final model on the test split (Roy & Vetterli 2007), the measure of the "
             "paper's claim that GLS learns more diverse representations (Ding & Spector "
             "2022, analysis of the learned representations).")
    if any(k.startswith("diag_") for k, _ in keys):
        pop = cfg.get("population_size")
        chance = f"1/p = {1 / pop:.3f}" if isinstance(pop, int) and pop else "1/p"
        rep.para("Diagnostics (`--diagnostics`), shares of generations per job, mean ± std "
                 "over seeds: each training case is in exactly one child's SubGD slice, so "
                 f"a deciding case unrelated to training is the winner's own about {chance} of "
                 f"the time, and a random winner is a best child on validation about {chance} "
                 "of the time (more with ties).")


def gls(rep: Report, config: dict, results) -> str:
    """``results``: the run's :class:`~deapnn.gls.GLSSummary` (None: not finished)."""
    cfg = config
    jobs = _jobs(rep, cfg)
    arms = list(dict.fromkeys(j["arm"] for j in jobs))
    done = [j for j in jobs if j["result"]]

    rep.heading("Results")
    pop, epochs = cfg.get("population_size"), cfg.get("epochs")
    gens = epochs * (pop + 1) if isinstance(pop, int) and isinstance(epochs, int) else "?"
    rep.para(f"{plain(cfg.get('model'))} on {plain(cfg.get('dataset'))}, p = {plain(pop)}, "
             f"{plain(epochs)} epochs (GLS: {gens} generations); test accuracy over seeds "
             f"{plain(cfg.get('seeds'))}. {_validation(cfg, done)}")
    if results is None:
        rep.para(f"No `results.json`: the run did not finish ({len(done)} of {len(jobs)} jobs "
                 "done); the table covers the finished jobs.")
    summary = (results.summary if results else None) or _summary(jobs)
    rows = []
    for arm in [a for a in _TITLES if a in summary] + [a for a in summary if a not in _TITLES]:
        s = summary[arm]
        pair = s.get("gls_minus_arm")
        rows.append([f"{_TITLES.get(arm, arm)} ({code(arm)})", mean_std(s["mean"], s["std"]),
                     str(s["n"]), seconds(s.get("seconds")),
                     f"{pair['mean']:+.4f} ± {pair['std']:.4f} ({pair['wins']}W/{pair['ties']}T/"
                     f"{pair['losses']}L)" if pair else "—"])
    rep.table(["arm", "test accuracy (mean ± std)", "seeds", "wall per job",
               "GLS − arm, paired"], rows)
    rep.table(["arm", "seed", "test acc", "val acc", "val size", "wall", "ran on", "status"],
              [[code(j["arm"]), str(j["seed"]), num((j["result"] or {}).get("test_acc")),
                num((j["result"] or {}).get("val_acc")),
                str((j["result"] or {}).get("val_size", "—")),
                seconds((j["result"] or {}).get("seconds")),
                " ".join(str((j["result"] or {}).get(k, "")) for k in ("host", "device")).strip()
                or "—",
                "diverged" if (j["result"] or {}).get("diverged") else
                "done" if j["result"] else "started" if j["started"] else "not started"]
               for j in jobs])

    _regime_section(rep, cfg, done, summary)
    class_section(rep, [dict(j["result"], arm=j["arm"], seed=j["seed"]) for j in done], _TITLES)

    rep.heading("Curves")
    for fname, key, ylabel in (("accuracy.png", "val_acc", "validation accuracy"),
                               ("loss.png", "train_loss", "train loss")):
        rep.image_or_plot(fname, f"{ylabel} (mean over seeds)", key,
                          lambda key=key: {_TITLES.get(a, a): _mean_curve(jobs, a, key)
                                           for a in arms},
                          "gradient compute (epochs)", ylabel, "mean over seeds")

    rep.heading("Timings")
    wall = [j["result"]["seconds"] for j in done if finite(j["result"].get("seconds"))]
    rep.table(["", "time"], [["sum of job wall times", seconds(sum(wall) if wall else None)],
                             ["longest job", seconds(max(wall) if wall else None)]])
    timing = []
    for arm in arms:
        gen_rows = [r for j in jobs if j["arm"] == arm for r in j["rows"]]
        sel = [r["select_time"] for r in gen_rows if finite(r.get("select_time"))]
        mut = [r["mutate_time"] for r in gen_rows if finite(r.get("mutate_time"))]
        if sel or mut:
            share = sum(sel) / (sum(sel) + sum(mut)) if sum(sel) + sum(mut) > 0 else None
            timing.append([code(arm), str(len(sel)), seconds(sum(sel)),
                           seconds(statistics.fmean(sel) if sel else None),
                           seconds(sum(mut)), seconds(statistics.fmean(mut) if mut else None),
                           f"{100 * share:.1f} %" if share is not None else "—"])
    if timing:
        rep.para("Per-generation times (all seeds; selection = lexicase or random choice, "
                 "mutation = one SubGD pass of every child):")
        rep.table(["arm", "generations", "selection total", "selection / gen", "mutation total",
                   "mutation / gen", "selection share"], timing)
        rep.plot("gls_times", {f"{_TITLES.get(a, a)} {what}": _mean_curve(
            [dict(j, rows=[dict(r, compute_epochs=r.get("gen")) for r in j["rows"]])
             for j in jobs], a, f"{what}_time") for a in arms for what in ("select", "mutate")},
            "generation", "seconds", "per-generation time (mean over seeds)")

    rep.heading("Failures")
    rep.failures([(f"{code(j['arm'])} seed {j['seed']} logbook", logbook_reasons(j["rows"]))
                  for j in jobs] +
                 [(f"{code(j['arm'])} seed {j['seed']} result.json",
                   [j["result"]["diverged"] if isinstance(j["result"]["diverged"], str)
                    else "diverged"]) for j in done if j["result"].get("diverged")],
                 f"{len(done)} finished jobs' result.json and every job's logbook.csv")
    rep.failed_column([r for j in jobs for r in j["rows"]], "generation or epoch")
    if results is not None:
        return "complete"
    return f"incomplete ({len(done)} of {len(jobs)} jobs done; `deapnn gls --resume` continues)"
