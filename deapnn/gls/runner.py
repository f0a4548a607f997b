"""``run_gls``: a GLS comparison over several seeds as phase functions — :func:`make_jobs`,
:func:`run_jobs`, :func:`summarize`, :func:`format_table`, :func:`write_outputs`.

The arms (Ding & Spector 2022, §4): GLS; SGD at the same epochs; SGD at matched gradient compute,
(p+1)× epochs; SubGD with random selection instead of lexicase (the ablation); and two controls
beyond the paper: SGD with its momentum reset every T steps (``sgd_reset``) and SGD at a
learning rate tuned on the validation split (``sgd_tuned``).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from ..evaluation import Evaluation
from ..progress import no_progress
from ..results import SCHEMA_VERSION
from ..class_metrics import SCALAR_KEYS, TITLES
from ..paired import paired_short, paired_stats
from .config import ARM_TITLES, ARMS, GLSConfig
from .job import run_job


@dataclass
class GLSSummary:
    """Outcome of :func:`run_gls`, a :class:`deapnn.results.Summary`: the per-job result rows,
    the per-arm summary (see :func:`summarize`) and the run's configuration. ``to_dict()`` is the
    run's ``results.json``; a job is one arm × seed."""
    results: list
    summary: dict
    config: GLSConfig

    @property
    def table(self) -> str:
        """The printed comparison (:func:`format_table`; ``summary.txt``)."""
        return format_table(self.summary, self.config, self.results)

    @property
    def jobs(self) -> int:
        """Arms × seeds."""
        return len(self.results)

    @property
    def failures(self) -> list[str]:
        """``"arm seed s: reason"`` for every job that failed (no accuracy)."""
        return [f"{r['arm']} seed {r['seed']}: {r['error']}" for r in self.results
                if r.get("error")]

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "results": self.results,
                "summary": self.summary, "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> GLSSummary:
        """The summary :meth:`to_dict` stored."""
        return cls(data["results"], data["summary"], GLSConfig.from_dict(data["config"]))

    def render(self) -> str:
        """``deapnn gls``'s printed table."""
        return self.table


def make_jobs(cfg: GLSConfig, out: str, progress=no_progress) -> list[dict]:
    """One picklable job per seed × arm, GLS first (``root``: the run directory, from which the
    job reaches its directory ``dir`` without following links; ``timeout``: ``--eval-timeout``
    per job, or None; ``progress``: the progress-bar factory each job uses)."""
    from ..failsafe import default_timeout
    arms = ["gls"] + [a for a in cfg.arms if a != "gls"]
    return [{"arm": arm, "seed": seed, "dir": os.path.join(out, arm, f"seed{seed}"), "root": out,
             "config": cfg.to_dict(), "progress": progress, "timeout": default_timeout()}
            for seed in cfg.seeds for arm in arms]


def run_jobs(jobs: list[dict], map_fn=None) -> list[Evaluation]:
    """Every job through ``map_fn`` (builtin ``map`` by default; SCOOP's ``futures.map`` runs
    them in parallel)."""
    return list((map_fn or map)(run_job, jobs))


def result_rows(evaluations: list[Evaluation]) -> list[dict]:
    """The result row of each job (``error`` set on a failed one)."""
    return [dict(ev.info) for ev in evaluations]


def summarize(evaluations: list[Evaluation]) -> dict:
    """Per arm: mean ± std test accuracy, mean wall time, and paired differences vs GLS; failed
    jobs are counted and explained (``failed``), not averaged."""
    by_arm: dict = {}
    failed: dict = {}
    for ev in evaluations:
        r = ev.info
        if ev.failed:
            failed.setdefault(r["arm"], []).append(f"seed {r['seed']}: {ev.error}")
            by_arm.setdefault(r["arm"], [])
        else:
            by_arm.setdefault(r["arm"], []).append(r)
    summary = {}
    for arm, rs in by_arm.items():
        acc = np.array([r["test_acc"] for r in rs], dtype=float)
        summary[arm] = {"n": len(rs), "mean": float(acc.mean()) if len(rs) else float("nan"),
                        "std": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                        "seconds": float(np.mean([r["seconds"] for r in rs])) if rs else 0.0,
                        "per_seed": {int(r["seed"]): r["test_acc"] for r in rs}}
        summary[arm].update(_extra_means(rs))
        if arm in failed:
            summary[arm]["failed"] = failed[arm]
    if "gls" in summary:
        for arm in summary:
            if arm != "gls":
                _paired(summary, arm)
                for key in SCALAR_KEYS:
                    pair = _pair({r["seed"]: r.get(key) for r in by_arm["gls"]},
                                 {r["seed"]: r.get(key) for r in by_arm[arm]})
                    if pair:
                        summary[arm][f"gls_minus_arm_{key}"] = pair
    return summary


#: result-row numbers beyond accuracy averaged per arm (when present): the representation metric,
#: the ``--diagnostics`` shares, the per-class metrics and the classes of the deciding cases
EXTRA_MEANS = ("feature_erank", "diag_decided", "diag_trained_on_decider", "diag_winner_best_val",
               *SCALAR_KEYS, "flipped_fit", "diag_rare_decider", "rare_train_share",
               "diag_noisy_decider", "noisy_train_share")


def _extra_means(rows: list[dict]) -> dict:
    out = {}
    for key in EXTRA_MEANS:
        vals = np.array([r[key] for r in rows if isinstance(r.get(key), (int, float))
                         and np.isfinite(r[key])], dtype=float)
        if len(vals):
            out[key] = {"mean": float(vals.mean()),
                        "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, "n": len(vals)}
    return out


def regime_line(rows: list[dict]) -> str:
    """The regime of the finished jobs (see :func:`deapnn.gls.job.regime`), one line."""
    r = next((r for r in rows if "steps_per_child" in r), None)
    if r is None:
        return ""
    metric = r.get("case_metric", "error")
    eps = f", ε {r['epsilon']}" if r.get("epsilon") is not None else ""
    data = ""
    if "train_class_counts" in r:       # the training split's regime (issue 25)
        from ..data.regimes import regime_text
        data = f"; training split {regime_text(r.get('imbalance'), r.get('label_noise'))}"
        if r.get("imbalance") is not None:
            data += " (class order per seed in the result rows)"
    return (f"regime: p={r.get('population_size')}, {r['steps_per_child']} SGD steps per child per "
            f"generation, augmentation {r.get('augmentation') or 'none'}, lexicase on "
            f"per-case {metric}{eps}{data}")


def _pair(gls: dict, arm: dict) -> dict | None:
    """Paired GLS − arm over the seeds both have a number for (seed -> value): mean ± std,
    wins/ties/losses and the p-values of :func:`deapnn.paired.paired_stats`; None without a
    common seed."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
    common = sorted(s for s in set(gls) & set(arm) if number(gls[s]) and number(arm[s]))
    pair = paired_stats([gls[s] for s in common], [arm[s] for s in common], higher_is_better=True)
    return None if pair is None else {k: v for k, v in pair.items() if k not in ("of", "diff")}


def _paired(summary: dict, arm: str) -> None:
    pair = _pair(summary["gls"]["per_seed"], summary[arm]["per_seed"])
    if pair:
        summary[arm]["gls_minus_arm"] = pair


def format_table(summary: dict, cfg: GLSConfig, rows: list[dict] | None = None) -> str:
    """The comparison as the text table ``deapnn gls`` prints (and ``summary.txt`` holds);
    ``rows`` (the result rows) add the regime line and the feature effective-rank and
    ``--diagnostics`` columns."""
    lines = [f"{cfg.model} on {cfg.dataset}, p={cfg.population_size}, {cfg.epochs} epochs "
             f"(GLS: {cfg.generations()} generations){_validation_note(cfg)}",
             f"{'arm':<26} {'test accuracy':>20} {'seeds':>5} {'wall s':>8}  GLS − arm (paired)"]
    if rows:
        extra = _extra_lines(summary, cfg)
        if regime_line(rows):
            lines.insert(1, regime_line(rows))
    for arm in ARMS:
        if arm not in summary:
            continue
        s = summary[arm]
        pair = s.get("gls_minus_arm")
        ptxt = (f"{pair['mean']:+.4f} ± {pair['std']:.4f}  ({pair['wins']}W/{pair['ties']}T/"
                f"{pair['losses']}L)") if pair else ""
        lines.append(f"{ARM_TITLES[arm]:<26} {s['mean']:>11.4f} ± {s['std']:.4f} {s['n']:>5} "
                     f"{s['seconds']:>8.1f}  {ptxt}")
    for arm in ARMS:
        for why in summary.get(arm, {}).get("failed", []):
            lines.append(f"  failed: {ARM_TITLES[arm]} {why}")
    if rows and extra:
        lines.extend(extra)
    if rows:
        lines.extend(class_lines(summary))
    return "\n".join(lines)


def class_lines(summary: dict) -> list[str]:
    """The per-class metrics of every arm (test split: balanced, worst-class and rarest-3
    accuracy, :mod:`deapnn.class_metrics`) with GLS − arm paired on each, and with
    ``--diagnostics`` how often a rare class decided GLS's selection against its share of the
    training split; none when no row has them (a regression dataset)."""
    if not any("balanced_acc" in s for s in summary.values()):
        return []
    out = [f"{'arm':<26}" + "".join(f" {TITLES[k]:>16}" for k in SCALAR_KEYS)
           + "  GLS − arm (paired): balanced / worst / rarest-3"]
    for arm in ARMS:
        s = summary.get(arm)
        if not s or "balanced_acc" not in s:
            continue
        cells = "".join(f" {s[k]['mean']:>7.4f} ± {s[k]['std']:<6.4f}" if k in s
                        else f" {'—':>16}" for k in SCALAR_KEYS)
        pairs = [s.get(f"gls_minus_arm_{k}") for k in SCALAR_KEYS]
        ptxt = " / ".join(paired_short(p) for p in pairs) if arm != "gls" else ""
        out.append(f"{ARM_TITLES[arm]:<26}{cells}  {ptxt}".rstrip())
    fits = [f"{ARM_TITLES[a]} {summary[a]['flipped_fit']['mean']:.3f}" for a in ARMS
            if "flipped_fit" in summary.get(a, {})]
    if fits:
        out.append("flipped training labels the final network predicts (memorised noise): "
                   + ", ".join(fits))
    g = summary.get("gls", {})
    if "diag_rare_decider" in g and "rare_train_share" in g:
        out.append(f"GLS deciding case in a rarest-3 class: {g['diag_rare_decider']['mean']:.3f} "
                   f"of decided generations, against their {g['rare_train_share']['mean']:.3f} "
                   "share of the training split")
    if "diag_noisy_decider" in g and "noisy_train_share" in g:
        out.append(f"GLS deciding case mislabelled: {g['diag_noisy_decider']['mean']:.3f} of "
                   f"decided generations, against the {g['noisy_train_share']['mean']:.3f} "
                   "flipped share of the training split")
    return out


def _extra_lines(summary: dict, cfg: GLSConfig) -> list[str]:
    """Feature effective rank (test split) and the ``--diagnostics`` shares, per arm."""
    if not any("feature_erank" in s for s in summary.values()):
        return []
    diag = cfg.diagnostics
    head = f"{'arm':<26} {'feature eff. rank':>18}"
    if diag:
        head += f" {'decided':>8} {'won on own case':>16} {'winner best val':>16}"
    out = [head]
    for arm in ARMS:
        s = summary.get(arm)
        if not s or "feature_erank" not in s:
            continue
        e = s["feature_erank"]
        line = f"{ARM_TITLES[arm]:<26} {e['mean']:>9.2f} ± {e['std']:<6.2f}"
        if diag:
            line += "".join(f" {s[k]['mean']:>{w}.3f}" if k in s else f" {'—':>{w}}"
                            for k, w in (("diag_decided", 8), ("diag_trained_on_decider", 16),
                                         ("diag_winner_best_val", 16)))
        out.append(line)
    return out


def _validation_note(cfg: GLSConfig) -> str:
    if cfg.val_size is None:
        return ""
    if cfg.val_size == 0:
        return "; no validation split: trained on the whole training set (paper protocol)"
    return f"; {cfg.val_size} validation examples held out of the training set"


def write_outputs(rundir, summary: GLSSummary, jobs: list[dict]) -> None:
    """``results.json``, ``summary.txt`` and the curves of the run directory."""
    rundir.write_results(summary)
    rundir.write_text("summary.txt", summary.table + "\n")
    plot(rundir, jobs)


def plot(rundir, jobs: list[dict]) -> None:
    """Mean validation accuracy and train loss per arm against gradient compute (epochs); a
    logbook that cannot be read (a NUL byte, extra fields: not as a job writes it) is a
    :class:`~deapnn.rundir.RunDirError` naming it."""
    from ..plots import plot_curves
    from ..rundir import RunDirError, read_logbook

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    for key, name, ylabel in (("val_acc", "accuracy.png", "validation accuracy"),
                              ("train_loss", "loss.png", "train loss")):
        series = {}
        for arm in dict.fromkeys(j["arm"] for j in jobs):
            curves = []
            for job in (j for j in jobs if j["arm"] == arm):
                path = os.path.join(job["dir"], "logbook.csv")
                try:
                    rows = [r for r in read_logbook(path)
                            if number(r.get(key)) and number(r.get("compute_epochs"))]
                except (ValueError, csv.Error) as exc:
                    raise RunDirError(f"cannot read {path}: {exc}") from None
                curves.append({r["compute_epochs"]: r[key] for r in rows})
            xs = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
            if xs:
                series[ARM_TITLES[arm]] = (xs, [float(np.mean([c[x] for c in curves])) for x in xs])
        plot_curves(series, rundir.file(name), "gradient compute (epochs)", ylabel,
                    "mean over seeds")


def run_gls(cfg: GLSConfig, rundir, *, map_fn=None, progress=no_progress,
            log=None) -> GLSSummary:
    """Run (or resume: finished jobs are read back, started ones continue from their
    checkpoints) every arm × seed of ``cfg`` in ``rundir`` (a :class:`~deapnn.rundir.RunDir`),
    write ``results.json``, ``summary.txt`` and the curves, and return the summary.

    ``map_fn`` runs the jobs (builtin ``map`` by default); ``progress`` is the progress-bar
    factory of every job (it travels with the job: pass a picklable one to SCOOP); ``log(text)``
    hears of every failed job."""
    # refused before any work, with the message of the config; a run that cannot fit
    # this host's memory too
    cfg.validate().check_resources()
    jobs = make_jobs(cfg, rundir.path, progress)
    evaluations = run_jobs(jobs, map_fn)
    for ev in evaluations:
        if ev.failed and log is not None:
            log(f"{ARM_TITLES[ev.info['arm']]} seed {ev.info['seed']} failed: {ev.error}")
    stats = summarize(evaluations)
    rows = result_rows(evaluations)
    summary = GLSSummary(rows, stats, cfg)
    write_outputs(rundir, summary, jobs)
    return summary


