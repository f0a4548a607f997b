"""``deapnn evomal``: evolve a symbolic loss with EvoMAL (Raymond et al. 2023, TPAMI) and compare
the best learned loss with MSE / cross-entropy on the test split.

    deapnn evomal --dataset diabetes --population-size 25 --generations 10 --out runs/evomal
    deapnn evomal --resume runs/evomal

A thin adapter: flags from :class:`~deapnn.evomal.config.EvoMALRunConfig` →
:func:`~deapnn.evomal.run.run_evomal` → printed summary.
"""
from __future__ import annotations

import sys

from .command import Command
from .common import report_failures


def finish(summary, rundir, args) -> int:
    from ..evomal.compare import FINAL_FILE, TUNED_FILE
    from ..evomal.run import PLOT_FILE
    from ..results import RESULTS_FILE
    print(summary.render())
    if summary.tuned is not None or summary.final is not None:
        files = (TUNED_FILE,) if summary.tuned is not None else (FINAL_FILE, PLOT_FILE)
        print(f"\nrun directory: {rundir.path} (logbook.csv, checkpoint.pt, {RESULTS_FILE}, "
              f"{', '.join(files)})", file=sys.stderr)
    return report_failures(summary)


COMMAND = Command(
    name="evomal", help="EvoMAL: evolve a symbolic loss function (GP + unrolled local search) "
                        "and compare it with MSE / CE",
    description="EvoMAL (Raymond et al. 2023): genetic programming over loss trees, each "
                "turned into a meta-loss network trained by unrolled differentiation.",
    runner="deapnn.evomal.run:run_evomal",
    finish="deapnn.commands.evomal:finish", out_default="runs/evomal",
    sections=("search (reference defaults: Raymond et al. 2023, Table 2)", "evaluation",
              "SGD", "final comparison", "data", "run"),
    small_models=True)
register = COMMAND.register
