"""The SGD settings of every training loop in deapnn, declared once (``docs/glossary.md``).

:class:`SGDSettings` holds the eight settings of stochastic gradient descent — learning rate,
momentum, Nesterov, weight decay, batch size, learning-rate schedule, its milestones and gamma —
with their constraints. Every configuration that trains a network derives from it (``TrainConfig``,
``SGDRunConfig`` and the ``train``/``gls`` run configurations, ``LossTraining``, NLFS's
``SurrogateConfig`` and ``NLFSConfig``, EvoMAL's ``EvoMALConfig`` and ``LocalSearchConfig``), so
the settings have one name, one constraint and one message everywhere.

Each method declares its defaults once, as :attr:`SGDSettings.SGD_DEFAULTS` beside the paper or
reference citation; a setting left ``None`` takes the class's default when the configuration is
made (:meth:`SGDSettings.sgd_defaults` may resolve a default per dataset, as EvoMAL's reference
does). :func:`scheduled_lr` is the one learning-rate schedule of every loop.

This module imports no torch: :func:`make_optimizer` loads it when called.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .config import (FLOAT32_MAX, SIZE_MAX, Check, Config, ConfigError, Interval, Options,
                     parse_list, setting)

#: the learning-rate schedules (cosine from lr to 0, step with × gamma at each milestone, and
#: constant)
SCHEDULES = ("cosine", "step", "constant")
#: the settings of :class:`SGDSettings`, in their order
SGD_FIELDS = ("lr", "momentum", "nesterov", "weight_decay", "batch_size", "schedule",
              "milestones", "gamma")


def _milestones_ok(value) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m)
        and m > 0 for m in value)


def _setting(help_text: str, **flag) -> Any:
    """A setting left ``None`` (resolved when the configuration is made), with its help."""
    return setting(None, help_text, group="SGD", **flag)


def _number(text: str) -> float:
    try:
        return int(text)
    except ValueError:
        return float(text)


@dataclass
class SGDSettings(Config):
    """The SGD of a training loop (``torch.optim.SGD`` semantics) and its learning-rate schedule.

    Each field's ``metadata["help"]`` is its one description (the command line's help). A
    field left ``None`` takes :meth:`sgd_defaults`'s value when the object is made; the
    defaults here are the SGD settings of Ding & Spector 2022, §4 (lr 0.1, momentum 0.9, weight
    decay 1e-4, batch 64, cosine schedule), which subclasses replace with their method's own.
    ``milestones`` (step schedule): the epochs, generations or steps — whatever unit the loop
    schedules in — at which the learning rate is multiplied by ``gamma``."""
    lr: float = _setting("initial learning rate")
    momentum: float = _setting("SGD momentum, in [0, 1)")
    nesterov: bool = _setting("Nesterov momentum")
    weight_decay: float = _setting("L2 weight decay")
    batch_size: int = _setting("examples per SGD step")
    schedule: str = _setting("learning-rate schedule: cosine (from lr to 0), step (x gamma at "
                             "each milestone) or constant")
    milestones: tuple = _setting("step schedule: where the learning rate is multiplied by "
                                 "gamma, comma-separated, in the loop's unit (epochs, "
                                 "generations or steps)", metavar="M1,M2",
                                 parse=parse_list(_number, "numbers"))
    gamma: float = _setting("step schedule: the learning-rate factor at each milestone")

    #: the defaults of this class (Ding & Spector 2022, §4); subclasses declare their own
    SGD_DEFAULTS: ClassVar[dict[str, Any]] = {
        "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 1e-4, "batch_size": 64,
        "schedule": "cosine", "milestones": (), "gamma": 0.1}

    _parameter_constraints = {
        "lr": [Interval(float, 0, FLOAT32_MAX, closed="neither")],
        "momentum": [Interval(float, 0, 1, closed="left")],
        "nesterov": [bool],
        "weight_decay": [Interval(float, 0, FLOAT32_MAX)],
        "batch_size": [Interval(int, 1, SIZE_MAX)],
        "schedule": [Options(SCHEDULES)],
        "milestones": [Check(_milestones_ok, "a list of numbers > 0")],
        "gamma": [Interval(float, 0, FLOAT32_MAX, closed="neither")],
    }

    def sgd_defaults(self) -> dict[str, Any]:
        """The value each SGD setting left ``None`` takes (override to resolve per dataset)."""
        return type(self).SGD_DEFAULTS

    def __post_init__(self) -> None:
        defaults = self.sgd_defaults()
        for name in SGD_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, defaults[name])
        if isinstance(self.milestones, list):       # config.json stores the tuple as a list
            self.milestones = tuple(self.milestones)
        super().__post_init__()

    def _check(self) -> None:
        super()._check()
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov needs momentum > 0", "nesterov")
        k = len(self.milestones)
        if self.schedule == "step" and k and self.gamma > 1 and \
                math.log(self.lr) + k * math.log(self.gamma) > math.log(FLOAT32_MAX):
            most = math.exp((math.log(FLOAT32_MAX) - math.log(self.lr)) / k)
            raise ConfigError(f"gamma must be <= {most:.4g} with lr {self.lr} and {k} "
                              f"milestone(s) (the learning rate must stay a float32), got "
                              f"{self.gamma}", "gamma")

    def to_dict(self) -> dict:
        """The configuration as plain data (``milestones`` as a list, as JSON stores it)."""
        d = super().to_dict()
        d["milestones"] = list(self.milestones)
        return d

    def sgd(self) -> SGDSettings:
        """These settings alone (e.g. to hand a loop the SGD of a whole run configuration)."""
        return SGDSettings(**{name: getattr(self, name) for name in SGD_FIELDS})


def scheduled_lr(settings: SGDSettings, t: float, total: float) -> float:
    """The learning rate at progress ``t`` of ``total`` (epochs, generations or steps).

    cosine: lr0 · ½(1 + cos(π t / total)), reaching 0 at the end (Ding & Spector 2022, §3: per
    generation in GLS, per epoch for SGD; per step in the loss searches' trainings);
    step: lr0 · γ^(number of milestones ≤ t), as ``torch.optim.lr_scheduler.MultiStepLR``;
    constant: lr0.
    """
    if settings.schedule == "cosine":
        return settings.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, total) / max(total, 1)))
    if settings.schedule == "step":
        return settings.lr * settings.gamma ** sum(1 for m in settings.milestones if t >= m)
    return settings.lr


def make_optimizer(params, settings: SGDSettings):
    """``torch.optim.SGD`` over ``params`` with ``settings``' lr, momentum, Nesterov and weight
    decay (the learning rate is then set by the loop through :func:`scheduled_lr`)."""
    import torch
    return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                           nesterov=settings.nesterov, weight_decay=settings.weight_decay)


def set_lr(optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of ``optimizer`` to ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr


__all__ = ["SGDSettings", "SGD_FIELDS", "SCHEDULES", "scheduled_lr", "make_optimizer", "set_lr"]
