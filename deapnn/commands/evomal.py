"""``deapnn evomal``: evolve a symbolic loss with EvoMAL (Raymond et al. 2023, TPAMI) and compare
the best learned loss with MSE / cross-entropy on the test split.

    deapnn evomal --dataset diabetes --population 25 --generations 10 --out runs/evomal
    deapnn evomal --resume runs/evomal
"""
from __future__ import annotations

from .common import UsageError, add_common_args, check_choice, check_common, check_positive

# values a resumed run takes from its stored config.json (the rest: this invocation's)
_RUNTIME_ONLY = {"resume", "quiet", "workers", "hostfile", "device", "func", "check", "out",
                 "command", "root", "download", "final_eval_every"}


def _hidden(text: str):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--hidden must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--hidden must list positive layer sizes, got {text!r}")
    return sizes


def register(subparsers) -> None:
    p = subparsers.add_parser("evomal", help="EvoMAL: evolve a symbolic loss function (GP + "
                              "unrolled local search) and compare it with MSE / CE")
    g = p.add_argument_group("search (reference defaults: Raymond et al. 2023, Table 2)")
    g.add_argument("--dataset", default="diabetes", help="diabetes, digits, or any `deapnn datasets` name")
    g.add_argument("--model", default="mlp", help="base network (mlp, cnn, ...)")
    g.add_argument("--hidden", type=_hidden, default=None, help="MLP hidden sizes, e.g. 64,64")
    g.add_argument("--population", type=int, default=25)
    g.add_argument("--generations", type=int, default=10)
    g.add_argument("--cxpb", type=float, default=0.7)
    g.add_argument("--mutpb", type=float, default=0.25)
    g.add_argument("--elitism", type=int, default=1)
    g.add_argument("--tournament", type=int, default=4)
    g.add_argument("--max-height", type=int, default=10)
    g.add_argument("--nonnegative", action="store_true", help="softplus on the loss output")
    e = p.add_argument_group("evaluation")
    e.add_argument("--meta-steps", type=int, default=250, help="local-search meta-steps")
    e.add_argument("--inner-steps", type=int, default=1, help="unrolled inner SGD steps K (>= 1)")
    e.add_argument("--meta-lr", type=float, default=1e-3)
    e.add_argument("--lr", type=float, default=0.01, help="base SGD learning rate")
    e.add_argument("--fitness-steps", type=int, default=500, help="SGD steps of a fitness evaluation")
    e.add_argument("--rejection-steps", type=int, default=1000, help="rejection-protocol Adam steps")
    f = p.add_argument_group("final comparison")
    f.add_argument("--seeds", type=int, default=3, help="seeds of the final training (>= 1)")
    f.add_argument("--final-steps", type=int, default=10000, help="SGD steps of the final training")
    f.add_argument("--final-eval-every", type=int, default=0, metavar="N",
                   help="evaluate test and validation every N steps of the final training "
                   "(0: final-steps / 20); the early-stopped result picks the best-validation "
                   "step. On --resume this flag is taken from the command line, not config.json")
    add_common_args(p, out_default="runs/evomal")
    p.set_defaults(func=run, check=check)


def _apply_stored_config(args) -> None:
    from ..rundir import RunDir
    stored = RunDir.resume(args.resume).config
    if stored.get("command") != "evomal":
        raise UsageError(f"{args.resume} holds a {stored.get('command')!r} run, not evomal")
    for key, value in stored.items():
        if key not in _RUNTIME_ONLY and hasattr(args, key):
            setattr(args, key, value)


def check(args) -> None:
    check_common(args)
    if args.resume:
        _apply_stored_config(args)
    from ..data import dataset_names
    from ..models import model_names
    check_choice(args.dataset, dataset_names(), "dataset")
    check_choice(args.model, model_names(), "model")
    for name in ("population", "seeds", "meta_lr", "lr", "tournament", "max_height",
                 "rejection_steps", "inner_steps"):
        check_positive(getattr(args, name), f"--{name.replace('_', '-')}")
    for name in ("generations", "meta_steps", "fitness_steps", "final_steps", "elitism",
                 "final_eval_every"):
        check_positive(getattr(args, name), f"--{name.replace('_', '-')}", allow_zero=True)
    if args.population < 2:
        raise UsageError(f"--population must be >= 2, got {args.population}")
    if args.elitism >= args.population:
        raise UsageError(f"--elitism must be < --population, got {args.elitism}")
    if not (0 <= args.cxpb <= 1 and 0 <= args.mutpb <= 1 and args.cxpb + args.mutpb <= 1):
        raise UsageError(f"need 0 <= --cxpb, --mutpb and --cxpb + --mutpb <= 1, "
                         f"got {args.cxpb}, {args.mutpb}")


def run(args) -> int:
    from ..evomal.run import run as run_evomal
    return run_evomal(args)
