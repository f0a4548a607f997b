"""The ``deapnn`` command line."""
from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
import warnings

from .commands import compare, datasets, defaults, evomal, gls, nlfs, report, train
from .commands.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE,
                              UsageError, relaunch_under_scoop)

COMMANDS = [datasets, defaults, train, gls, nlfs, evomal, report, compare]


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


class Terminated(BaseException):
    """SIGTERM arrived (a batch system pre-empting the job): unwound like Ctrl-C, so every
    atomic write in progress is finished or abandoned (its temporary file removed)."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _run_dir_of(args) -> str | None:
    return getattr(args, "resume", None) or getattr(args, "out", None)


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = _install(signal.SIGTERM, _on_sigterm)
    try:
        if getattr(args, "check", None):
            _checked(args)
        code = relaunch_under_scoop(args, argv) if hasattr(args, "workers") else None
        if code is not None:
            return code
        return args.func(args)
    except (UsageError, FileNotFoundError) as exc:
        print(f"deapnn: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("deapnn: interrupted" + _resume_hint(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("deapnn: terminated" + _resume_hint(args), file=sys.stderr)
        return EXIT_TERMINATED
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
        _install(signal.SIGTERM, previous)


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
    run_dir = _run_dir_of(args)
    if run_dir and getattr(args, "command", None) != "report" and os.path.isdir(run_dir):
        return f", resume with --resume {run_dir}"
    return ""


def _install(signum, handler):
    """Set a signal handler where Python allows it (the main thread); return the old one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
