"""Report sections of the loss searches: ``deapnn nlfs`` and ``deapnn evomal``."""
from __future__ import annotations

import os

from ..comparison import seed_count
from ..paired import paired_short
from ..results import RESULTS_FILE
from .basic import logbook_reasons
from .document import (Report, code, column, file_span, finite, math_or_code, mean_std, num,
                       plain, read_checkpoint, read_json, read_rows, seconds, timing_columns)


def _progress(rep: Report, rows: list[dict], x: str, cols: list[str]) -> None:
    """The logbook, thinned to at most 12 evenly spaced rows (first and last always kept)."""
    if not rows:
        rep.para("No `logbook.csv` yet.")
        return
    n = len(rows)
    keep = sorted({round(i * (n - 1) / 11) for i in range(12)}) if n > 12 else range(n)
    cols = [c for c in cols if any(c in r for r in rows)]
    rep.table([x] + cols, [[num(rows[i].get(x))] + [num(rows[i].get(c)) for c in cols]
                           for i in keep])
    if n > 12:
        rep.para(f"({n} logbook rows; {len(keep)} evenly spaced shown.)")


def _timings(rep: Report, rows: list[dict], per: str) -> None:
    rep.table(["", "time"], [["wall time (config.json to newest file, final training "
                              "included)", seconds(file_span(rep.run_dir, rep.stem))]])
    if timing_columns(rows):
        rep.timing_table(rows, per=per)
    else:
        rep.para(f"This run's logbook records no per-{per} times.")


# --- tuned comparison and scale report (deapnn.comparison, deapnn.losses.scale) -----------------
def _pair(p: dict | None) -> str:
    if not p:
        return ""
    ps = ", ".join(f"{label} p = {num(p[k], 3)}" for k, label in
                   (("t_p", "t"), ("wilcoxon_p", "Wilcoxon")) if p.get(k) is not None)
    mean = p.get("mean")
    mean = f"{mean:+.4f}" if isinstance(mean, (int, float)) else num(mean)
    return (f"{mean} ± {num(p.get('std'))}; {p.get('wins')}W/{p.get('ties')}T/"
            f"{p.get('losses')}L" + (f" ({ps})" if ps else ""))


def tuned_section(rep: Report, tuned: dict, title: str = "Tuned comparison") -> None:
    """The tuned final comparison: per loss the chosen learning rate, untuned and tuned test
    metric, the paired difference against the tuned baseline (and the untuned pair)."""
    from ..comparison import multiplier_text
    try:
        grid = ", ".join(multiplier_text(m) for m in tuned.get("grid", []))
        better = "higher" if tuned.get("higher_is_better") else "lower"
        rep.para(f"{title}: {plain(tuned.get('metric'))} ({better} is better) over "
                 f"{seed_count(tuned.get('seeds', 0))} final seeds; each loss's learning rate "
                 "chosen on "
                 f"the validation split from ×{{{grid}}} × {num(tuned.get('lr'))} with "
                 f"{seed_count(tuned.get('tune_seeds', 0))} tuning seed(s) disjoint from the "
                 "final seeds"
                 + (f"; model {plain(tuned['model'])}" if tuned.get("model") else "")
                 + (f", {plain(tuned['steps'])} steps" if tuned.get("steps") else "") + ".")
        base = plain(tuned.get("baseline"))
        rep.table(["loss", "chosen lr", "untuned (mean ± std)", "tuned (mean ± std)",
                   f"tuned − tuned {base} (paired)", f"untuned − untuned {base}"],
                  [[code(r["loss"]), num(r.get("lr")),
                    mean_std(r["untuned"]["mean"], r["untuned"]["std"]),
                    mean_std(r["tuned"]["mean"], r["tuned"]["std"]),
                    _pair(r.get("paired")) or "baseline", _pair(r.get("paired_untuned"))]
                   for r in tuned.get("losses", [])])
        _class_table(rep, tuned.get("losses", []), base)
    except (KeyError, TypeError, AttributeError) as exc:
        rep.para(f"Tuned comparison record unreadable ({type(exc).__name__}: {exc}).")


def _class_table(rep: Report, losses: list, base: str) -> None:
    """The per-class test metrics of the tuned comparison (issue 25,
    :mod:`deapnn.comparison_classes`): per loss at its tuned lr, with each paired against the
    tuned baseline; nothing for a record without them (regression, a deapnn before issue 25)."""
    from ..class_metrics import DEFINITIONS, TITLES
    rows = [r for r in losses if isinstance(r.get("classes"), dict) and r["classes"]]
    if not rows:
        return

    def cells(r):
        got = [r["classes"].get(k) for k in TITLES]
        tuned = [mean_std(e["tuned"]["mean"], e["tuned"]["std"]) if e else "—" for e in got]
        pairs = " / ".join((paired_short(e.get("paired")) if e else "—") for e in got)
        return tuned + [pairs if r is not losses[0] else "baseline"]
    rep.para("Per-class test accuracy of each loss at its tuned learning rate, mean ± std over "
             f"the final seeds (issue 25). {DEFINITIONS} (`--imbalance`, `--label-noise`).")
    rep.table(["loss"] + list(TITLES.values())
              + [f"tuned − tuned {base} (paired): balanced / worst / rarest-3"],
              [[code(r["loss"])] + cells(r) for r in rows])



def _sci(value) -> str:
    return f"{value:.1e}" if isinstance(value, (int, float)) else num(value)


def scale_section(rep: Report, scale: dict | None) -> None:
    """The scale report of the found losses: gradient-norm ratio at initialisation, the fitted
    multiple of each reference and whether the loss is one."""
    if not scale:
        return
    rows = []
    for name, r in scale.items():
        if not isinstance(r, dict) or r.get("grad_ratio") is None:
            rows.append([code(name), "", (r or {}).get("reason", "") if isinstance(r, dict)
                         else "", ""])
            continue
        fits = "; ".join(f"{ref}: k = {num(m.get('k'))}, residual {_sci(m.get('residual'))}"
                         for ref, m in r.get("multiples", {}).items())
        rows.append([code(name), num(r["grad_ratio"]), fits,
                     f"**{r['flag']}**" if r.get("flag") else "no"])
    rep.para("Scale report: gradient of each found loss on random outputs (logits ~ N(0, 1)) "
             "against the baseline's; a loss whose gradient is a multiple k of a reference's "
             "(relative residual < 1e-4) trains like that reference with a k× learning rate.")
    rep.table(["loss", "gradient norm ÷ baseline's", "least-squares multiple", "is k × reference"],
              rows)


def comparison_files(rep: Report) -> None:
    """The comparisons ``deapnn compare`` wrote into the run directory."""
    names = sorted(f for f in os.listdir(rep.run_dir)
                   if f.startswith("comparison") and f.endswith(".json")
                   and not f.endswith(".state.json"))
    for name in names:
        record = read_json(os.path.join(rep.run_dir, name))
        if isinstance(record, dict) and record.get("losses"):
            tuned_section(rep, record, f"`deapnn compare` ({code(name)})")


# --- NLFS ---------------------------------------------------------------------------------------
def nlfs(rep: Report, config: dict, results) -> str:
    """``results``: the run's :class:`~deapnn.nlfs.NLFSSummary` (None: not finished)."""
    cfg = config
    rows = read_rows(os.path.join(rep.run_dir, "logbook.csv"))

    rep.heading("Results")
    comparison = results.comparison if results else None
    if results is None:
        rep.para("No `results.json` yet: the run has not finished (search: "
                 f"{max(len(rows) - 1, 0)} of {plain(cfg.get('cycles', '?'))} cycles logged).")
    elif comparison:
        rep.para(f"Final comparison: test accuracy, {len(cfg.get('seeds', []))} seeds, "
                 f"{plain(cfg.get('final_steps'))} SGD steps, model "
                 f"{plain(cfg.get('final_model') or cfg.get('model'))} on "
                 f"{plain(cfg.get('dataset'))}.")
        rep.table(["loss", "test accuracy (mean ± std)", "per seed"],
                  [[code(r["loss"]), mean_std(r["mean"], r["std"]),
                    " ".join(num(v) for v in r.get("test", []))] for r in comparison])
    elif results.tuned:
        tuned_section(rep, results.tuned)
    else:
        rep.para("No final comparison (run with `--seeds none`, or no loss found).")
    scale_section(rep, results.scale if results else None)
    comparison_files(rep)

    rep.heading("Best formulas")
    state, why = read_checkpoint(os.path.join(rep.run_dir, "checkpoint.pt"))
    best = results.best if results else []
    if not best and state:   # a running or killed search: its hall of fame so far
        hof = ((state.get("evo") or {}).get("halloffame") or [])[:cfg.get("top", 3)]
        best = [{"name": f"hof_{k}", "fitness": (h.get("fitness") or [None])[0],
                 "expression": (h.get("info") or {}).get("expression", "?")}
                for k, h in enumerate(hof, 1)]
        if best:
            rep.para("From the checkpoint's hall of fame (the search has not finished):")
    if best:
        rep.table(["rank", "name", "surrogate val acc", "expression"],
                  [[str(i), code(b["name"]), num(b.get("fitness")), code(b["expression"])]
                   for i, b in enumerate(best, 1)])
        latex = [f"- {code(b['name'])}: {math_or_code(b['latex'])}" for b in best
                 if b.get("latex")]
        if latex:
            rep.add(*latex, "")
        if os.path.exists(os.path.join(rep.run_dir, "losses.json")):
            rep.para("Registered in this run's `losses.json`: train with one as "
                     + code(f"DEAPNN_LOSSES={rep.run_dir} deapnn train --loss {best[0]['name']}")
                     + ".")
    else:
        rep.para("No best formulas recorded yet.")
    elimination = read_json(os.path.join(rep.run_dir, "elimination.json"))
    if elimination:
        rep.para("Successive-halving elimination:")
        rep.table(["round", "expression", "fitness", "kept", "reason"],
                  [[str(e.get("round")), code(e.get("expression")), num(e.get("fitness")),
                    "yes" if e.get("kept") else "no", e.get("reason") or ""]
                   for e in elimination])

    rep.heading("Curves")
    rep.plot("fitness", {"population max": column(rows, "cycle", "max"),
                         "population mean": column(rows, "cycle", "mean")},
             "cycle (children evaluated)", "surrogate validation accuracy",
             "NLFS search progress", alt="search fitness per cycle")
    rep.image("probe_curves.png", "best losses vs cross-entropy on the probe")
    rep.heading("Search progress", 3)
    _progress(rep, rows, "cycle", ["nevals", "max", "mean", "zeros", "remutated", "discarded",
                                   "inserted_failed", "diverged_inserted"])

    rep.heading("Timings")
    _timings(rep, rows, "cycle")

    rep.heading("Failures")
    if state is None and why != "no checkpoint":
        rep.para(f"Checkpoint unreadable: {why}")
    pool = (state or {}).get("pool", {})
    pool_info = [i for i in pool.get("info", []) if isinstance(i, dict)]
    # children still alive (born after the initial population); failures caught by the failsafe
    # (an ``error``) are already in the logbook's ``errors`` column
    # (seeds share birth 0; runs aged "ordered", as before the reference's aging, numbered
    # them 0 .. P-1)
    first_child = 1 if cfg.get("initial_age") == "shared" else cfg.get("population_size", 0)
    alive = [(p.get("info") or {}) for p in ((state or {}).get("evo") or {}).get("population", [])
             if p.get("birth", 0) >= first_child]
    rescore = [i for i in (state or {}).get("rescore", {}).get("info", []) if isinstance(i, dict)]
    rep.failures([("logbook `errors` (all children)", logbook_reasons(rows)),
                  (f"checkpoint: pool ({len(pool_info)} evaluated)",
                   [i.get("reason") for i in pool_info]),
                  (f"checkpoint: pool re-scored ({len(rescore)} evaluated)",
                   [i.get("reason") for i in rescore]),
                  (f"checkpoint: children alive ({len(alive)})",
                   [i.get("reason") for i in alive if not i.get("error")]),
                  ("elimination.json", [e.get("reason") for e in elimination or []])],
                 "logbook.csv, checkpoint.pt, elimination.json")
    rep.failed_column(rows, "cycle")
    rep.para("A failed candidate gets fitness 0 (the logbook's `zeros` column counts them in "
             "the population); a failed child is re-mutated and then discarded (logbook "
             "`remutated`, `discarded`) or, with `--failed-child insert`, inserted (logbook "
             "`inserted_failed`); a child whose training turned non-finite after the pre-screen "
             "is inserted with its best validation accuracy so far (logbook "
             "`diverged_inserted`; with `--diverged-child failed` it is a failed child); the "
             "reasons of children that aged out are kept only when the evaluation itself failed "
             "(logbook `errors`).")
    return "complete" if results is not None else \
        "incomplete (no results.json; `deapnn nlfs --resume` continues)"


# --- EvoMAL -------------------------------------------------------------------------------------
def _evomal_populations(config: dict) -> int:
    """The populations an EvoMAL run evaluates: ``generations``, the initial one included (a
    config.json written when it counted the generations after it is migrated,
    :data:`deapnn.results.MIGRATIONS`)."""
    return int(config.get("generations", 0))


def evomal(rep: Report, config: dict, result) -> str:
    """``result``: the run's :class:`~deapnn.evomal.run.EvoMALSummary` (None: not finished)."""
    rows = read_rows(os.path.join(rep.run_dir, "logbook.csv"))
    task = result.task if result else None
    metric = "MSE" if task == "regression" else "error" if task else "metric"

    rep.heading("Results")
    final = result.final if result else None
    if result is None:
        rep.para(f"No `{RESULTS_FILE}` yet: the run has not finished (search: "
                 f"{len(rows)} of {_evomal_populations(config)} generations logged; "
                 "the final comparison writes it).")
    elif final:
        rep.para(f"Final training: {plain(config.get('final_steps'))} SGD steps, "
                 f"{len(config.get('seeds', []))} seeds, test {metric} on "
                 f"{plain(config.get('dataset'))} (lower is better).")
        rep.table(["loss", f"test {metric} (mean ± std)", "per seed"],
                  [[code(name), mean_std(r["mean"], r["std"]),
                    " ".join(num(v) for v in r.get("test", []))] for name, r in final.items()])
    elif result.tuned:
        tuned_section(rep, result.tuned)
    else:
        rep.para("No final comparison: no candidate loss passed the rejection protocol.")
    scale_section(rep, result.scale if result else None)
    comparison_files(rep)
    if result:
        rep.para(f"Archive: {plain(result.archive_size)} distinct losses evaluated, "
                 f"{plain(result.rejected)} rejected or failed.")

    rep.heading("Best formulas")
    state, why = read_checkpoint(os.path.join(rep.run_dir, "checkpoint.pt"))
    best = result.best if result else []
    if not best and state:   # a running or killed search: its hall of fame so far
        hof = (state.get("evomal") or {}).get("halloffame") or []
        best = [{"tree": h[0], "fitness": h[1], "sympy": "", "learned": ""} for h in hof
                if isinstance(h, (list, tuple)) and len(h) == 2]
        if best:
            rep.para("From the checkpoint's hall of fame (the search has not finished):")
    if best:
        rep.table(["rank", f"val {metric}", "tree", "simplified (sympy)", "status"],
                  [[str(i), num(b.get("fitness")), code(b.get("tree")), code(b.get("sympy")),
                    b.get("reason") or "ok"] for i, b in enumerate(best, 1)])
        if best[0].get("learned"):
            rep.para("Learned edge weights of the best: " + code(best[0]["learned"]))
    else:
        rep.para("No best formulas recorded yet.")

    rep.heading("Curves")
    rep.plot("fitness", {"best (min)": column(rows, "gen", "min"),
                         "median": column(rows, "gen", "median")},
             "generation", f"validation {metric}", "EvoMAL search progress",
             alt="search fitness per generation")
    rep.image("learning_curve.png", f"test {metric} during the final training")
    rep.heading("Search progress", 3)
    _progress(rep, rows, "gen", ["nevals", "cached", "min", "median", "max", "rejected"])

    rep.heading("Timings")
    _timings(rep, rows, "generation")

    rep.heading("Failures")
    if state is None and why != "no checkpoint":
        rep.para(f"Checkpoint unreadable: {why}")
    entries = (((state or {}).get("evomal") or {}).get("archive") or {}).get("entries", {})
    entries = [e for e in entries.values() if isinstance(e, dict)]
    final_failed = [f"final {name} training diverged" for name, r in (final or {}).items()
                    for v in r.get("test", []) if not finite(v)]
    if entries:   # every distinct loss, once: rejections and evaluation errors alike
        sources = [(f"checkpoint: archive ({len(entries)} distinct losses)",
                    [e.get("error") or e.get("reason") for e in entries])]
    else:
        sources = [("logbook `errors`", logbook_reasons(rows)),
                   (f"{RESULTS_FILE}: best formulas", [b.get("reason") for b in best])]
    rep.failures(sources + [(f"{RESULTS_FILE}: final training", final_failed)],
                 f"checkpoint.pt archive, logbook.csv, {RESULTS_FILE}")
    rep.failed_column(rows, "generation")
    rep.para("A rejected or failed loss gets fitness ∞ (the logbook's `rejected` column counts "
             "them in the population).")
    if result is None:
        return f"incomplete (no {RESULTS_FILE}; `deapnn evomal --resume` continues)"
    return "complete" if final else "complete (no loss passed the rejection protocol)"
