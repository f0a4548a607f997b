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


def resume_hint(args) -> str:
    """How to continue a run stopped by a signal or a failed write, as the end of the line that
    says so: ``, resume with --resume DIR`` when DIR holds a run (its ``config.json``: a run
    whose start failed holds none); for ``deapnn compare``, which has no ``--resume``, to run it
    again when its finished trainings were kept; else nothing."""
    command = getattr(args, "command", None)
    if command == "compare":
        state = getattr(args, "state_file", None)
        if state and os.path.isfile(state):
            return (", run the same deapnn compare again to continue (its finished trainings "
                    f"are kept in {state})")
        return ""
    run_dir = getattr(args, "resume", None) or getattr(args, "out", None)
    if command != "report" and hasattr(args, "resume") and run_dir \
            and os.path.isfile(os.path.join(run_dir, "config.json")):
        return f", resume with --resume {run_dir}"
    return ""


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
                        "the SCOOP workers (one is stuck), evaluate the rest here; default 3600 "
                        "(a worker that died is known within seconds)")
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


def hostfile_hosts(path: str) -> list[str] | None:
    """The hosts a SCOOP hosts file (:func:`check_hostfile`) lists, in order (None when it
    cannot be read any more)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [text.split()[0] for text in (line.split("#", 1)[0] for line in fh)
                    if text.strip()]
    except (OSError, UnicodeDecodeError):
        return None


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
    if message.startswith(name + " must ") or message.startswith(name + ": "):
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


#: commands with nothing to spread over workers: --workers is accepted and ignored
SERIAL_COMMANDS = ("train",)
#: the script SCOOP runs as ``__main__`` on every worker: located, never imported here, because
#: importing it applies a worker's settings (``--device``, ``sys.path``) and would close an import
#: circle with deapnn.cli, which the script imports to run the command
SCOOP_ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scoop_entry.py")


def scoop_command(args, argv: list[str], supervisor: str) -> list[str]:
    """``python -m deapnn.commands.scoop_launch -n N [--hostfile F] scoop_entry.py
    --deapnn-supervisor PORT:TOKEN <argv>`` (``scoop_launch``: SCOOP's launcher, see there)."""
    from ..heartbeat import FLAG
    cmd = [sys.executable, "-m", "deapnn.commands.scoop_launch", "-n", str(args.workers)]
    if getattr(args, "quiet", False):
        cmd.append("-q")                  # no SCOOP launcher INFO lines either
    if args.hostfile:
        cmd += ["--hostfile", os.path.abspath(args.hostfile)]
    return cmd + [SCOOP_ENTRY, FLAG, supervisor, *argv]


def relaunch_under_scoop(args, argv: list[str]) -> int | None:
    """With ``--workers N > 1`` outside SCOOP, run this same command under
    ``python -m scoop -n N [--hostfile F]`` and return its exit code; otherwise None.

    Its stdout/stderr are this process's. Without ``--hostfile`` the N workers run on this host
    (batch-system host lists in the environment are ignored then, so a job step asking for N
    workers gets N local ones); with it, SCOOP spreads them over the listed hosts, the origin on
    the first. The run is supervised (:func:`deapnn.commands.supervise.run_supervised`): every
    way out of it ends its processes, here and on the other hosts; a dead worker is known in
    seconds; a signal to this process ends the run through its origin, which says so in one
    line; the exit code comes back over the supervisor's connection (nothing is written to
    disk).
    """
    from ..runtime import running_under_scoop, scoop_launch_env
    if args.workers <= 1 or running_under_scoop():
        return None
    if getattr(args, "command", None) in SERIAL_COMMANDS:
        print(f"deapnn: --workers has no effect on `{args.command}` (one training); running it "
              "here", file=sys.stderr)
        return None
    from .supervise import run_supervised
    return run_supervised(lambda supervisor: scoop_command(args, argv, supervisor),
                          scoop_launch_env(local=not args.hostfile), local=not args.hostfile,
                          hint=lambda: resume_hint(args))
