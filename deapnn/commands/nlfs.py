"""``deapnn nlfs``: neural loss function search (Morgan & Hougen 2024, §3).

A thin adapter: flags from :class:`~deapnn.nlfs.NLFSConfig` → :func:`~deapnn.nlfs.run_nlfs` →
the printed summary (:meth:`NLFSSummary.render <deapnn.nlfs.summary.NLFSSummary.render>`).
"""
from __future__ import annotations

from .command import Command
from .common import report_failures


def children_in_flight(args, values: dict) -> dict:
    """``--batch`` left out: as many children in flight per round as ``--workers``."""
    return {"batch": args.workers, **values}


def finish(summary, rundir, args) -> int:
    from ..results import RESULTS_FILE
    print(summary.render(), flush=True)
    if summary.best:
        print(f"run directory: {rundir.path} (losses.json, probe_curves.png, {RESULTS_FILE})")
    return report_failures(summary)


COMMAND = Command(
    name="nlfs", help="evolve classification losses as computational graphs (NLFS)",
    description="Neural loss function search: aging evolution of loss graphs over y, yhat, "
                "1, -1 with a regularised surrogate fitness (Morgan & Hougen 2024).",
    runner="deapnn.nlfs.run:run_nlfs",
    finish="deapnn.commands.nlfs:finish", out_default="runs/nlfs",
    sections=("search", "SGD", "final comparison", "data", "run"),
    prepare=children_in_flight, small_models=True)
register = COMMAND.register
