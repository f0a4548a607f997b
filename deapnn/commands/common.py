"""Arguments and checks shared by every ``deapnn`` subcommand."""
from __future__ import annotations

import argparse
import math
import os
import sys


class UsageError(ValueError):
    """A bad command-line value: reported as one line, exit code 2, before any work starts."""


def add_common_args(parser: argparse.ArgumentParser, *, out_default: str | None = None) -> None:
    """--seed --device --out --resume --quiet --workers --hostfile --root --download."""
    g = parser.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="run seed (python, numpy, torch)")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    g.add_argument("--out", default=out_default, help="run directory to write")
    g.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run stored in DIR (its config.json wins over other flags)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--workers", type=int, default=1,
                   help="evaluate in parallel with N SCOOP workers (re-launches under python -m scoop)")
    g.add_argument("--hostfile", default=None, help="SCOOP hosts file for multi-host runs")
    d = parser.add_argument_group("data")
    d.add_argument("--root", default=None, help="data directory for torchvision datasets")
    d.add_argument("--download", action="store_true", help="let torchvision download missing files")


def check_common(args) -> None:
    """Validate the shared arguments (raises :class:`UsageError`)."""
    from ..runtime import VALID_DEVICES
    if args.device.split(":")[0] not in VALID_DEVICES:
        raise UsageError(f"unknown device {args.device!r}; valid: {', '.join(VALID_DEVICES)} or cuda:N")
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.hostfile and not os.path.exists(args.hostfile):
        raise UsageError(f"hosts file {args.hostfile!r} not found")
    if args.resume and not os.path.isdir(args.resume):
        raise UsageError(f"--resume {args.resume!r}: no such run directory")


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


def progress(total: int, desc: str, quiet: bool, unit: str = "it"):
    """A tqdm progress bar on stderr, or a silent stand-in when ``quiet``."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def relaunch_under_scoop(args, argv: list[str]) -> int | None:
    """With ``--workers N > 1`` outside SCOOP, run this same command under
    ``python -m scoop -n N [--hostfile F]`` and return its exit code; otherwise None."""
    from ..runtime import running_under_scoop
    if args.workers <= 1 or running_under_scoop():
        return None
    import subprocess
    from . import scoop_entry
    cmd = [sys.executable, "-m", "scoop", "-n", str(args.workers)]
    if args.hostfile:
        cmd += ["--hostfile", args.hostfile]
    cmd += [scoop_entry.__file__, *argv]
    return subprocess.call(cmd)
