"""Arguments and checks shared by every ``deapnn`` subcommand."""
from __future__ import annotations

import argparse
import math
import os
import sys


#: exit codes of every command (README "Exit codes")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


def report_failures(summary, resume_dir: str | None = None) -> int:
    """The exit code of a run from its :class:`deapnn.results.Summary` (``summary.jobs`` jobs,
    ``summary.failures`` the failed ones), after saying so in its last line on stderr: 0 when
    none failed, :data:`EXIT_PARTIAL` when some did (the results cover the others),
    :data:`EXIT_FAILED` when all did. Reasons are counted, most frequent first. ``resume_dir``:
    the run directory whose ``--resume`` retries the failed jobs (GLS), named in the line; None
    where resuming would not retry them."""
    failures, total = summary.failures, summary.jobs
    if not failures:
        return EXIT_OK
    from collections import Counter
    reasons = Counter(f.split(": ", 1)[-1] for f in failures)
    counted = "; ".join(f"{n}× {why}" for why, n in reasons.most_common())
    if len(failures) >= total:
        retry = (f"; nothing was measured. Fix the cause, then `--resume {resume_dir}` retries "
                 "them") if resume_dir else ""
        print(f"deapnn: error: all {total} jobs failed ({counted}){retry}", file=sys.stderr)
        return EXIT_FAILED
    retry = f". `--resume {resume_dir}` retries the failed ones" if resume_dir else ""
    print(f"deapnn: {len(failures)} of {total} jobs failed ({counted}); the results above cover "
          f"the other {total - len(failures)}{retry}", file=sys.stderr)
    return EXIT_PARTIAL


class UsageError(ValueError):
    """A bad command-line value: reported as one line, exit code 2, before any work starts."""


def argument_type(parse):
    """``parse`` as an argparse ``type``: its ``ValueError`` becomes argparse's one-line error
    naming the flag."""
    def read(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    read.__name__ = getattr(parse, "__name__", "value")
    return read


def add_common_args(parser: argparse.ArgumentParser, *, out_default: str | None = None,
                    groups: dict | None = None) -> None:
    """The settings of an invocation, not of the run: --device --out --resume --quiet
    --workers --hostfile --eval-timeout --worker-timeout (in ``groups["run"]`` when given)."""
    g = (groups or {}).get("run") or parser.add_argument_group("run")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    g.add_argument("--out", default=None, help="run directory to write" + (
        f" [default: {out_default}]" if out_default else " (default: none, nothing is kept)"))
    parser.set_defaults(default_out=out_default)
    g.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run stored in DIR (its config.json defines the run: a "
                        "flag given with it must equal the stored value)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--workers", type=int, default=1,
                   help="evaluate in parallel with N SCOOP workers (re-launches under "
                        "python -m scoop)")
    g.add_argument("--hostfile", default=None, help="SCOOP hosts file for multi-host runs")
    g.add_argument("--worker-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --workers: after SECONDS without any evaluation coming back from "
                        "the SCOOP workers (one died), evaluate the rest here; default 3600")
    g.add_argument("--eval-timeout", type=float, default=None, metavar="SECONDS",
                   help="time limit of one evaluation; an overrun gives that individual the "
                        "worst fitness (reason in the logbook), the run goes on")


def check_device(name: str, *, local: bool = True) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; with ``local`` (no ``--hostfile``: this host
    runs the evaluations) a CUDA device must exist here."""
    from ..runtime import VALID_DEVICES, cuda_device_count
    base, sep, index = name.partition(":")
    if base not in VALID_DEVICES or (sep and (base != "cuda" or not index.isdigit())):
        raise UsageError(f"--device: unknown device {name!r}; valid: "
                         f"{', '.join(VALID_DEVICES)} or cuda:N")
    if base != "cuda" or not local:
        return
    count = cuda_device_count()
    if count == 0:
        raise UsageError(f"--device {name}: CUDA is not available on this host "
                         "(use --device cpu or auto)")
    if sep and int(index) >= count:
        raise UsageError(f"--device {name}: this host has {count} CUDA device(s), "
                         f"cuda:0..cuda:{count - 1}")


def check_hostfile(path: str) -> None:
    """A SCOOP hosts file: one ``host [workers]`` a line (``#`` comments, blank lines)."""
    import re
    line_re = re.compile(r"^[A-Za-z0-9_.\-\[\],]+(\s+\d+)?$")
    if not os.path.isfile(path):
        raise UsageError(f"--hostfile {path!r}: no such file")
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--hostfile {path!r}: unreadable ({exc})") from None
    hosts = 0
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not line_re.match(text):
            raise UsageError(f"--hostfile {path!r} line {number}: expected `host [workers]`, "
                             f"got {text[:60]!r}")
        hosts += 1
    if not hosts:
        raise UsageError(f"--hostfile {path!r} lists no host (one `host [workers]` a line)")


def check_writable_dir(path: str, flag: str = "--out") -> None:
    """``path`` can be a directory this process creates or writes in: it is one or does not
    exist yet, its nearest existing ancestor is a directory, and that one is writable."""
    path = os.path.abspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path}: exists and is not a directory")
    probe = path
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise UsageError(f"{flag} {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in {probe} (permission denied or "
                         "read-only file system)")


def check_common(args) -> None:
    """Validate the shared arguments (raises :class:`UsageError`)."""
    check_device(args.device, local=not args.hostfile)
    if getattr(args, "out", None) == "" or getattr(args, "resume", None) == "":
        flag = "--out" if getattr(args, "out", None) == "" else "--resume"
        raise UsageError(f"{flag} must name a directory, got an empty path")
    if args.resume and not os.path.isdir(args.resume):
        raise UsageError(f"--resume {args.resume!r}: no such run directory")
    if args.resume and args.out:
        raise UsageError("--out and --resume exclude each other: a resumed run stays in its "
                         "directory")
    if args.resume:
        check_writable_dir(args.resume, "--resume")
    else:
        args.out = args.out or getattr(args, "default_out", None)
        if args.out:
            check_writable_dir(args.out)
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.hostfile:
        check_hostfile(args.hostfile)
    timeout = getattr(args, "eval_timeout", None)
    if timeout is not None:
        check_positive(timeout, "--eval-timeout")
        # read by deapnn.failsafe.default_timeout() where evaluators are built (then pickled)
        os.environ["DEAPNN_EVAL_TIMEOUT"] = repr(float(timeout))
    worker_timeout = getattr(args, "worker_timeout", None)
    if worker_timeout is not None:
        check_positive(worker_timeout, "--worker-timeout")
        # read by deapnn.parallel.worker_timeout() in the SCOOP origin (which re-parses argv)
        os.environ["DEAPNN_WORKER_TIMEOUT"] = repr(float(worker_timeout))


def config_usage_error(exc, flags: dict | None = None) -> UsageError:
    """The one-line usage error of a :class:`deapnn.config.ConfigError`, naming the flag of its
    field (``weight_decay`` → ``--weight-decay``; ``flags`` maps fields whose flag is named
    otherwise, e.g. ``{"arms": "--compare"}``)."""
    message, name = str(exc), getattr(exc, "field", None)
    if name is None:
        return UsageError(message)
    flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
    if message.startswith(name + " must "):
        return UsageError(flag + message[len(name):])
    return UsageError(f"{flag}: {message}")


def check_choice(value, choices, what: str) -> None:
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; valid: {', '.join(sorted(choices))}")


def check_positive(value, what: str, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if not math.isfinite(value):   # nan slips through both comparisons below
        raise UsageError(f"{what} must be a finite number, got {value}")
    if (value < 0) if allow_zero else (value <= 0):
        raise UsageError(f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


#: first argument of scoop_entry.py: where the origin writes the command's exit code (SCOOP's
#: launcher exits 0 whatever its program returned, so the code travels through a file)
EXIT_FILE_FLAG = "--deapnn-exit-file"
#: commands with nothing to spread over workers: --workers is accepted and ignored
SERIAL_COMMANDS = ("train",)
#: the script SCOOP runs as ``__main__`` on every worker: located, never imported here, because
#: importing it applies a worker's settings (``--device``, ``sys.path``) and would close an import
#: circle with deapnn.cli, which the script imports to run the command
SCOOP_ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scoop_entry.py")


def scoop_command(args, argv: list[str], exit_file: str) -> list[str]:
    """``python -m scoop -n N [--hostfile F] scoop_entry.py --deapnn-exit-file X <argv>``."""
    cmd = [sys.executable, "-m", "scoop", "-n", str(args.workers)]
    if getattr(args, "quiet", False):
        cmd.append("-q")                  # no SCOOP launcher INFO lines either
    if args.hostfile:
        cmd += ["--hostfile", os.path.abspath(args.hostfile)]
    return cmd + [SCOOP_ENTRY, EXIT_FILE_FLAG, exit_file, *argv]


def relaunch_under_scoop(args, argv: list[str]) -> int | None:
    """With ``--workers N > 1`` outside SCOOP, run this same command under
    ``python -m scoop -n N [--hostfile F]`` and return its exit code; otherwise None.

    Its stdout/stderr are this process's. Without ``--hostfile`` the N workers run on this host
    (batch-system host lists in the environment are ignored then, so a job step asking for N
    workers gets N local ones); with it, SCOOP spreads them over the listed hosts, the origin on
    the first (the exit-code file is then written in the current directory, which SCOOP expects
    to be the same shared path on every host).
    """
    from ..runtime import running_under_scoop, scoop_launch_env
    if args.workers <= 1 or running_under_scoop():
        return None
    if getattr(args, "command", None) in SERIAL_COMMANDS:
        print(f"deapnn: --workers has no effect on `{args.command}` (one training); running it "
              "here", file=sys.stderr)
        return None
    import subprocess
    import tempfile
    env = scoop_launch_env(local=not args.hostfile)
    fd, exit_file = tempfile.mkstemp(prefix=".deapnn-exit-",
                                     dir=os.getcwd() if args.hostfile else None)
    os.close(fd)
    try:
        child = subprocess.Popen(scoop_command(args, argv, exit_file), env=env)
        try:
            rc = child.wait()
        except BaseException:          # Ctrl-C or SIGTERM here: stop the SCOOP run as well
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
        try:
            with open(exit_file, encoding="utf-8") as fh:
                text = fh.read().strip()
        except OSError:
            text = ""
        if text:
            return int(text)
        print(f"deapnn: error: the SCOOP run ended without an exit status (launcher exit {rc}); "
              "see the messages above", file=sys.stderr)
        return rc or 1
    finally:
        try:
            os.unlink(exit_file)
        except OSError:
            pass
