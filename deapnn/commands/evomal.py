"""``deapnn evomal``: evolve a symbolic loss with EvoMAL (Raymond et al. 2023, TPAMI) and compare
the best learned loss with MSE / cross-entropy on the test split.

    deapnn evomal --dataset diabetes --population 25 --generations 10 --out runs/evomal
    deapnn evomal --resume runs/evomal

A thin adapter: command line → :class:`~deapnn.evomal.config.EvoMALRunConfig` →
:func:`~deapnn.evomal.run.run_evomal` → printed summary.
"""
from __future__ import annotations

import sys

from ..evomal.config import FITNESS_SEEDS, REJECTIONS, EvoMALRunConfig
from .common import (UsageError, add_common_args, add_sgd_args, check_choice, check_common,
                     comma_list, config_usage_error, report_failures, sgd_values)
from .compare import add_tuning_args, tuning_values

D = EvoMALRunConfig()       # the flag defaults are the configuration's


def register(subparsers) -> None:
    p = subparsers.add_parser("evomal", help="EvoMAL: evolve a symbolic loss function (GP + "
                              "unrolled local search) and compare it with MSE / CE")
    g = p.add_argument_group("search (reference defaults: Raymond et al. 2023, Table 2)")
    g.add_argument("--dataset", default=D.dataset, help="diabetes, digits, or any `deapnn datasets` name")
    g.add_argument("--model", default=D.model, help="base network (mlp, cnn, ...)")
    g.add_argument("--hidden", type=comma_list(int, "layer sizes", positive=True, nonempty=True), default=D.hidden, help="MLP hidden sizes, e.g. 64,64")
    g.add_argument("--population", type=int, default=D.population)
    g.add_argument("--generations", type=int, default=D.generations,
                   help="populations evaluated, the initial one included (the paper: 50)")
    g.add_argument("--cxpb", type=float, default=D.cxpb)
    g.add_argument("--mutpb", type=float, default=D.mutpb)
    g.add_argument("--elitism", type=int, default=D.elitism)
    g.add_argument("--tournament", type=int, default=D.tournament)
    g.add_argument("--max-height", type=int, default=D.max_height)
    g.add_argument("--nonnegative", action="store_true", help="softplus on the loss output")
    e = p.add_argument_group("evaluation")
    e.add_argument("--meta-steps", type=int, default=D.meta_steps, help="local-search meta-steps")
    e.add_argument("--inner-steps", type=int, default=D.inner_steps,
                   help="unrolled inner SGD steps K (>= 1)")
    e.add_argument("--meta-lr", type=float, default=D.meta_lr)
    e.add_argument("--fitness-steps", type=int, default=D.fitness_steps,
                   help="SGD steps of a fitness evaluation")
    e.add_argument("--rejection", default=D.rejection, metavar="|".join(REJECTIONS),
                   help="rejection protocol: 'reference' (after the local search, the learned "
                   "loss on a fresh network's outputs for the first training rows and their "
                   "labels) or 'before' (before the local search, the unweighted tree on random "
                   "predictions and targets)")
    e.add_argument("--rejection-steps", type=int, default=D.rejection_steps,
                   help="rejection-protocol Adam steps (default: the reference's, 100 on "
                   "MNIST-like datasets, else 1000)")
    e.add_argument("--fitness-seed", default=D.fitness_seed, metavar="|".join(FITNESS_SEEDS),
                   help="'common': every candidate evaluated with the same seed (common random "
                   "numbers, the reference's); 'per_tree': a seed derived from the tree")
    add_sgd_args(p.add_argument_group("base learner SGD (local search, fitness and final "
                                      "training)"), EvoMALRunConfig)
    f = p.add_argument_group("final comparison")
    f.add_argument("--seeds", type=int, default=D.seeds, help="seeds of the final training (>= 1)")
    f.add_argument("--final-steps", type=int, default=D.final_steps,
                   help="SGD steps of the final training (default: the reference's, 150000 on "
                   "cifar10/cifar100/svhn, else 10000)")
    f.add_argument("--final-milestones", type=comma_list(int, "step numbers", positive=True), default=D.final_milestones,
                   metavar="S1,S2", help="final-training steps at which the learning rate is "
                   "multiplied by 0.1; '' for none (default: the reference's, 100000,135000 on "
                   "cifar10/cifar100/svhn at the reference's length, else none)")
    f.add_argument("--final-eval-every", type=int, default=D.final_eval_every, metavar="N",
                   help="evaluate test and validation every N steps of the final training "
                   "(0: final-steps / 20); the early-stopped result picks the best-validation "
                   "step. On --resume this flag is taken from the command line, not config.json")
    f.add_argument("--final-model", default=D.final_model, metavar="NAME",
                   help="network of the final comparison (the transfer check) [default --model]")
    add_tuning_args(f, D)
    add_common_args(p, out_default="runs/evomal")
    p.set_defaults(func=run, check=check, resume_flags=EvoMALRunConfig.INVOCATION[1:])


def config_from_args(args) -> EvoMALRunConfig:
    """The run configuration the flags ask for (not validated)."""
    return EvoMALRunConfig(
        dataset=args.dataset, seed=args.seed, model=args.model,
        hidden=tuple(args.hidden) if args.hidden else None, meta_steps=args.meta_steps,
        inner_steps=args.inner_steps, meta_lr=args.meta_lr,
        fitness_steps=args.fitness_steps, rejection=args.rejection,
        rejection_steps=args.rejection_steps, fitness_seed=args.fitness_seed,
        nonnegative=args.nonnegative, population=args.population, generations=args.generations,
        cxpb=args.cxpb, mutpb=args.mutpb, elitism=args.elitism, tournament=args.tournament,
        max_height=args.max_height, seeds=args.seeds, final_steps=args.final_steps,
        final_milestones=tuple(args.final_milestones) if args.final_milestones is not None
        else None, final_eval_every=args.final_eval_every, root=args.root, download=args.download,
        final_model=args.final_model, **tuning_values(args), **sgd_values(args))


def _stored_config(rundir) -> EvoMALRunConfig:
    """The configuration of the run in ``rundir`` (any layout: :meth:`RunDir.resume
    <deapnn.rundir.RunDir.resume>` migrated it)."""
    return rundir.stored("evomal", EvoMALRunConfig)


def configure(args):
    """``(rundir or None, validated configuration)`` of this invocation: the stored
    configuration on ``--resume`` (with this command line's ``--device`` and
    ``--final-eval-every``), else the flags'."""
    from ..config import ConfigError
    rundir = None
    if args.resume:
        from ..rundir import RunDir
        rundir = RunDir.resume(args.resume)
    try:
        cfg = _stored_config(rundir) if rundir is not None else config_from_args(args)
        cfg = cfg.for_invocation(device=args.device, final_eval_every=args.final_eval_every)
    except ConfigError as exc:
        raise config_usage_error(exc) from None
    from ..data import dataset_names
    from ..models import model_names
    check_choice(cfg.dataset, dataset_names(), "dataset")
    check_choice(cfg.model, model_names(), "model")
    if cfg.final_model is not None:
        check_choice(cfg.final_model, model_names(), "--final-model")
    return rundir, cfg


def check(args) -> None:
    check_common(args)
    configure(args)


def run(args) -> int:
    import os

    from tqdm.auto import tqdm

    from ..evomal.compare import FINAL_FILE, TUNED_FILE
    from ..evomal.run import PLOT_FILE, run_evomal
    from ..progress import progress
    from ..results import RESULTS_FILE
    from ..rundir import RunDir
    from ..runtime import configure_worker_threads
    rundir, cfg = configure(args)
    if rundir is None:
        if not args.out:
            raise UsageError("deapnn evomal needs --out DIR (or --resume DIR)")
        rundir = RunDir.create(args.out, "evomal", cfg, device=args.device)
    # EvoMAL's base networks are tiny: one torch thread per process is fastest and avoids
    # oversubscription (DEAPNN_THREADS overrides)
    configure_worker_threads(None if os.environ.get("DEAPNN_THREADS") else 1)

    def bar(total, desc, unit="it"):
        return progress(total, desc, args.quiet, unit=unit)

    def log(text):   # through tqdm, so a progress bar is redrawn below the line
        tqdm.write(text, file=sys.stdout)

    summary = run_evomal(cfg, rundir, progress=bar, log=log)
    print(summary.render())
    if summary.tuned is not None or summary.final is not None:
        files = (TUNED_FILE,) if summary.tuned is not None else (FINAL_FILE, PLOT_FILE)
        print(f"\nrun directory: {rundir.path} (logbook.csv, checkpoint.pt, {RESULTS_FILE}, "
              f"{', '.join(files)})", file=sys.stderr)
    return report_failures(summary)
