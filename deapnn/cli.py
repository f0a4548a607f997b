"""The ``deapnn`` command line.

Importing it is cheap: :func:`main` installs the SIGTERM/SIGHUP handlers (:mod:`deapnn.signals`)
before it imports the commands (and torch with them), so a signal during start-up ends the
command in one line like any other.
"""
from __future__ import annotations

import argparse
import errno
import signal
import sys
import warnings

from . import signals
from .commands.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError,
                              relaunch_under_scoop)
from .parallel import SettingError, check_environment
from .signals import Terminated  # noqa: F401 - deapnn.cli.Terminated, as before


def _commands() -> list:
    from .commands import compare, datasets, defaults, evomal, gls, nlfs, report, train
    return [datasets, defaults, train, gls, nlfs, evomal, report, compare]


def __getattr__(name):
    if name == "COMMANDS":       # the command modules, imported when first asked for
        return _commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2, no usage dump, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="deapnn", description="Deep learning inside DEAP: Gradient Lexicase "
                     "Selection, neural loss function search (NLFS) and EvoMAL.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in _commands():
        command.register(sub)
    return parser


def _checked(args) -> None:
    """``args.check(args)``; the deprecation warnings it raises (a former name or form deapnn
    still accepts) are printed as one ``deapnn: warning:`` line each once it passed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("default", category=DeprecationWarning, module=r"deapnn\b")
        args.check(args)
    from .runtime import running_under_scoop
    for w in caught:
        if issubclass(w.category, DeprecationWarning) and not running_under_scoop():
            print(f"deapnn: warning: {w.message}", file=sys.stderr)
        elif not issubclass(w.category, DeprecationWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def main(argv: list[str] | None = None, *, program: bool | None = None) -> int:
    """Run a ``deapnn`` command line; its exit code. ``program`` (default: ``argv`` is None, as
    the ``deapnn`` script calls it): this command is the whole process, whose signal handlers
    stay to its end (a signal once the outcome is decided is ignored); otherwise the previous
    handlers are put back."""
    program = argv is None if program is None else program
    previous = signals.install()            # first: before the commands import torch
    argv = sys.argv[1:] if argv is None else list(argv)
    args = None
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "check", None):
            _checked(args)
        check_environment()
        code = relaunch_under_scoop(args, argv) if hasattr(args, "workers") else None
        if code is not None:
            return code
        return args.func(args)
    except (UsageError, SettingError, FileNotFoundError) as exc:
        print(f"deapnn: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        signals.freeze()
        print("deapnn: interrupted" + _resume_hint(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as exc:
        signals.freeze()
        reason = signals.stop_reason()       # stopped from inside (deapnn.heartbeat): why
        if reason:
            print(f"deapnn: error: {reason}" + _resume_hint(args), file=sys.stderr)
            return EXIT_FAILED
        name = "" if exc.signum == signal.SIGTERM else f" ({exc.name})"
        print(f"deapnn: terminated{name}" + _resume_hint(args), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:    # the environment failed: disk full, read-only, size limit...
        print(f"deapnn: error: {os_error_line(exc)}" + _resume_hint(args), file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # run-level failures (bad checkpoint, resume mismatch): one line
        from .checkpoint import CheckpointError
        from .rundir import RunDirError
        if isinstance(exc, (CheckpointError, RunDirError)):
            print(f"deapnn: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise
    finally:
        if program:
            signals.exiting()
        else:
            signals.restore(previous)


#: errors of a system call the environment refused, and what to do about them
_WRITE_ERRNOS = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
                 errno.EROFS: "remount it writable or choose another directory",
                 errno.EACCES: "check the permissions", errno.EPERM: "check the permissions",
                 errno.EFBIG: "the file-size limit, ulimit -f, was reached"}
#: of those, the ones only a write meets
_WRITE_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def os_error_line(exc: OSError) -> str:
    """``cannot write FILE: No space left on device (free some space)``: the file and the
    cause of a failed system call, without a traceback."""
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = _WRITE_ERRNOS.get(exc.errno)
    if exc.filename is None:
        return what + (f" ({hint})" if hint else "")
    verb = "cannot write" if exc.errno in _WRITE_ONLY else "cannot access"
    return f"{verb} {exc.filename}: {what}" + (f" ({hint})" if hint and hint != what else "")


def _resume_hint(args) -> str:
    from .commands.common import resume_hint
    return resume_hint(args)


if __name__ == "__main__":
    sys.exit(main())
