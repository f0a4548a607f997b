"""``deapnn compare RUN_DIR``: the tuned final comparison (:mod:`deapnn.comparison`) of a
finished ``deapnn nlfs`` or ``deapnn evomal`` run, without re-running its search.

    deapnn compare runs/nlfs --final-model cnn --seeds 5
    deapnn compare runs/evomal --lr-grid 1/4,1,4 --baselines focal

Reads the run's ``config.json`` and best losses from its ``results.json`` (any version, through
:func:`deapnn.results.read_summary`; NLFS: every reported loss; EvoMAL: the best loss with its
learned weights), trains them with the run's final training and writes ``comparison.json``
(``comparison-<final model>.json`` with ``--final-model``) into the run directory; every
finished training is kept in ``<output>.state.json``, so a killed comparison resumes where it
stopped. Also home of the flags every loss search shares for its final comparison
(generated from :class:`~deapnn.comparison.TuningSettings`).
"""
from __future__ import annotations

import dataclasses
import json
import os
from functools import partial

from ..comparison import TuningSettings
from .common import UsageError, config_usage_error
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
    add_config_flags(p, TuningSettings, exclude=("tune",), title="comparison")
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
    values = {**given_values(TuningSettings, args), "tune": True}
    try:
        cfg = dataclasses.replace(cfg, **values)
    except ConfigError as exc:
        raise config_usage_error(exc, flags_by_field(TuningSettings)) from None
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


def check(args) -> None:
    from ..runtime import VALID_DEVICES
    if args.device.split(":")[0] not in VALID_DEVICES:
        raise UsageError(f"unknown device {args.device!r}; valid: {', '.join(VALID_DEVICES)} "
                         f"or cuda:N")
    if args.out is not None and not args.out.endswith(".json"):
        raise UsageError(f"--out must name a .json file, got {args.out!r}")
    load_run(args)


def run(args) -> int:
    from ..comparison import table_lines
    from ..progress import progress
    from ..rundir import atomic_write
    from ..runtime import configure_worker_threads, set_device
    set_device(args.device)
    configure_worker_threads(int(os.environ.get("DEAPNN_THREADS", "1")))
    rundir, kind, cfg, found = load_run(args)
    out = output_path(args, rundir)
    state_file = os.path.splitext(out)[0] + ".state.json"
    state = None
    if os.path.exists(state_file):
        with open(state_file, encoding="utf-8") as fh:
            state = json.load(fh)

    def save(s):
        atomic_write(state_file, lambda fh: json.dump(s, fh), mode="w")

    bar = partial(progress, quiet=args.quiet)
    from ..data import DATASETS
    spec = DATASETS[cfg.dataset]
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
    record = {**record, "run": rundir.path, "command": kind, "scale": scale}
    atomic_write(out, lambda fh: (json.dump(record, fh, indent=2, sort_keys=True, default=str),
                                  fh.write("\n")), mode="w")
    for line in table_lines(record, scale):
        print(line, flush=True)
    print(f"written: {out}")
    return 0
