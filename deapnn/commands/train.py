"""``deapnn train``: the SGD baseline on one dataset / model / loss (argparse →
:class:`~deapnn.baseline.TrainRunConfig` → :func:`~deapnn.baseline.run_train` → printed result)."""
from __future__ import annotations

import functools

from ..progress import progress
from .common import (add_common_args, add_sgd_args, check_common, config_from_flags,
                     report_failures)


def add_training_args(parser, cls, title: str = "training"):
    """Dataset, model and SGD flags of a configuration class ``cls`` (its defaults are the
    flags' defaults: declared once, on the dataclass); returns the argument group."""
    from ..models import model_names
    g = parser.add_argument_group(title)
    g.add_argument("--dataset", default=cls.dataset, help="dataset name (see `deapnn datasets`)")
    g.add_argument("--model", default=cls.model, help=", ".join(model_names()))
    g.add_argument("--epochs", type=int, default=cls.epochs)
    add_sgd_args(g, cls)
    g.add_argument("--no-augment", action="store_true", default=not cls.augment,
                   help="disable the dataset's augmentation")
    return g


def register(subparsers) -> None:
    from ..baseline import TrainRunConfig
    p = subparsers.add_parser("train", help="train the SGD baseline and report test accuracy")
    add_training_args(p, TrainRunConfig)
    p.add_argument("--loss", default=TrainRunConfig.loss,
                   help="loss name (cross_entropy, baikal, focal, ...) or formula, e.g. '-(y * log(yhat))'")
    add_common_args(p, out_default=None)
    p.set_defaults(func=run, check=check)


def config_from_args(args):
    """The :class:`~deapnn.baseline.TrainRunConfig` of the flags (a bad one: UsageError)."""
    from ..baseline import TrainRunConfig
    return config_from_flags(TrainRunConfig, args, {"augment": "--no-augment"},
                             augment=not args.no_augment)


def check(args) -> None:
    check_common(args)
    if args.resume:
        return   # the stored configuration is used
    config_from_args(args)


def run(args) -> int:
    from ..baseline import TrainRunConfig, run_train
    from ..rundir import RunDir
    from ..runtime import configure_worker_threads, set_device

    run_dir = None
    if args.resume:
        run_dir = RunDir.resume(args.resume)
        cfg = run_dir.stored("train", TrainRunConfig)
    else:
        cfg = config_from_args(args)
        if args.out:
            run_dir = RunDir.create(args.out, "train", cfg, device=args.device)
    set_device(args.device)
    configure_worker_threads()
    summary = run_train(cfg, run_dir, progress=functools.partial(progress, quiet=args.quiet))
    print(summary.render())
    return report_failures(summary)
