"""``deapnn gls``: Gradient Lexicase Selection against its comparison arms, over several seeds."""
from __future__ import annotations

import os
from dataclasses import asdict, fields

from .common import UsageError, add_common_args, check_choice, check_common, check_positive
from .train import check_training_args


def _csv(kind):
    def parse(text):
        try:
            return [kind(t) for t in text.split(",") if t.strip() and t.strip() != "none"]
        except ValueError:
            raise UsageError(f"expected a comma-separated list, got {text!r}") from None
    return parse


def register(subparsers) -> None:
    p = subparsers.add_parser("gls", help="Gradient Lexicase Selection vs SGD / matched SGD / random")
    g = p.add_argument_group("GLS")
    g.add_argument("--dataset", default="digits")
    g.add_argument("--model", default="cnn")
    g.add_argument("--pop", type=int, default=4, help="children per generation, p")
    g.add_argument("--epochs", type=int, default=30,
                   help="baseline epochs; GLS runs epochs·(p+1) generations")
    g.add_argument("--lr", type=float, default=0.1)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--nesterov", action="store_true")
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--schedule", default="cosine")
    g.add_argument("--momentum-mode", default="reset", help="reset | inherit | none")
    g.add_argument("--init", default="clone", help="clone | independent (reference code)")
    g.add_argument("--selection-data", default="clean", help="clean | augmented (reference code)")
    g.add_argument("--semantics", default="standard", help="standard | reference")
    g.add_argument("--chunk-size", type=int, default=8, help="first chunk of cases (doubles)")
    g.add_argument("--max-cases", type=int, default=None,
                   help="cases one selection may examine (down-sampled lexicase; default: all)")
    g.add_argument("--eval-every", type=int, default=0,
                   help="generations/epochs between evaluations (0: every epoch-equivalent)")
    g.add_argument("--no-augment", action="store_true")
    g.add_argument("--compare", type=_csv(str), default=["sgd"],
                   help="arms beside GLS: sgd, sgd_matched, random (comma-separated; none for GLS only)")
    g.add_argument("--seeds", type=_csv(int), default=None, help="e.g. 0,1,2 (default: --seed)")
    add_common_args(p, out_default="runs/gls")
    p.set_defaults(func=run, check=check)


def check(args) -> None:
    from ..algorithms.gradient_lexicase import INIT_MODES, MOMENTUM_MODES
    from ..gls import ARMS
    from operators.gls import SEMANTICS
    check_common(args)
    if args.resume:
        return
    check_training_args(args)
    if args.pop < 2:
        raise UsageError(f"--pop must be >= 2 (selection needs two children), got {args.pop}")
    check_positive(args.chunk_size, "--chunk-size")
    check_positive(args.max_cases, "--max-cases")
    check_positive(args.eval_every, "--eval-every", allow_zero=True)
    check_choice(args.momentum_mode, MOMENTUM_MODES, "momentum mode")
    check_choice(args.init, INIT_MODES, "init mode")
    check_choice(args.selection_data, ("clean", "augmented"), "selection data")
    check_choice(args.semantics, SEMANTICS, "semantics")
    for arm in args.compare:
        check_choice(arm, [a for a in ARMS if a != "gls"], "arm")
    if args.seeds is not None and not args.seeds:
        raise UsageError("--seeds needs at least one seed")


def config_from_args(args):
    from ..gls import GLSConfig
    names = {f.name for f in fields(GLSConfig)}
    values = {k: v for k, v in vars(args).items() if k in names - {"seeds", "arms", "augment"}}
    return GLSConfig(**values, augment=not args.no_augment, arms=list(args.compare),
                     seeds=list(args.seeds if args.seeds is not None else [args.seed]))


def run(args) -> int:
    from ..gls import GLSConfig, format_table, jobs_for, run_job, summarize
    from ..rundir import RunDir
    from ..runtime import configure_worker_threads, get_map, set_device

    set_device(args.device)
    configure_worker_threads()
    if args.resume:
        rd = RunDir.resume(args.resume)
        cfg = rd.stored("gls", GLSConfig)
    else:
        cfg = config_from_args(args)
        rd = RunDir(args.out, {"command": "gls", "gls": asdict(cfg)})
    jobs = jobs_for(cfg, rd.path, args.quiet or args.workers > 1)
    results = list(get_map()(run_job, jobs))
    summary = summarize(results)
    rd.write_json("results.json", {"results": results, "summary": summary})
    table = format_table(summary, cfg)
    with open(rd.file("summary.txt"), "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    _plot(rd, jobs)
    print(table)
    print(f"run directory: {rd.path}")
    return 0


def _plot(rd, jobs) -> None:
    """Mean validation accuracy and train loss per arm against gradient compute (epochs)."""
    import numpy as np
    from ..gls import ARM_TITLES
    from ..plots import plot_curves
    from ..rundir import read_logbook
    for key, name, ylabel in (("val_acc", "accuracy.png", "validation accuracy"),
                              ("train_loss", "loss.png", "train loss")):
        series = {}
        for arm in dict.fromkeys(j["arm"] for j in jobs):
            curves = []
            for job in (j for j in jobs if j["arm"] == arm):
                rows = [r for r in read_logbook(os.path.join(job["dir"], "logbook.csv"))
                        if r.get(key) is not None]
                curves.append({r["compute_epochs"]: r[key] for r in rows})
            xs = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
            if xs:
                series[ARM_TITLES[arm]] = (xs, [float(np.mean([c[x] for c in curves])) for x in xs])
        plot_curves(series, rd.file(name), "gradient compute (epochs)", ylabel, "mean over seeds")
