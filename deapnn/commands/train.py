"""``deapnn train``: the SGD baseline on one dataset / model / loss (flags from
:class:`~deapnn.baseline.TrainRunConfig` → :func:`~deapnn.baseline.run_train` → printed result)."""
from __future__ import annotations

from .command import Command
from .common import report_failures


def finish(summary, rundir, args) -> int:
    print(summary.render())
    return report_failures(summary)


COMMAND = Command(
    name="train", help="train the SGD baseline and report test accuracy",
    description="Train one network with SGD (optionally with a loss of the library or a loss "
                "formula) and report its test score.",
    runner="deapnn.baseline:run_train",
    finish="deapnn.commands.train:finish", sections=("data", "training", "SGD", "run"))
register = COMMAND.register
