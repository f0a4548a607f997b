"""Report sections of ``deapnn train`` runs and of run types this version does not know."""
from __future__ import annotations

import os

from ..results import RESULTS_FILE
from .document import Report, code, column, file_span, finite, num, plain, read_rows, seconds

_REASON_COLUMNS = ("reason", "reasons", "failure", "failures", "error", "errors")


def logbook_reasons(rows: list[dict]) -> list[str]:
    """Failure reasons a logbook records per row: a ``reason`` column, or an ``errors`` JSON list
    of ``"<individual>: <reason>"`` (the individual's id or tree is dropped, so equal reasons
    count together)."""
    import json
    out = []
    for row in rows:
        for key in _REASON_COLUMNS:
            value = row.get(key)
            if not isinstance(value, str) or not value:
                continue
            items = [value]
            if value.startswith("["):
                try:
                    items = [str(v) for v in json.loads(value) if v]
                except ValueError:
                    pass
            if key == "errors":
                items = [v.partition(": ")[2] or v for v in items]
            out += items
    return out


def train(rep: Report, config: dict, summary) -> str:
    """``summary``: the run's :class:`~deapnn.baseline.TrainSummary` (None: not finished)."""
    rows = read_rows(os.path.join(rep.run_dir, "logbook.csv"))
    metric = next((k[4:] for k in (rows[0] if rows else {}) if k.startswith("val_")), None)
    if summary is not None:
        metric = summary.metric
    metric = metric or "accuracy"

    rep.heading("Results")
    if summary is None:
        rep.para(f"No `{RESULTS_FILE}`: the run did not finish ({len(rows)} of "
                 f"{plain(config.get('epochs', '?'))} epochs logged).")
    vals = [r.get(f"val_{metric}") for r in rows if finite(r.get(f"val_{metric}"))]
    best_val = (min(vals) if metric == "mse" else max(vals)) if vals else None
    table = [["epochs completed", f"{len(rows)} of {plain(config.get('epochs', '?'))}"],
             [f"test {metric}", num(summary.test if summary else None)],
             [f"best validation {metric}", num(best_val)],
             [f"final validation {metric}", num(vals[-1] if vals else None)],
             ["final train loss", num(rows[-1].get("train_loss") if rows else None)]]
    rep.table(["", "value"], table)
    regime = summary.classes if summary is not None else {}
    if regime.get("imbalance") is not None or regime.get("label_noise"):   # issue 25
        from .classes import class_section
        class_section(rep, [dict(summary.classes, arm="train", seed=config.get("seed", 0))],
                      {"train": "SGD"}, paired=False)

    rep.heading("Curves")
    rep.image_or_plot("loss.png", "training loss", "loss",
                      lambda: {"train loss": column(rows, "epoch", "train_loss")},
                      "epoch", "loss", f"{config.get('model')} on {config.get('dataset')}")
    rep.image_or_plot(f"val_{metric}.png", f"validation {metric}", f"val_{metric}",
                      lambda: {f"val {metric}": column(rows, "epoch", f"val_{metric}")},
                      "epoch", metric)

    rep.heading("Timings")
    total = summary.seconds if summary else None
    timing = [["training wall time", seconds(total)]]
    if finite(total) and rows:
        timing.append(["per epoch", seconds(total / len(rows))])
    rep.table(["", "time"], timing)
    rep.timing_table(rows, per="epoch")

    rep.heading("Failures")
    diverged = [summary.reason or "diverged"] if summary and summary.diverged else []
    rep.failures([("logbook.csv", logbook_reasons(rows)), (RESULTS_FILE, diverged)],
                 f"{RESULTS_FILE}, logbook.csv")
    rep.failed_column(rows, "epoch")
    if summary is None:
        return f"incomplete (no {RESULTS_FILE})"
    return "diverged" if summary.diverged else "complete"


def generic(rep: Report, config: dict, _summary) -> str:
    """Whatever a run directory of an unknown type holds: PNGs, logbook curves, timings (an
    unknown type has no summary: ``_summary`` is None)."""
    rows = read_rows(os.path.join(rep.run_dir, "logbook.csv"))
    rep.heading("Curves")
    pngs = sorted(f for f in os.listdir(rep.run_dir) if f.endswith(".png")
                  and not f.startswith("report"))
    for png in pngs:
        rep.image(png, png[:-4].replace("_", " "))
    if rows:
        x = next(iter(rows[0]))
        ys = [k for k in rows[0] if k != x and any(finite(r.get(k)) for r in rows)]
        rep.plot("logbook", {k: column(rows, x, k) for k in ys}, x, "value", "logbook.csv")
    rep.heading("Timings")
    rep.table(["", "time"], [["wall time (config.json to newest file)",
                              seconds(file_span(rep.run_dir, rep.stem))]])
    rep.timing_table(rows)
    rep.heading("Failures")
    rep.failures([("logbook.csv", logbook_reasons(rows))], "logbook.csv")
    rep.failed_column(rows, "row")
    return f"unknown run type {code(config.get('command'))}: generic summary"
