"""EvoMAL configurations, with their constraints declared once (Raymond et al. 2023, TPAMI).

* :class:`EvoMALConfig` — everything one fitness evaluation needs (§4.5-4.7: local search by
  unrolled differentiation, rejection protocol, learned-loss training, the seeds of its random
  draws). Plain data, picklable:
  SCOOP ships it to the workers inside :class:`~deapnn.evomal.evaluator.EvoMALEvaluator`.
* :class:`EvoMALRunConfig` — a whole ``deapnn evomal`` run: the evaluation settings (it derives
  from :class:`EvoMALConfig`) plus the GP search (§4.1-4.3, Table 2: population, generations,
  crossover / mutation rates, elitism, tournament, height limit) and the final comparison
  (§5: seeds, SGD steps, evaluation grid). ``config.json`` stores it flat. ``generations``
  counts populations, the initial one included (the paper's 50 generations = 50 populations).

Defaults are the reference's (Table 2 and the reference code's configurations: the base
learner's SGD per dataset, :func:`reference_sgd`; the meta-testing schedule per dataset,
:func:`reference_final_schedule`; the rejection protocol, its step count per dataset and the
common fitness seed of its code) except where the command line chose smaller ones for a run
on one machine (``generations`` 10, ``seeds`` 3).
``docs/faithfulness.md`` (EvoMAL table) lists every difference and the options that restore the
earlier behaviour (``rejection="before"``, ``fitness_seed="per_tree"``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from deapnn.algorithms.evomal import variation_error
from deapnn.comparison import DEFAULT_LR_GRID, DEFAULT_TUNE_SEEDS, grid_ok
from deapnn.config import (FLOAT32_MAX, Check, ConfigError, Interval, Options, int_list,
                           seed_constraint)
from deapnn.sgd import SGDSettings

_POSITIVE = [Interval(float, 0, FLOAT32_MAX, "neither")]

#: rejection protocols: "reference" — after the local search, the learned loss optimises a
#: fresh network's outputs for the first training rows towards their labels (the reference
#: code's); "before" — before the local search, the unweighted tree optimises random
#: predictions towards random targets (cheaper screen)
REJECTIONS = ("reference", "before")
#: fitness seeds: "common" — every candidate evaluated with the same seed (common random
#: numbers, the reference code's); "per_tree" — a seed derived from the tree string
FITNESS_SEEDS = ("common", "per_tree")
#: datasets whose reference rejection protocol takes 100 Adam steps (the reference's MNIST
#: configuration, and the MNIST-like stand-ins); every other dataset takes 1,000
MNIST_LIKE = ("mnist", "fashion_mnist", "digits", "mnist1d")


#: datasets whose reference configuration trains the base network with plain SGD (``base_*``
#: and ``testing_*`` momentum 0, no Nesterov, weight decay 0: its MNIST configuration); every
#: other dataset uses momentum 0.9, Nesterov and weight decay 5e-4 (its tabular, CIFAR and SVHN
#: configurations)
PLAIN_SGD = ("mnist",)
#: datasets whose reference meta-testing runs 150,000 steps with the learning rate × 0.1 at
#: steps 100,000 and 135,000 (its CIFAR-10, CIFAR-100 and SVHN configurations); every other
#: dataset runs 10,000 steps at a constant learning rate
LONG_FINAL = ("cifar10", "cifar100", "svhn")


def reference_sgd(dataset: str) -> tuple[float, bool, float]:
    """The reference's base-learner SGD ``(momentum, nesterov, weight_decay)`` for ``dataset``
    (Raymond et al. 2023 code configurations): ``(0, False, 0)`` for MNIST, else
    ``(0.9, True, 5e-4)``."""
    return (0.0, False, 0.0) if dataset in PLAIN_SGD else (0.9, True, 5e-4)


def reference_final_schedule(dataset: str) -> tuple[int, tuple]:
    """The reference's meta-testing ``(steps, milestones)`` for ``dataset``: 150,000 steps with
    milestones (100,000, 135,000) for CIFAR-10/100 and SVHN, else 10,000 steps and none."""
    return (150_000, (100_000, 135_000)) if dataset in LONG_FINAL else (10_000, ())


def reference_rejection_steps(dataset: str) -> int:
    """The reference's rejection-protocol steps for ``dataset`` (``filter_gradient_steps`` of
    its configurations: 100 for MNIST, 1,000 for every other dataset)."""
    return 100 if dataset in MNIST_LIKE else 1000


@dataclass
class EvoMALConfig(SGDSettings):
    """One EvoMAL fitness evaluation (plain data, picklable). The SGD settings are the base
    learner's (local search, fitness and final training): :meth:`sgd_defaults` resolves the
    ones left ``None`` to the reference's for the dataset (:func:`reference_sgd`)."""
    dataset: str = "diabetes"
    seed: int = 0
    model: str = "mlp"
    hidden: tuple | None = None          # MLP hidden sizes override (tests, quick demos)
    meta_steps: int = 250
    inner_steps: int = 1
    meta_lr: float = 1e-3
    fitness_steps: int = 500
    rejection: str = "reference"
    rejection_samples: int = 100
    rejection_steps: int | None = None   # None: the reference's per dataset (100 MNIST-like, else 1,000)
    rejection_lr: float = 0.01           # Adam; the reference uses the base learning rate
    fitness_seed: str = "common"
    nonnegative: bool = False
    device: str | None = None
    root: str | None = None              # torchvision datasets: where their files are
    download: bool = False               # torchvision datasets: fetch missing files

    _parameter_constraints = {
        **SGDSettings._parameter_constraints,
        "dataset": [str], "seed": seed_constraint(), "model": [str],
        "hidden": [None, int_list(1)],
        "meta_steps": [Interval(int, 0)],
        "inner_steps": [Interval(int, 1)],
        "meta_lr": _POSITIVE, "rejection_lr": _POSITIVE,
        "nonnegative": [bool],
        "fitness_steps": [Interval(int, 0)],
        "rejection": [Options(REJECTIONS)],
        "rejection_samples": [Interval(int, 1)],
        "rejection_steps": [None, Interval(int, 1)],
        "fitness_seed": [Options(FITNESS_SEEDS)],
        "device": [None, str],
        "root": [None, str], "download": [bool],
    }

    def __post_init__(self):
        if isinstance(self.hidden, list):       # config.json stores the tuple as a list
            self.hidden = tuple(self.hidden)
        super().__post_init__()

    def sgd_defaults(self) -> dict:
        """The reference's base-learner SGD for the dataset (Raymond et al. 2023 code
        configurations, :func:`reference_sgd`): lr 0.01, batch 128, a constant learning rate;
        momentum, Nesterov and weight decay per dataset, Nesterov off when the momentum given
        is 0."""
        momentum, nesterov, decay = reference_sgd(self.dataset)
        if self.momentum is not None:
            nesterov = nesterov and self.momentum > 0
        return {"lr": 0.01, "momentum": momentum, "nesterov": nesterov, "weight_decay": decay,
                "batch_size": 128, "schedule": "constant", "milestones": (), "gamma": 0.1}

    def _check(self) -> None:
        super()._check()
        from deapnn.data import DATASETS
        from deapnn.models import MODELS, check_model_input
        if self.hidden is not None and self.model != "mlp" and self.model in MODELS:
            raise ConfigError(f"hidden sets the layers of model mlp, not of {self.model}",
                              "hidden")
        if self.dataset in DATASETS and self.model in MODELS:
            try:        # a base network that cannot take the data fails every candidate
                check_model_input(self.model, DATASETS[self.dataset].input_shape)
            except ValueError as exc:
                raise ConfigError(f"model {self.model} does not fit dataset {self.dataset}: "
                                  f"{exc}", "model") from None

    def steps_of_rejection(self) -> int:
        """The rejection protocol's Adam steps: ``rejection_steps``, or when None the
        reference's for the dataset (:func:`reference_rejection_steps`)."""
        if self.rejection_steps is not None:
            return self.rejection_steps
        return reference_rejection_steps(self.dataset)

    def local_search_config(self):
        """The :class:`~deapnn.losses.unrolled.LocalSearchConfig` of the local search (§4.5)."""
        from deapnn.losses.unrolled import LocalSearchConfig
        return LocalSearchConfig(**self.sgd().to_dict(), meta_steps=self.meta_steps,
                                 inner_steps=self.inner_steps, meta_lr=self.meta_lr,
                                 val_batch_size=self.batch_size)

    def to_dict(self) -> dict:
        """The configuration as plain data (the SGD settings resolved when it was made, so a
        stored configuration says what was run)."""
        d = super().to_dict()
        d["hidden"] = list(self.hidden) if self.hidden is not None else None
        return d


@dataclass
class EvoMALRunConfig(EvoMALConfig):
    """A ``deapnn evomal`` run: evaluation settings (inherited) + search + final comparison.

    ``device`` and ``final_eval_every`` are settings of the invocation, not of the run: they
    are not stored in ``config.json`` (device) or not taken from it (``final_eval_every``) — a
    resumed run uses this command line's values (:meth:`for_invocation`). The final trainings
    are re-done when the evaluation grid differs from the stored ``final_runs.json``."""
    population: int = 25
    generations: int = 10                # populations evaluated, the initial one included
    cxpb: float = 0.7
    mutpb: float = 0.25
    elitism: int = 1
    tournament: int = 4
    max_height: int = 10
    seeds: int = 5
    final_steps: int | None = None       # None: the reference's per dataset (10,000 or 150,000)
    final_milestones: tuple | None = None  # lr × 0.1 at these steps; None: the reference's
    final_eval_every: int = 0            # 0: final steps / 20
    final_model: str | None = None       # final comparison's network (None: model)
    tune: bool = True                    # tuned final comparison (deapnn.comparison)
    lr_grid: list = dataclasses.field(default_factory=lambda: list(DEFAULT_LR_GRID))
    tune_seeds: int = DEFAULT_TUNE_SEEDS  # tuning seeds per grid point (validation split)
    baselines: list = dataclasses.field(default_factory=list)   # deapnn.losses.get names

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.final_milestones, list):   # config.json stores the tuple as a list
            self.final_milestones = tuple(self.final_milestones)

    #: settings a resumed run takes from its command line, not from config.json
    INVOCATION = ("device", "final_eval_every")
    #: settings of the tuned final comparison (absent from run directories written before it)
    TUNING = ("tune", "lr_grid", "tune_seeds", "baselines", "final_model")

    _parameter_constraints = {
        **EvoMALConfig._parameter_constraints,
        "population": [Interval(int, 2)],
        "generations": [Interval(int, 1)],
        "cxpb": [Interval(float, 0, 1)], "mutpb": [Interval(float, 0, 1)],
        "elitism": [Interval(int, 0)],
        "tournament": [Interval(int, 1)],
        # argument correction adds one level; deapnn.losses.tree.MAX_TREE_HEIGHT is 90
        "max_height": [Interval(int, 1, 89)],
        "seeds": [Interval(int, 1)],
        "final_steps": [None, Interval(int, 0)],
        "final_milestones": [None, int_list(1, nonempty=False)],
        "final_eval_every": [Interval(int, 0)],
        "final_model": [None, str],
        "tune": [bool],
        "lr_grid": [Check(grid_ok, "a non-empty list of distinct positive learning-rate "
                                   "multipliers")],
        "tune_seeds": [Interval(int, 1)],
        "baselines": [Check(lambda v: isinstance(v, (list, tuple))
                            and all(isinstance(x, str) and x for x in v),
                            "a list of loss names (deapnn.losses.get)")],
    }

    def _check(self) -> None:
        super()._check()
        why = variation_error(self.cxpb, self.mutpb)
        if why:
            raise ConfigError(why, "cxpb")
        if self.elitism >= self.population:
            raise ConfigError(f"elitism must be < population, got {self.elitism}", "elitism")
        if self.baselines:
            from deapnn.data import DATASETS
            spec = DATASETS.get(self.dataset)
            if spec is not None and spec.task != "classification":
                raise ConfigError(f"the library's losses (deapnn.losses.get) are classification "
                                  f"losses; {self.dataset} is {spec.task}", "baselines")
            from deapnn.nlfs.config import check_baselines
            check_baselines(self.baselines)

    def final_network(self) -> "EvoMALConfig":
        """The base-network settings of the final comparison: ``final_model`` in place of
        ``model`` when given (the transfer check)."""
        if not self.final_model or self.final_model == self.model:
            return self
        return dataclasses.replace(self, model=self.final_model)

    def ngen(self) -> int:
        """Generations after the initial population (DEAP's ``ngen`` of
        :func:`~deapnn.algorithms.evomal.eaEvoMAL`): ``generations - 1``."""
        return self.generations - 1

    def evaluation(self) -> EvoMALConfig:
        """The settings of one fitness evaluation."""
        return EvoMALConfig(**{f.name: getattr(self, f.name)
                               for f in dataclasses.fields(EvoMALConfig)})

    def steps_of_final(self) -> int:
        """SGD steps of the final training: ``final_steps``, or when None the reference's for
        the dataset (:func:`reference_final_schedule`)."""
        if self.final_steps is not None:
            return self.final_steps
        return reference_final_schedule(self.dataset)[0]

    def milestones_of_final(self) -> tuple:
        """Steps of the final training at which the learning rate is multiplied by 0.1:
        ``final_milestones``, or when None the reference's for the dataset if the final
        training has the reference's length (none if ``final_steps`` sets another length)."""
        if self.final_milestones is not None:
            return tuple(self.final_milestones)
        steps, milestones = reference_final_schedule(self.dataset)
        return milestones if self.steps_of_final() == steps else ()

    def eval_every(self) -> int:
        """Steps between test/validation evaluations of the final training."""
        return self.final_eval_every or max(1, self.steps_of_final() // 20)

    def for_invocation(self, **values) -> "EvoMALRunConfig":
        """This configuration with the invocation settings (:attr:`INVOCATION`) replaced."""
        unknown = set(values) - set(self.INVOCATION)
        if unknown:
            raise ConfigError(f"not an invocation setting: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **values).validate()

    def to_dict(self) -> dict:
        """The stored configuration (``config.json``): the device left out, the reference's
        per-dataset settings resolved."""
        d = super().to_dict()
        d.pop("device")
        d["final_steps"], d["final_milestones"] = self.steps_of_final(), \
            list(self.milestones_of_final())
        return d

    #: the settings absent from a config.json written before them, with the values that
    #: reproduce such a run: its rejection protocol and per-tree seeds, and its
    #: ``generations`` that counted the generations after the initial population
    PRE_FAITHFUL = {"rejection": "before", "fitness_seed": "per_tree"}

    @classmethod
    def from_dict(cls, data: dict) -> "EvoMALRunConfig":
        """The stored configuration (see :meth:`Config.from_dict`). A ``config.json`` written
        before the ``rejection`` setting existed describes a run made with the earlier
        behaviour: it is read with :attr:`PRE_FAITHFUL` and ``generations + 1`` (the same
        number of populations), so a resumed run continues as it started."""
        if isinstance(data, dict) and "tune" not in data:
            data = {**data, "tune": False}      # written before the tuned comparison: untuned
        if isinstance(data, dict) and "rejection" not in data:
            data = {**cls.PRE_FAITHFUL, **data}
            if isinstance(data.get("generations"), int):
                data["generations"] += 1
            if data.get("rejection_steps") is None:
                data["rejection_steps"] = 1000
        return super().from_dict(data)

    @classmethod
    def from_legacy(cls, flat: dict) -> "EvoMALRunConfig":
        """The configuration of a run directory written before the one ``config.json`` layout
        (every command-line value at top level)."""
        names = {f.name for f in dataclasses.fields(cls)} - set(cls.INVOCATION) - set(cls.TUNING)
        return cls.from_dict({k: v for k, v in flat.items() if k in names})


__all__ = ["EvoMALConfig", "EvoMALRunConfig", "REJECTIONS", "FITNESS_SEEDS", "MNIST_LIKE",
           "reference_rejection_steps"]
