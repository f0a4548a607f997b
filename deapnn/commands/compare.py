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
(:func:`add_tuning_args`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from functools import partial

from .common import UsageError, check_choice, comma_list, config_usage_error


def _grid(text: str) -> list[float]:
    from ..comparison import parse_grid
    try:
        return parse_grid(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_tuning_args(group, defaults, *, tune_flag: bool = True) -> None:
    """``--no-tune --lr-grid --tune-seeds --baselines`` (defaults from the configuration
    ``defaults``): the tuned final comparison's settings."""
    from ..comparison import multiplier_text
    if tune_flag:
        group.add_argument("--no-tune", dest="tune", action="store_false", default=True,
                           help="final comparison at the configured learning rate only (the "
                                "protocol before tuning) instead of the tuned comparison")
    group.add_argument("--lr-grid", type=_grid, default=None, metavar="M,M,...",
                       help="learning-rate multipliers of the tuned comparison, e.g. 1/4,1,4 "
                            "[default: " + ",".join(multiplier_text(m) for m in defaults.lr_grid)
                            + "]")
    group.add_argument("--tune-seeds", type=int, default=None, metavar="N",
                       help=f"tuning seeds per grid point (validation split) [default: "
                            f"{defaults.tune_seeds}]")
    group.add_argument("--baselines", type=comma_list(str.strip, "loss names", nonempty=True),
                       default=None, metavar="NAME,...",
                       help="extra baselines from the loss library (deapnn.losses.get names, "
                            "e.g. focal,baikal), tuned the same way")


def tuning_values(args) -> dict:
    """The configuration values of the tuning flags given (absent ones keep their default)."""
    out = {}
    if getattr(args, "tune", True) is False:
        out["tune"] = False
    for name in ("lr_grid", "tune_seeds", "baselines"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="tuned final comparison of a finished nlfs or evomal run",
        description="Re-score the best losses of a finished `deapnn nlfs` / `deapnn evomal` run "
                    "against tuned baselines: each loss gets its own learning rate from a grid "
                    "(chosen on the validation split with tuning seeds), then is trained with "
                    "fresh seeds and scored on test. The search is not re-run.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished nlfs or evomal run directory")
    p.add_argument("--final-model", default=None, metavar="NAME",
                   help="train the comparison on this architecture (the transfer check) "
                        "[default: the run's final model]")
    p.add_argument("--seeds", type=int, default=None, help="final seeds [default: the run's]")
    add_tuning_args(p, _defaults(), tune_flag=False)
    p.add_argument("--out", metavar="FILE.json", default=None,
                   help="where to write the comparison [default: RUN_DIR/comparison.json, "
                        "RUN_DIR/comparison-<model>.json with --final-model]")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run, check=check)


def _defaults():
    from types import SimpleNamespace

    from ..comparison import DEFAULT_LR_GRID, DEFAULT_TUNE_SEEDS
    return SimpleNamespace(lr_grid=DEFAULT_LR_GRID, tune_seeds=DEFAULT_TUNE_SEEDS)


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
    values = {**tuning_values(args), "tune": True}
    if args.seeds is not None:
        values["seeds"] = args.seeds
    if args.final_model is not None:
        from ..models import model_names
        check_choice(args.final_model, model_names(), "--final-model")
        values["final_model"] = args.final_model
    try:
        cfg = dataclasses.replace(cfg, **values).validate()
    except ConfigError as exc:
        raise config_usage_error(exc) from None
    if cfg.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {cfg.seeds}")
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
    return rundir.file("comparison" + (f"-{args.final_model}" if args.final_model else "")
                       + ".json")


def check(args) -> None:
    from ..runtime import VALID_DEVICES
    if args.device.split(":")[0] not in VALID_DEVICES:
        raise UsageError(f"unknown device {args.device!r}; valid: {', '.join(VALID_DEVICES)} "
                         f"or cuda:N")
    if args.out is not None and not args.out.endswith(".json"):
        raise UsageError(f"--out must name a .json file, got {args.out!r}")
    if args.tune_seeds is not None and args.tune_seeds < 1:
        raise UsageError(f"--tune-seeds must be >= 1, got {args.tune_seeds}")
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
