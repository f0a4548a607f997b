"""The SGD baseline (``deapnn train``): one network trained with SGD on one dataset, optionally
with a loss of the library or a loss formula.

:class:`TrainRunConfig` defines the run (stored as ``config.json``); :func:`run_train` trains,
evaluates on the test split and writes the run directory. The dataset / model / SGD settings and
their constraints are declared once, on :class:`SGDRunConfig` (and
:class:`deapnn.training.TrainConfig`), which :class:`deapnn.gls.GLSConfig` derives from too.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .checkpoint import StateError, restoring
from .config import ConfigError, check_network, dataset_of, seed_constraint, setting
from .data import RegimeSettings, dataset_argument, dataset_constraint
from .fastpath import FastPathSettings
from .models import model_constraint, model_names
from .progress import no_progress
from .results import SCHEMA_VERSION
from .sgd import SGDSettings
from .training import TrainConfig

@dataclass
class SGDRunConfig(SGDSettings, RegimeSettings, FastPathSettings):
    """What every run that trains networks with SGD on a dataset declares: the dataset, the
    model, the epochs and the :class:`~deapnn.sgd.SGDSettings`, the augmentation switch, where
    the data lives, the training split's regime (:class:`~deapnn.data.RegimeSettings`) and the
    opt-in fast paths (:class:`~deapnn.fastpath.FastPathSettings`). Base of
    :class:`TrainRunConfig` and :class:`deapnn.gls.GLSConfig`, which declare their own SGD
    defaults."""
    dataset: str = setting("digits", "dataset name (see `deapnn datasets`), a path to your "
                                     ".npz, or package.module:function returning its arrays",
                           parse=dataset_argument, group="data")
    model: str = setting("cnn", "network: " + ", ".join(model_names()) + ", or your factory "
                                "package.module:function(input_shape, num_classes)",
                         group="training")
    epochs: int = setting(20, "training epochs", group="training")
    augment: bool = setting(True, "disable the dataset's augmentation", flag="--no-augment",
                            group="training")
    root: str | None = setting(None, "data directory for torchvision datasets", group="data")
    download: bool = setting(False, "let torchvision download missing files", group="data")

    _parameter_constraints = {
        **SGDSettings._parameter_constraints, **RegimeSettings._parameter_constraints,
        **FastPathSettings._parameter_constraints,
        "dataset": [dataset_constraint()], "model": [model_constraint()],
        "epochs": TrainConfig._parameter_constraints["epochs"],
        "augment": [bool], "root": [str, None], "download": [bool],
    }

    def _check(self) -> None:
        """The model accepts the dataset's examples (e.g. no conv-net on tabular iris) and the
        SGD settings are consistent."""
        super()._check()
        check_network(self.model, dataset_of(self.dataset))

    def train_config(self, epochs: int | None = None) -> TrainConfig:
        """The SGD loop for ``epochs`` epochs or generations (default: ``self.epochs``).
        ``milestones`` count in ``self.epochs`` units and scale with the loop's length, so a
        longer arm (GLS's epochs·(p+1) generations, matched-compute SGD) keeps the schedule's
        shape, as the cosine does."""
        length = self.epochs if epochs is None else epochs
        milestones = self.milestones
        if length != self.epochs and self.epochs:
            milestones = tuple(m * length / self.epochs for m in milestones)
        return TrainConfig(**{**self.sgd().to_dict(), "milestones": milestones}, epochs=length)


@dataclass
class TrainRunConfig(SGDRunConfig):
    """Everything that defines a ``deapnn train`` run (stored as the run's ``config.json``)."""
    loss: str | None = setting(None, "loss name (cross_entropy, baikal, focal, ...) or formula, "
                                     "e.g. '-(y * log(yhat))'", parse=str, group="training")
    seed: int = setting(0, "run seed (python, numpy, torch)", group="run")

    #: ``deapnn train``'s SGD (its defaults since 0.1.0): the settings of Ding & Spector 2022,
    #: §4, except weight decay 5e-4
    SGD_DEFAULTS = {**SGDSettings.SGD_DEFAULTS, "weight_decay": 5e-4}

    _parameter_constraints = {**SGDRunConfig._parameter_constraints,
                              "loss": [str, None], "seed": seed_constraint()}

    def _check(self) -> None:
        super()._check()
        if self.loss is not None:
            task = dataset_of(self.dataset).task
            if task != "classification":
                # the library's losses (and formulas over y, yhat) compare a softmax over the
                # classes with the label: on a one-output regression network they are constant
                raise ConfigError(f"{self.dataset} is a {task} "
                                  "dataset, trained with mean squared error; --loss takes a "
                                  "classification loss (drop --loss)", "loss")
            from .losses import resolve_loss
            try:
                resolve_loss(self.loss)
            except RecursionError:
                raise ConfigError("the formula is nested too deeply to parse",
                                  "loss") from None
            except (ValueError, KeyError, TypeError, OSError) as exc:
                raise ConfigError(str(exc).strip("'\""), "loss") from None


@dataclass
class TrainSummary:
    """Outcome of :func:`run_train`, a :class:`deapnn.results.Summary` (``to_dict()`` is the
    run's ``results.json``): one job, the training, failed when it diverged."""
    metric: str                 # "accuracy" (classification) or "mse" (regression)
    test: float
    seconds: float
    diverged: bool
    reason: str | None
    device: str | None          # None: a run directory of version 0 did not store it
    #: classification: the training split's regime and the per-class metrics on the test split
    #: (:func:`deapnn.class_metrics.class_results`; empty for a run of an earlier deapnn)
    classes: dict = field(default_factory=dict)

    @property
    def jobs(self) -> int:
        """One: the training."""
        return 1

    @property
    def failures(self) -> list[str]:
        """``"training: reason"`` when the training diverged."""
        return [f"training: {self.reason or 'diverged'}"] if self.diverged else []

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, f"test_{self.metric}": self.test,
                "seconds": self.seconds, "diverged": self.diverged, "reason": self.reason,
                "device": self.device, **self.classes}

    @classmethod
    def from_dict(cls, data: dict) -> TrainSummary:
        """The summary :meth:`to_dict` stored (``ValueError`` without one ``test_<metric>``)."""
        (metric,) = [k[len("test_"):] for k in data if k.startswith("test_")]
        from .class_metrics import ROW_KEYS
        return cls(metric, data[f"test_{metric}"], data["seconds"], data["diverged"],
                   data["reason"], data["device"], {k: data[k] for k in ROW_KEYS if k in data})

    def render(self) -> str:
        """``deapnn train``'s printed result."""
        lines = [f"training diverged: {self.reason}"] if self.diverged else []
        lines.append(f"test {self.metric}: {self.test:.4f}  ({self.seconds:.1f} s on "
                     f"{self.device})")
        c = self.classes
        if all(isinstance(c.get(k), (int, float)) for k in ("balanced_acc", "worst_class_acc",
                                                              "rare3_acc")):
            from .data.regimes import regime_text
            split = regime_text(c.get("imbalance"), c.get("label_noise"))
            lines.append(f"test balanced accuracy {c['balanced_acc']:.4f}, worst class "
                         f"{c['worst_class_acc']:.4f}, rarest 3 classes {c['rare3_acc']:.4f}  "
                         f"(training split {split})")
        return "\n".join(lines)


def run_train(cfg: TrainRunConfig, rundir=None, *, map_fn=None, progress=no_progress,
              log=None) -> TrainSummary:
    """Train ``cfg``'s model with SGD and return its test score. With a ``rundir``
    (:class:`~deapnn.rundir.RunDir`) a checkpoint is saved after every epoch, a run whose
    checkpoint is there continues from it, and the logbook, weights, ``results.json`` and curves
    are written. ``map_fn`` is unused (one training) and accepted for the runners' common shape;
    ``log`` is unused."""
    cfg.validate()          # refused before any work, with the message of the config
    from .data import load_dataset
    from .models import build_model
    from .runtime import get_device, seed_everything
    from .training import evaluate, train

    resume_state = rundir.load_checkpoint() if rundir is not None else None
    if resume_state is not None:        # checked before the progress bar is drawn
        with restoring(rundir.file(rundir.CHECKPOINT)):
            if not isinstance(resume_state, dict):
                raise TypeError(f"the state is a {type(resume_state).__name__}, not a dict")
            missing = [k for k in ("model", "optimizer", "losses", "history", "epoch")
                       if k not in resume_state]
            if missing:
                raise KeyError(missing[0])
    fast = cfg.fast_path()
    fast.check(get_device())        # fp16 on CPU: refused before any work
    seed_everything(cfg.seed)
    data = load_dataset(cfg.dataset, root=cfg.root, download=cfg.download, seed=cfg.seed,
                        **cfg.regime())
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    loss_fn = None
    if cfg.loss is not None:
        from .losses import resolve_loss
        loss_fn = resolve_loss(cfg.loss)
    train_cfg = cfg.train_config()
    device = get_device()
    metric = "accuracy" if data.task == "classification" else "mse"
    bar = progress(train_cfg.epochs, f"train {cfg.model}/{cfg.dataset}", unit="epoch")

    def on_epoch(epoch, loss):
        return {"epoch": epoch + 1, "train_loss": loss,
                f"val_{metric}": evaluate(model, data.val.x, data.val.y, data.task, fast=fast)}

    start = time.perf_counter()
    try:
        result = train(model, data.train.x, data.train.y, train_cfg, loss_fn=loss_fn,
                       task=data.task, augment=data.augment if cfg.augment else None,
                       device=device, seed=cfg.seed, on_epoch=on_epoch, progress=bar,
                       checkpoint=rundir.save_checkpoint if rundir is not None else None,
                       resume_state=resume_state, fast=fast)
    except StateError as exc:       # name the run's checkpoint
        raise exc.at(rundir.file(rundir.CHECKPOINT)) from None
    bar.close()
    seconds = time.perf_counter() - start
    test = evaluate(model, data.test.x, data.test.y, data.task, fast=fast)
    from .class_metrics import class_results
    summary = TrainSummary(metric, test, seconds, result.diverged, result.reason, str(device),
                           class_results(data, model))
    if rundir is not None:
        write_outputs(rundir, cfg, summary, model, result.history)
        if data.meta.get("regime"):     # the class order and the flipped labels
            rundir.write_json("regime.json", data.meta["regime"])
    return summary


def write_outputs(rundir, cfg: TrainRunConfig, summary: TrainSummary, model, history) -> None:
    """The logbook, final weights, ``results.json`` and the loss / validation curves."""
    rundir.write_logbook(history)
    rundir.save_weights(model.state_dict(), "model.pt")
    rundir.write_results(summary)
    if history:
        from .plots import plot_curves
        metric = summary.metric
        xs = [r["epoch"] for r in history]
        plot_curves({"train loss": (xs, [r["train_loss"] for r in history])},
                    rundir.file("loss.png"), "epoch", "loss", f"{cfg.model} on {cfg.dataset}")
        plot_curves({f"val {metric}": (xs, [r[f"val_{metric}"] for r in history])},
                    rundir.file(f"val_{metric}.png"), "epoch", metric)


__all__ = ["SGDRunConfig", "TrainRunConfig", "TrainSummary", "run_train", "write_outputs"]
