"""``deapnn train``: the SGD baseline on one dataset / model / loss."""
from __future__ import annotations

import argparse
import time

from .common import (UsageError, add_common_args, check_choice, check_common, check_positive,
                     progress)


def add_training_args(parser, *, epochs: int = 20, lr: float = 0.1, batch_size: int = 64,
                      weight_decay: float = 5e-4) -> None:
    """Dataset, model and SGD hyper-parameters (shared with ``deapnn gls``)."""
    g = parser.add_argument_group("training")
    g.add_argument("--dataset", default="digits", help="dataset name (see `deapnn datasets`)")
    g.add_argument("--model", default="cnn", help="mlp, cnn, vgg19_bn, resnet18, mobilenetv2")
    g.add_argument("--epochs", type=int, default=epochs)
    g.add_argument("--lr", type=float, default=lr, help="initial learning rate")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--nesterov", action="store_true")
    g.add_argument("--weight-decay", type=float, default=weight_decay)
    g.add_argument("--batch-size", type=int, default=batch_size)
    g.add_argument("--schedule", default="cosine", help="cosine, step or constant")
    g.add_argument("--no-augment", action="store_true", help="disable the dataset's augmentation")


def check_training_args(args) -> None:
    """Validate dataset/model names and hyper-parameters without loading anything."""
    from ..data import dataset_names
    from ..models import model_names
    from ..training import SCHEDULES
    check_choice(args.dataset, dataset_names(), "dataset")
    check_choice(args.model, model_names(), "model")
    check_choice(args.schedule, SCHEDULES, "schedule")
    from ..data import DATASETS
    from ..models import check_model_input
    try:  # e.g. cnn on tabular iris, vgg19_bn on 28x28 MNIST: refuse before loading anything
        check_model_input(args.model, DATASETS[args.dataset].input_shape)
    except ValueError as exc:
        raise UsageError(f"--model {args.model} does not fit --dataset {args.dataset}: "
                         f"{exc}") from None
    check_positive(args.epochs, "--epochs", allow_zero=True)
    check_positive(args.lr, "--lr")
    check_positive(args.batch_size, "--batch-size")
    check_positive(args.weight_decay, "--weight-decay", allow_zero=True)
    if not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.nesterov and args.momentum == 0:
        raise UsageError("--nesterov needs --momentum > 0")
    try:  # whatever else the training loop would refuse, refuse it here, before any work
        train_config(args).validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def train_config(args, epochs: int | None = None):
    from ..training import TrainConfig
    return TrainConfig(epochs=args.epochs if epochs is None else epochs, lr=args.lr,
                       momentum=args.momentum, nesterov=args.nesterov,
                       weight_decay=args.weight_decay, batch_size=args.batch_size,
                       schedule=args.schedule)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the SGD baseline and report test accuracy")
    add_training_args(p)
    p.add_argument("--loss", default=None,
                   help="loss name (cross_entropy, baikal, focal, ...) or formula, e.g. '-(y * log(yhat))'")
    add_common_args(p, out_default=None)
    p.set_defaults(func=run, check=check)


def check(args) -> None:
    check_common(args)
    if args.resume:
        return   # the stored configuration is used
    check_training_args(args)
    if args.loss is not None:
        from ..losses import resolve_loss
        try:
            resolve_loss(args.loss)
        except (ValueError, KeyError) as exc:
            raise UsageError(str(exc).strip("'\"")) from None


def run(args) -> int:
    from ..data import load_dataset
    from ..models import build_model
    from ..rundir import RunDir, RunDirError
    from ..runtime import configure_worker_threads, get_device, seed_everything, set_device
    from ..training import evaluate, train

    run_dir, resume_state = None, None
    if args.resume:
        run_dir = RunDir.resume(args.resume)
        stored = {k: v for k, v in run_dir.config.items() if k != "command"}
        keep = {"resume": args.resume, "quiet": args.quiet, "device": args.device}
        args = argparse.Namespace(**{**stored, **keep})
        try:
            check_training_args(args)
        except (UsageError, AttributeError, TypeError) as exc:
            raise RunDirError(f"cannot resume {run_dir.path}: its config.json is not a valid "
                              f"train configuration ({exc})") from None
        resume_state = run_dir.load_checkpoint()
    elif args.out:
        run_dir = RunDir(args.out, {"command": "train", **{k: v for k, v in vars(args).items()
                                                           if k not in ("func", "check")}})
    set_device(args.device)
    configure_worker_threads()
    seed_everything(args.seed)
    data = load_dataset(args.dataset, root=args.root, download=args.download, seed=args.seed)
    model = build_model(args.model, data.input_shape, data.num_classes)
    loss_fn = None
    if args.loss is not None:
        from ..losses import resolve_loss
        loss_fn = resolve_loss(args.loss)
    cfg = train_config(args)
    device = get_device()
    metric = "accuracy" if data.task == "classification" else "mse"
    bar = progress(cfg.epochs, f"train {args.model}/{args.dataset}", args.quiet, unit="epoch")

    def on_epoch(epoch, loss):
        return {"epoch": epoch + 1, "train_loss": loss,
                f"val_{metric}": evaluate(model, data.val.x, data.val.y, data.task)}

    start = time.perf_counter()
    result = train(model, data.train.x, data.train.y, cfg, loss_fn=loss_fn, task=data.task,
                   augment=None if args.no_augment else data.augment, device=device,
                   seed=args.seed, on_epoch=on_epoch, progress=bar,
                   checkpoint=run_dir.save_checkpoint if run_dir else None,
                   resume_state=resume_state)
    bar.close()
    seconds = time.perf_counter() - start
    test = evaluate(model, data.test.x, data.test.y, data.task)
    if run_dir:
        run_dir.write_logbook(result.history)
        run_dir.save_weights(model.state_dict(), "model.pt")
        run_dir.write_json("result.json", {f"test_{metric}": test, "seconds": seconds,
                                           "diverged": result.diverged, "reason": result.reason})
        if result.history:
            from ..plots import plot_curves
            xs = [r["epoch"] for r in result.history]
            plot_curves({"train loss": (xs, [r["train_loss"] for r in result.history])},
                        run_dir.file("loss.png"), "epoch", "loss", f"{args.model} on {args.dataset}")
            plot_curves({f"val {metric}": (xs, [r[f"val_{metric}"] for r in result.history])},
                        run_dir.file(f"val_{metric}.png"), "epoch", metric)
    if result.diverged:
        print(f"training diverged: {result.reason}")
    print(f"test {metric}: {test:.4f}  ({seconds:.1f} s on {device})")
    return 1 if result.diverged else 0
