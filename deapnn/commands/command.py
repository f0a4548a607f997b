"""One shape for every run command (issue 21, "One truth": flags): a :class:`Command` names its
configuration class, its runner and how its summary is printed; the flags, the checks, the
open-or-resume of the run directory and the exit code are the same code for all of them.

    argparse (flags generated from the configuration's fields)
      → configuration (validated when made; a bad value is one line naming its flag)
      → run directory (fresh, or ``--resume DIR``: config.json defines the run; a typed flag
        that equals the stored value is accepted, one that differs is refused)
      → runner(cfg, rundir, map_fn=, progress=, log=) → summary
      → summary printed, exit code from its failures (0, 3 some jobs failed, 1 all did)

The runner runs holding the run directory's lock (:meth:`deapnn.rundir.RunDir.locked`: a second
process is refused) and records the run's environment first (``environment.json``,
:mod:`deapnn.environment`; a resume on a machine whose numerics differ says so in one warning
line). ``--resume`` of a finished run (its ``results.json`` stored; for GLS, with
no failed job, which ``--resume`` retries) runs nothing and changes nothing: it reprints the
stored summary and exits with its code.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import partial
from collections.abc import Callable

from ..results import import_object
from .common import UsageError, add_common_args, check_common, config_usage_error
from .flags import (add_config_flags, flags_by_field, given_values, resume_conflicts,
                    warn_deprecated)


@dataclass(frozen=True)
class Command:
    """A run command (its configuration class: :data:`deapnn.results.RUN_TYPES`).
    ``runner``/``finish``: ``"module:name"`` import paths of its runner
    ``(cfg, rundir, *, map_fn, progress, log) -> Summary`` and of
    ``finish(summary, rundir, args) -> exit code`` (prints the summary); ``sections``:
    help sections in display order; ``prepare(args, values)``: settings this invocation
    derives (e.g. NLFS's children in flight = ``--workers``); ``small_models``: one torch
    thread per process unless ``DEAPNN_THREADS`` says otherwise; ``quiet_workers``: no
    progress bars with several SCOOP workers; ``retries_failures``: ``--resume`` of a run whose
    stored summary has failed jobs runs them again (GLS) instead of reprinting it. A
    configuration field named ``device`` takes ``--device``."""
    name: str
    help: str
    description: str
    runner: str
    finish: str
    out_default: str | None = None
    sections: tuple = ()
    prepare: Callable | None = None
    small_models: bool = False
    quiet_workers: bool = False
    retries_failures: bool = False

    @property
    def config_class(self):
        from ..results import config_class
        return config_class(self.name)

    # --- command line -------------------------------------------------------------------
    def register(self, subparsers) -> None:
        p = subparsers.add_parser(self.name, help=self.help, description=self.description)
        groups = add_config_flags(p, self.config_class, sections=self.sections)
        add_common_args(p, out_default=self.out_default, groups=groups)
        p.set_defaults(func=self.run, check=self.check)

    def _invocation(self, args) -> dict:
        """The invocation settings typed on this command line, and ``--device`` for a
        configuration with an invocation setting ``device``."""
        names = self.config_class.invocation_settings()
        values = {name: getattr(args, name) for name in names if hasattr(args, name)}
        return {**values, "device": args.device} if "device" in names else values

    def _values(self, args) -> dict:
        values = {**given_values(self.config_class, args), **self._invocation(args)}
        return self.prepare(args, values) if self.prepare else values

    def configure(self, args):
        """``(run directory or None, validated configuration)`` of this invocation."""
        from ..config import ConfigError
        cls = self.config_class
        flags = flags_by_field(cls)
        if args.resume:
            from ..rundir import RunDir
            rundir = RunDir.resume(args.resume)
            check_data_file(rundir)
            cfg = rundir.stored(self.name, cls)
            conflicts = resume_conflicts(cls, cfg, args)
            if conflicts:
                raise UsageError(f"{conflicts[0]}: --resume continues the run its config.json "
                                 f"defines; drop the flag, or start a new run with --out")
            try:
                return rundir, cfg.for_invocation(**self._invocation(args))
            except ConfigError as exc:
                raise config_usage_error(exc, flags) from None
        try:
            return None, cls(**self._values(args))
        except ConfigError as exc:
            raise config_usage_error(exc, flags) from None

    def config_of(self, args):
        """The configuration these parsed flags define (a fresh run's)."""
        return self.configure(args)[1]

    def check(self, args) -> None:
        if getattr(args, "_conflicts", None):
            raise UsageError(args._conflicts[0])
        check_common(args)
        args._configured = self.configure(args)     # run() uses it: made (and warned) once
        self.check_resources(args, args._configured[1])
        self.check_fast_path(args, args._configured[1])
        warn_deprecated(args)

    def check_resources(self, args, cfg) -> None:
        """The run fits this host (:meth:`deapnn.config.Config.check_resources`: the memory
        of ``--workers`` processes here, one with ``--hostfile``), before anything is written;
        else the one-line error naming the flag that sets it."""
        from ..config import ConfigError
        try:
            cfg.check_resources(workers=1 if args.hostfile else args.workers)
        except ConfigError as exc:
            raise config_usage_error(exc, flags_by_field(self.config_class)) from None

    def check_fast_path(self, args, cfg) -> None:
        """:func:`check_fast_path` of this command's configuration."""
        check_fast_path(cfg, args.device, args.hostfile, flags_by_field(self.config_class))

    # --- the run ------------------------------------------------------------------------
    def run(self, args) -> int:
        from ..rundir import RunDir
        from ..runtime import configure_worker_threads, set_device
        set_device(args.device)
        if self.small_models:
            configure_worker_threads(None if os.environ.get("DEAPNN_THREADS") else 1)
        else:
            configure_worker_threads()
        rundir, cfg = getattr(args, "_configured", None) or self.configure(args)
        if rundir is None and args.out:
            from ..data.user_file import dataset_record
            rundir = RunDir.create(args.out, self.name, cfg, device=args.device,
                                   **dataset_record(getattr(cfg, "dataset", None)))
        if rundir is None:          # nothing kept (train without --out): nothing to lock
            return self._run(cfg, None, args)
        with rundir.locked():
            stored = self.finished(rundir, args) if args.resume else None
            if stored is not None:
                print(f"deapnn: {rundir.path} holds a finished run: its stored results "
                      "follow (nothing was run or changed)", file=sys.stderr, flush=True)
                return import_object(self.finish)(stored, rundir, args)
            record_environment(rundir, args)
            return self._run(cfg, rundir, args)

    def _run(self, cfg, rundir, args) -> int:
        from ..progress import progress
        from ..runtime import get_map
        quiet = args.quiet or (self.quiet_workers and args.workers > 1)
        summary = import_object(self.runner)(cfg, rundir, map_fn=get_map(),
                                     progress=partial(progress, quiet=quiet), log=_log)
        if getattr(cfg, "compile", False):
            from ..compiled import summary_line
            line = summary_line()
            if line:
                print(line, file=sys.stderr, flush=True)
        return import_object(self.finish)(summary, rundir, args)

    def finished(self, rundir, args):
        """The stored :class:`~deapnn.results.Summary` of the finished run in ``rundir``, or
        None when it has not finished (no ``results.json``; GLS: a failed job to retry). A
        ``results.json`` that does not hold the run's summary, or an invocation setting typed
        with a value other than the run's (evomal's ``--final-eval-every``: it would change
        the stored results), is refused in one line."""
        from ..results import read_summary
        from ..rundir import RunDirError
        try:
            summary = read_summary(rundir.path)
        except ValueError as exc:
            raise RunDirError(f"cannot resume {rundir.path}: {exc}; move it away to finish "
                              "the run again") from None
        if summary is None or (self.retries_failures and summary.failures):
            return None
        stored = rundir.stored(self.name, self.config_class)
        flags = flags_by_field(self.config_class)
        for name in self.config_class.invocation_settings():
            if name != "device" and hasattr(args, name) \
                    and getattr(args, name) != getattr(stored, name):
                raise UsageError(f"{flags.get(name, name)}: {rundir.path} holds a finished "
                                 "run, whose stored results it would change; drop the flag to "
                                 "print them, or start a new run with --out")
        return summary


def check_fast_path(cfg, device: str, hostfile=None, flags: dict | None = None) -> None:
    """``--precision fp16`` is refused (:class:`UsageError`, one line) where the run would
    train on CPU: ``--device cpu``, or ``auto`` without CUDA here and no ``--hostfile``."""
    from ..config import ConfigError
    if not hasattr(cfg, "fast_path"):
        return
    base = device.split(":")[0]
    if base == "auto" and not hostfile:
        from ..runtime import cuda_device_count
        base = "cuda" if cuda_device_count() else "cpu"
    if base != "cpu":
        return
    try:
        cfg.fast_path().check("cpu")
    except ConfigError as exc:
        raise config_usage_error(exc, flags) from None


def record_environment(rundir, args) -> None:
    """The run's ``environment.json`` (:func:`deapnn.environment.record`): written by a fresh
    run; compared by ``--resume`` with the machine it continues on (one warning line naming
    what differs) and updated."""
    from ..environment import collect, record
    from .common import hostfile_hosts
    hosts = hostfile_hosts(args.hostfile) if getattr(args, "hostfile", None) else None
    record(rundir, resumed=bool(args.resume),
           current=collect(hosts=hosts, workers=getattr(args, "workers", None)))


def check_data_file(rundir) -> None:
    """The user's data file a run recorded (:func:`deapnn.data.user_file.dataset_record`) is still
    there, unchanged; else the one-line usage error of ``--resume``."""
    from ..data.user_file import UserDataError, check_record
    try:
        check_record(rundir.config)
    except UserDataError as exc:
        raise UsageError(f"--resume {rundir.path}: {exc}") from None


def _log(text: str) -> None:
    """A line on stdout, through tqdm so a progress bar is redrawn below it."""
    from tqdm.auto import tqdm
    tqdm.write(text, file=sys.stdout)


__all__ = ["Command"]
