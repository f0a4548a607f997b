"""``deapnn compare RUN_DIR``: the tuned final comparison (:mod:`deapnn.comparison`) of a
finished ``deapnn nlfs`` or ``deapnn evomal`` run, without re-running its search.

    deapnn compare runs/nlfs --final-model cnn --seeds 5
    deapnn compare runs/evomal --lr-grid 1/4,1,4 --baselines focal

Reads the run's ``config.json`` and best losses from its ``results.json`` (any version, through
:func:`deapnn.results.read_summary`; NLFS: every reported loss; EvoMAL: the best loss with its
learned weights), trains them with the run's final training and writes ``comparison.json``
(``comparison-<final model>.json`` with ``--final-model``) into the run directory; every
finished training is kept in ``<output>.state.json``, so a killed comparison resumes where it
stopped. The output and its state file are checked before any training. ``comparison.json``
records its ``"settings"`` (the run's configuration hash and the comparison's settings): a
finished comparison run again with the same settings is reprinted, not retrained; and the
``"environment"`` it trained on (:func:`deapnn.environment.collect`; the run directory's own
``environment.json``, the search's, is left as it is). The run
directory's lock is held throughout (:meth:`deapnn.rundir.RunDir.locked`). Also home of the
flags every loss search shares for its final comparison (generated from
:class:`~deapnn.comparison.TuningSettings`).
"""
from __future__ import annotations

import dataclasses
import json
import os
from functools import partial

from ..comparison import TuningSettings
from ..fastpath import FastPathSettings
from .common import UsageError, check_device, config_usage_error
from .flags import add_config_flags, flags_by_field, given_values


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="tuned final comparison of a finished nlfs or evomal run",
        description="Re-score the best losses of a finished `deapnn nlfs` / `deapnn evomal` run "
                    "against tuned baselines: each loss gets its own learning rate from a grid "
                    "(chosen on the validation split with tuning seeds), then is trained with "
                    "fresh seeds and scored on test. The search is not re-run.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished nlfs or evomal run directory")
    # the tuned comparison's settings, as the searches declare them (the run's are the defaults)
    add_config_flags(p, TuningSettings, exclude=("tune",), title="comparison",
                     default_text="the run's")
    add_config_flags(p, FastPathSettings, default_text="the run's")
    p.add_argument("--out", metavar="FILE.json", default=None,
                   help="where to write the comparison [default: RUN_DIR/comparison.json, "
                        "RUN_DIR/comparison-<model>.json with --final-model]")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run, check=check)


def load_run(args):
    """``(rundir, kind, configuration with this invocation's overrides, found losses)`` of
    ``args.run_dir``; raises :class:`UsageError` for anything that is not a finished nlfs or
    evomal run, or a bad flag."""
    from ..config import ConfigError
    from ..rundir import RunDir, RunDirError
    if not os.path.isdir(args.run_dir):
        raise UsageError(f"{args.run_dir!r}: no such run directory")
    try:
        rundir = RunDir.resume(args.run_dir)
    except RunDirError as exc:
        raise UsageError(str(exc).replace("cannot resume", "cannot compare")) from None
    kind = rundir.config.get("command")
    if kind not in ("nlfs", "evomal"):
        raise UsageError(f"{args.run_dir} holds a {kind!r} run; deapnn compare needs an nlfs or "
                         f"evomal run")
    from ..data.user_file import UserDataError, check_record
    try:                # the run's own data file, unchanged
        check_record(rundir.config)
    except UserDataError as exc:
        raise UsageError(f"cannot compare {rundir.path}: {exc}") from None
    if kind == "nlfs":
        from ..nlfs.config import NLFSConfig
        cfg = rundir.stored("nlfs", NLFSConfig)
        summary = _read(rundir, "deapnn nlfs")
        from ..losses.graph import LossGraph
        found = [(e["name"], LossGraph.from_json(e["genome"]).to_json())
                 for e in summary.best if e.get("genome")]
    else:
        from ..evomal.config import EvoMALRunConfig
        cfg = rundir.stored("evomal", EvoMALRunConfig)
        summary = _read(rundir, "deapnn evomal")
        found = summary.best[:1] if summary.found_loss() else []
    if not found:
        raise UsageError(f"{args.run_dir}: the run found no loss to compare")
    values = {**given_values(TuningSettings, args), **given_values(FastPathSettings, args),
              "tune": True}
    try:
        cfg = dataclasses.replace(cfg, **values)
    except ConfigError as exc:
        raise config_usage_error(exc, {**flags_by_field(TuningSettings),
                                       **flags_by_field(FastPathSettings)}) from None
    if not cfg.seeds:
        raise UsageError("--seeds must list at least one seed (a comparison trains on them)")
    return rundir, kind, cfg, found


def _read(rundir, command: str):
    """The :class:`~deapnn.results.Summary` of the finished run in ``rundir`` (UsageError
    naming the file when it is missing or unreadable)."""
    from ..results import RESULTS_FILE, read_summary
    try:
        summary = read_summary(rundir.path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if summary is None:
        raise UsageError(f"{rundir.path}: no {RESULTS_FILE}; the {command} run has not finished")
    return summary


def output_path(args, rundir) -> str:
    if args.out:
        return args.out
    model = getattr(args, "final_model", None)       # absent: the flag was not given
    return rundir.file("comparison" + (f"-{model}" if model else "")
                       + ".json")


def state_path(out: str) -> str:
    """Where the finished trainings of the comparison written to ``out`` are kept."""
    return os.path.splitext(out)[0] + ".state.json"


def check_output(path: str, flag: str | None) -> None:
    """``path`` (the comparison or its state file) can be written: a regular file or none, in
    an existing directory this process may write in (checked before any training)."""
    where = f"{flag} {path}" if flag else path
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
        raise UsageError(f"{where}: exists and is not a regular file; choose another --out")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{where}: {parent} is not an existing directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{where}: cannot write in {parent} (permission denied or read-only "
                         "file system)")


def check(args) -> None:
    check_device(args.device)          # the comparison trains here: the device must exist
    if args.out is not None and not args.out.endswith(".json"):
        raise UsageError(f"--out must name a .json file, got {args.out!r}")
    rundir, _, cfg, _ = load_run(args)
    from .command import check_fast_path
    check_fast_path(cfg, args.device, flags=flags_by_field(FastPathSettings))
    out = output_path(args, rundir)
    for path in (out, state_path(out)):
        check_output(path, "--out" if args.out else None)


def _stored(path: str, check_record=None):
    """The JSON object in ``path`` (None when absent), checked by ``check_record``; a file
    that is not one is :class:`UsageError` naming it (nothing is overwritten)."""
    from ..rundir import read_json_object
    if not os.path.exists(path):
        return None
    try:
        data = read_json_object(path)
        return check_record(data) if check_record else data
    except ValueError as exc:
        raise UsageError(f"{path} is {exc}; move it away to compare again") from None


def settings_of(rundir, cfg) -> dict:
    """What a comparison's results depend on: the run (its configuration's hash) and the
    tuned comparison's settings (stored in ``comparison.json`` as ``"settings"``)."""
    tuning = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TuningSettings)}
    return json.loads(json.dumps({"run": rundir.identity(), "tuning": tuning}, default=str))


def run(args) -> int:
    from ..runtime import configure_worker_threads, set_device
    set_device(args.device)
    from ..parallel import env_setting
    configure_worker_threads(env_setting("DEAPNN_THREADS") or 1)
    rundir, kind, cfg, found = load_run(args)
    out = output_path(args, rundir)
    args.state_file = state_path(out)       # named by the hint of a stopped comparison
    with rundir.locked():
        settings = settings_of(rundir, cfg)
        done = _stored(out)
        if done is not None and done.get("settings") == settings:
            from ..comparison import table_lines
            try:
                lines = table_lines(done, done.get("scale"))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise UsageError(f"{out} does not hold a comparison ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}); move it away to compare again") from None
            for line in lines:
                print(line, flush=True)
            print(f"unchanged: {out} (a finished comparison with these settings; nothing was "
                  "trained)")
            return 0
        return _compare(args, rundir, kind, cfg, found, out, settings)


def _compare(args, rundir, kind, cfg, found, out, settings) -> int:
    from ..comparison import check_state, table_lines
    from ..progress import progress
    from ..rundir import atomic_write
    state = _stored(args.state_file, check_state)

    def save(s):
        atomic_write(args.state_file, lambda fh: json.dump(s, fh), mode="w")

    bar = partial(progress, quiet=args.quiet)
    from ..data import dataset_info
    spec = dataset_info(cfg.dataset)
    if kind == "nlfs":
        from ..nlfs.compare import compare_tuned, scale_reports
        record = compare_tuned(cfg, found, map, state=state, checkpoint=save, progress=bar,
                               log=print)
        scale = scale_reports(found, spec.num_classes)
    else:
        from ..evomal.compare import compare_tuned, scale_reports
        record = compare_tuned(found[0], cfg, spec.task, state=state, checkpoint=save,
                               progress=bar, log=print)
        scale = scale_reports(found, spec.task, spec.num_classes, cfg.nonnegative)
    from ..environment import collect
    record = {**record, "run": rundir.path, "command": kind, "scale": scale,
              "settings": settings, "environment": collect()}
    atomic_write(out, lambda fh: (json.dump(record, fh, indent=2, sort_keys=True, default=str),
                                  fh.write("\n")), mode="w")
    for line in table_lines(record, scale):
        print(line, flush=True)
    print(f"written: {out}")
    return 0
