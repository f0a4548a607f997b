"""``deapnn nlfs``: neural loss function search (Morgan & Hougen 2024, §3).

A thin adapter: flags → :class:`~deapnn.nlfs.NLFSConfig` (whose constraints are the checks) →
:func:`~deapnn.nlfs.run_nlfs` → the printed summary (:meth:`NLFSSummary.render
<deapnn.nlfs.summary.NLFSSummary.render>`).
"""
from __future__ import annotations

from functools import partial

from ..nlfs.config import NLFSConfig
from .common import (add_common_args, add_sgd_args, check_common, config_usage_error,
                     report_failures, sgd_values)
from .compare import add_tuning_args, tuning_values

D = NLFSConfig()        # the flags' defaults are the configuration's


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "nlfs", help="evolve classification losses as computational graphs (NLFS)",
        description="Neural loss function search: aging evolution of loss graphs over y, yhat, "
                    "1, -1 with a regularised surrogate fitness (Morgan & Hougen 2024).")
    add_common_args(p, out_default="runs/nlfs")
    g = p.add_argument_group("search")
    g.add_argument("--dataset", default=D.dataset)
    g.add_argument("--model", default=D.model, help="surrogate model (mlp, cnn, ...)")
    g.add_argument("--population", type=int, default=D.population,
                   help="population size P [paper: 100]")
    g.add_argument("--cycles", type=int, default=D.cycles,
                   help="children to evaluate [paper: 4000]")
    g.add_argument("--sample-size", type=int, default=D.sample_size,
                   help="tournament sample S [paper: 20]")
    g.add_argument("--pool", type=int, default=None,
                   help="random initial pool; the best P seed the population [default 2P]")
    g.add_argument("--pool-rescore", type=int, default=D.pool_rescore, metavar="N",
                   help="score the pool with the standard (un-augmented) surrogate and re-score "
                        "its best N with the search's surrogate, as the reference does; 0: one "
                        "stage [default: P, the seeded members]")
    g.add_argument("--budget", type=int, default=D.budget,
                   help="surrogate SGD steps per candidate")
    add_sgd_args(p.add_argument_group("surrogate SGD (Morgan & Hougen 2024 §3.5)"), NLFSConfig)
    g.add_argument("--batch", type=int, default=None,
                   help="children in flight per round [default: --workers]")
    g.add_argument("--top", type=int, default=D.top, help="best losses to print and register")
    g.add_argument("--failed-child", choices=("discard", "insert"), default=D.failed_child,
                   help="a child failing the pre-screen or diverging: re-mutate its parent "
                        "(up to 7 attempts) and then discard it, as the reference does, or "
                        "insert it with fitness 0 [default: %(default)s]")
    g.add_argument("--initial-age", choices=("shared", "ordered"), default=D.initial_age,
                   help="seeded members share one age (the weakest dies first, as the "
                        "reference) or are aged best first [default: %(default)s]")
    g.add_argument("--wiring", choices=("reference", "free"), default=D.wiring,
                   help="inputs of random genomes and mutations: as the reference (the root "
                        "starts on hidden nodes, binary inputs distinct, a toggle draws a new "
                        "input) or free (deapnn before) [default: %(default)s]")
    g.add_argument("--eliminate", action="store_true",
                   help="successive halving of the hall of fame on longer budgets / a CNN")
    f = p.add_argument_group("final comparison")
    f.add_argument("--seeds", type=int, default=D.seeds,
                   help="seeds for best-found vs CE (0 skips)")
    f.add_argument("--final-steps", type=int, default=None, help="[default 3x --budget]")
    f.add_argument("--final-model", default=D.final_model,
                   help="network of the final comparison, e.g. cnn for losses found on the mlp "
                        "surrogate (the transfer check) [default --model]")
    add_tuning_args(f, D)
    p.set_defaults(func=run, check=check)


def check(args) -> None:
    check_common(args)
    if args.resume:
        return
    config_from_args(args)


def config_from_args(args) -> NLFSConfig:
    """The validated configuration of the flags (raises :class:`UsageError`)."""
    from ..config import ConfigError
    try:
        return NLFSConfig(dataset=args.dataset, model=args.model, population=args.population,
                          cycles=args.cycles, sample_size=args.sample_size, pool=args.pool,
                          budget=args.budget,
                          batch=args.workers if args.batch is None else args.batch,
                          seed=args.seed, seeds=args.seeds, final_steps=args.final_steps,
                          final_model=args.final_model, top=args.top, eliminate=args.eliminate,
                          root=args.root, failed_child=args.failed_child,
                          initial_age=args.initial_age, wiring=args.wiring,
                          pool_rescore=args.pool_rescore, **tuning_values(args),
                          **sgd_values(args))
    except ConfigError as exc:
        raise config_usage_error(exc) from None


def run(args) -> int:
    import os

    from ..nlfs.run import run_nlfs
    from ..progress import progress
    from ..results import RESULTS_FILE
    from ..rundir import RunDir
    from ..runtime import configure_worker_threads, set_device
    set_device(args.device)
    # small surrogate models gain nothing from intra-op threads and suffer badly from contention
    configure_worker_threads(int(os.environ.get("DEAPNN_THREADS", "1")))
    if args.resume:
        rundir = RunDir.resume(args.resume)
        cfg = rundir.stored("nlfs", NLFSConfig)
    else:
        cfg = config_from_args(args)
        rundir = RunDir.create(args.out, "nlfs", cfg, device=args.device)
    summary = run_nlfs(cfg, rundir, progress=partial(progress, quiet=args.quiet))
    print(summary.render(), flush=True)
    if summary.best:
        print(f"run directory: {rundir.path} (losses.json, probe_curves.png, {RESULTS_FILE})")
    return report_failures(summary)
