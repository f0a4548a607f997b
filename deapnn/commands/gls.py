"""``deapnn gls``: Gradient Lexicase Selection against its comparison arms, over several seeds
(argparse → :class:`~deapnn.gls.GLSConfig` → :func:`~deapnn.gls.run_gls` → printed table)."""
from __future__ import annotations

import argparse
import functools

from ..progress import progress
from .common import (UsageError, add_common_args, check_common, check_seed, comma_list,
                     config_from_flags, given_flags, report_failures)
from .train import add_training_args

#: flags named otherwise than their GLSConfig field
FLAGS = {"arms": "--compare", "augment": "--no-augment", "augmentation": "--augment"}


def _epsilon(text):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or auto, got {text!r}") from None


def register(subparsers) -> None:
    from ..gls import GLSConfig
    d = GLSConfig
    p = subparsers.add_parser("gls", help="Gradient Lexicase Selection vs SGD / matched SGD / random")
    g = add_training_args(p, GLSConfig, "GLS")
    g.add_argument("--pop", type=int, default=d.pop, help="children per generation, p")
    g.add_argument("--momentum-mode", default=d.momentum_mode, help="reset | inherit | none")
    g.add_argument("--init", default=d.init, help="clone | independent (reference code)")
    g.add_argument("--selection-data", default=d.selection_data,
                   help="clean | augmented (reference code)")
    g.add_argument("--semantics", default=d.semantics, help="standard | reference")
    g.add_argument("--chunk-size", type=int, default=d.chunk_size,
                   help="first chunk of cases (doubles)")
    g.add_argument("--max-cases", type=int, default=d.max_cases,
                   help="cases one selection may examine (down-sampled lexicase; default: all)")
    g.add_argument("--eval-every", type=int, default=d.eval_every,
                   help="generations/epochs between evaluations (0: every epoch-equivalent)")
    g.add_argument("--val-size", type=int, default=d.val_size,
                   help="validation examples held out of the training set (default: the "
                        "dataset's usual split, 5000 for CIFAR/SVHN; 0: none, train on all of "
                        "it and report the final test accuracy only, as the paper)")
    g.add_argument("--compare", type=comma_list(str, "arm names", skip=("none",)),
                   default=[a for a in GLSConfig().arms if a != "gls"],
                   help="arms beside GLS: sgd, sgd_matched, random, sgd_reset, sgd_tuned "
                        "(comma-separated; none for GLS only)")
    g.add_argument("--augment", dest="augmentation", default=d.augmentation, metavar="KIND",
                   help="augmentation of SubGD and SGD batches (never of selection): none, "
                        "crop, crop_flip, shift, optionally :PADDING, e.g. crop:1 for digits "
                        "(default: the dataset's own; mnist1d_large: shift:4)")
    g.add_argument("--case-metric", default=d.case_metric,
                   help="lexicase on per-case top-1 error (the paper's) or loss")
    g.add_argument("--epsilon", type=_epsilon, default=d.epsilon,
                   help="with --case-metric loss: a number or auto (MAD over the current pool)")
    g.add_argument("--diagnostics", action="store_true", default=d.diagnostics,
                   help="log per generation whether the winner trained on the deciding case "
                        "and is the best child on the validation split")
    g.add_argument("--seeds", type=comma_list(int, "integers", skip=("none",)), default=None,
                   help="e.g. 0,1,2 (default: --seed)")
    add_common_args(p, out_default="runs/gls")
    p.set_defaults(func=run, check=check)


def config_from_args(args):
    """The :class:`~deapnn.gls.GLSConfig` of the flags (a bad one: UsageError naming it)."""
    from ..gls import GLSConfig
    return config_from_flags(GLSConfig, args, FLAGS, augment=not args.no_augment,
                             arms=list(args.compare),
                             seeds=list(args.seeds if args.seeds is not None else [args.seed]))


def check(args) -> None:
    check_common(args)
    if args.resume:
        return   # the stored configuration is used (validated when read)
    if {"seed", "seeds"} <= given_flags(args):
        raise UsageError("--seed and --seeds exclude each other: list every seed with --seeds")
    for seed in args.seeds or ():
        check_seed(seed, "--seeds")
    config_from_args(args)


def run(args) -> int:
    from ..gls import GLSConfig, run_gls
    from ..rundir import RunDir
    from ..runtime import configure_worker_threads, get_map, set_device

    set_device(args.device)
    configure_worker_threads()
    if args.resume:
        rd = RunDir.resume(args.resume)
        cfg = rd.stored("gls", GLSConfig)
    else:
        cfg = config_from_args(args)
        rd = RunDir.create(args.out, "gls", cfg, device=args.device)
    quiet = args.quiet or args.workers > 1
    summary = run_gls(cfg, rd, map_fn=get_map(),
                      progress=functools.partial(progress, quiet=quiet))
    print(summary.render())
    print(f"run directory: {rd.path}")
    return report_failures(summary, rd.path)
