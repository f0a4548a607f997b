"""``deapnn gls``: Gradient Lexicase Selection against its comparison arms, over several seeds
(flags from :class:`~deapnn.gls.GLSConfig` → :func:`~deapnn.gls.run_gls` → printed table)."""
from __future__ import annotations

from .command import Command
from .common import report_failures


def finish(summary, rundir, args) -> int:
    print(summary.render())
    print(f"run directory: {rundir.path}")
    return report_failures(summary, rundir.path)


COMMAND = Command(
    name="gls", help="Gradient Lexicase Selection vs SGD / matched SGD / random",
    description="Gradient Lexicase Selection (Ding & Spector 2022) against its comparison "
                "arms, paired by seed.",
    runner="deapnn.gls.runner:run_gls",
    finish="deapnn.commands.gls:finish", out_default="runs/gls", retries_failures=True,
    sections=("data", "training", "SGD", "GLS", "run"), quiet_workers=True)
register = COMMAND.register
