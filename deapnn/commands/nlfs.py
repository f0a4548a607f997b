"""``deapnn nlfs``: neural loss function search (Morgan & Hougen 2024; SPEC §3)."""
from __future__ import annotations

from .common import UsageError, add_common_args, check_choice, check_common, check_positive


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "nlfs", help="evolve classification losses as computational graphs (NLFS)",
        description="Neural loss function search: aging evolution of loss graphs over y, yhat, "
                    "1, -1 with a regularised surrogate fitness (Morgan & Hougen 2024).")
    add_common_args(p, out_default="runs/nlfs")
    g = p.add_argument_group("search")
    g.add_argument("--dataset", default="digits")
    g.add_argument("--model", default="mlp", help="surrogate model (mlp, cnn, ...)")
    g.add_argument("--population", type=int, default=20, help="population size P [paper: 100]")
    g.add_argument("--cycles", type=int, default=200, help="children to evaluate [paper: 4000]")
    g.add_argument("--sample-size", type=int, default=5, help="tournament sample S [paper: 20]")
    g.add_argument("--pool", type=int, default=None,
                   help="random initial pool; the best P seed the population [default 2P]")
    g.add_argument("--budget", type=int, default=300, help="surrogate SGD steps per candidate")
    g.add_argument("--batch", type=int, default=None,
                   help="children in flight per round [default: --workers]")
    g.add_argument("--top", type=int, default=3, help="best losses to print and register")
    g.add_argument("--eliminate", action="store_true",
                   help="successive halving of the hall of fame on longer budgets / a CNN")
    f = p.add_argument_group("final comparison")
    f.add_argument("--seeds", type=int, default=3, help="seeds for best-found vs CE (0 skips)")
    f.add_argument("--final-steps", type=int, default=None, help="[default 3x --budget]")
    f.add_argument("--final-model", default=None, help="[default --model]")
    p.set_defaults(func=run, check=check)


def check(args) -> None:
    check_common(args)
    if args.resume:
        return
    from ..data import DATASETS, dataset_names
    from ..models import check_model_input, model_names
    check_choice(args.dataset, dataset_names(), "dataset")
    if DATASETS[args.dataset].task != "classification":
        raise UsageError(f"NLFS needs a classification dataset; {args.dataset} is "
                         f"{DATASETS[args.dataset].task}")
    for m in (args.model, args.final_model or args.model):
        check_choice(m, model_names(), "model")
        try:
            check_model_input(m, DATASETS[args.dataset].input_shape)
        except ValueError as exc:
            raise UsageError(f"model {m} does not fit {args.dataset}: {exc}") from None
    for name in ("population", "sample_size", "budget", "top"):
        check_positive(getattr(args, name), "--" + name.replace("_", "-"))
    for name in ("pool", "batch", "final_steps"):
        check_positive(getattr(args, name), "--" + name.replace("_", "-"))
    check_positive(args.cycles, "--cycles", allow_zero=True)
    check_positive(args.seeds, "--seeds", allow_zero=True)
    try:
        config_from_args(args).validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def config_from_args(args):
    from ..nlfs.run import NLFSConfig
    return NLFSConfig(dataset=args.dataset, model=args.model, population=args.population,
                      cycles=args.cycles, sample_size=args.sample_size,
                      pool=args.pool or 2 * args.population, budget=args.budget,
                      batch=args.batch or args.workers, seed=args.seed, seeds=args.seeds,
                      final_steps=args.final_steps or 3 * args.budget,
                      final_model=args.final_model, top=args.top, eliminate=args.eliminate,
                      root=args.root)


def run(args) -> int:
    from dataclasses import asdict
    from ..nlfs.run import NLFSConfig, run_nlfs
    from ..rundir import RunDir
    from ..runtime import configure_worker_threads, set_device
    import os
    set_device(args.device)
    # small surrogate models gain nothing from intra-op threads and suffer badly from contention
    configure_worker_threads(int(os.environ.get("DEAPNN_THREADS", "1")))
    if args.resume:
        rundir = RunDir.resume(args.resume)
        cfg = rundir.stored("nlfs", NLFSConfig)
    else:
        cfg = config_from_args(args)
        rundir = RunDir(args.out, {"command": "nlfs", "nlfs": asdict(cfg), "device": args.device})
    summary = run_nlfs(cfg, rundir, quiet=args.quiet, log=lambda *a: print(*a, flush=True))
    if not summary["best"]:
        print("no loss found", flush=True)
        return 1
    print(f"run directory: {rundir.path} (losses.json, probe_curves.png, results.json)")
    return 0
