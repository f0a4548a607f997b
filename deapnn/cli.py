"""The ``deapnn`` command line."""
from __future__ import annotations

import argparse
import sys

from .commands import datasets, evomal, gls, nlfs, report, train
from .commands.common import UsageError, relaunch_under_scoop

COMMANDS = [datasets, train, gls, nlfs, evomal, report]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2, no usage dump, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="deapnn", description="Deep learning inside DEAP: Gradient Lexicase "
                     "Selection, neural loss function search (NLFS) and EvoMAL.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "check", None):
            args.check(args)
        code = relaunch_under_scoop(args, argv) if hasattr(args, "workers") else None
        if code is not None:
            return code
        return args.func(args)
    except (UsageError, FileNotFoundError) as exc:
        print(f"deapnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deapnn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # run-level failures (bad checkpoint, resume mismatch): one line
        from .checkpoint import CheckpointError
        from .rundir import RunDirError
        if isinstance(exc, (CheckpointError, RunDirError)):
            print(f"deapnn: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
