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
import math
from dataclasses import InitVar, dataclass

from deapnn.algorithms.evomal import variation_error
from deapnn.comparison import TuningSettings
from deapnn.config import (FLOAT32_MAX, SIZE_MAX, ConfigError, Interval, Options, check_network,
                           dataset_of, int_list, network_parameters, parse_list,
                           seed_constraint, setting)
from deapnn.data import RegimeSettings, dataset_argument
from deapnn.deprecation import former_name
from deapnn.fastpath import FastPathSettings
from deapnn.losses.archive import ARCHIVE_KEYS
from deapnn.models.init import INITS
from deapnn.sgd import SGDSettings

_POSITIVE = [Interval(float, 0, FLOAT32_MAX, "neither")]
_SEARCH = "search (reference defaults: Raymond et al. 2023, Table 2)"

#: rejection protocols: "reference" — after the local search, the learned loss optimises a
#: fresh network's outputs for the first training rows towards their labels (the reference
#: code's); "before" — before the local search, the unweighted tree optimises random
#: predictions towards random targets (cheaper screen)
REJECTIONS = ("reference", "before")
#: fitness seeds: "common" — every candidate evaluated with the same seed (common random
#: numbers, the reference code's); "per_tree" — a seed derived from the tree string
FITNESS_SEEDS = ("common", "per_tree")
@dataclass(frozen=True)
class ReferenceConfiguration:
    """One of the EvoMAL reference code's dataset configurations
    (``experiments/resources/configurations/*.yaml``): the base learner's SGD (``base_*`` and
    ``testing_*`` momentum, Nesterov, weight decay; lr 0.01 and batch 128 in all), the rejection
    protocol's Adam steps (``filter_gradient_steps``) and the meta-testing schedule
    (``testing_gradient_steps``, ``testing_milestones``, ×0.1 at each)."""
    files: str
    momentum: float
    nesterov: bool
    weight_decay: float
    rejection_steps: int
    final_steps: int
    final_milestones: tuple


#: the reference's configurations, by the name :data:`DATASET_CONFIGURATION` maps to
REFERENCE_CONFIGURATIONS = {
    "mnist": ReferenceConfiguration("mnist_config.yaml", 0.0, False, 0.0, 100, 10_000, ()),
    "tabular": ReferenceConfiguration("diabetes_config.yaml, boston_config.yaml, "
                                      "california_config.yaml", 0.9, True, 5e-4, 1000, 10_000, ()),
    "cifar": ReferenceConfiguration("cifar10_config.yaml, cifar100_config.yaml, "
                                    "svhn_config.yaml", 0.9, True, 5e-4, 1000, 150_000,
                                    (100_000, 135_000)),
}
#: the reference configuration of each dataset: its own where the reference has one, MNIST's
#: for the MNIST-like stand-ins (fashion_mnist, digits, mnist1d, mnist1d_large); every other
#: dataset (the tabular ones: diabetes, iris, wine, breast_cancer) takes the tabular one
DATASET_CONFIGURATION = {"mnist": "mnist", "fashion_mnist": "mnist", "digits": "mnist",
                         "mnist1d": "mnist", "mnist1d_large": "mnist", "cifar10": "cifar",
                         "cifar100": "cifar", "svhn": "cifar"}
#: the reference's MLP (``experiments/resources/models/mlp.py``: two hidden layers of
#: ``hidden_dim=1000``, which no configuration overrides)
REFERENCE_HIDDEN = (1000, 1000)


def reference_configuration(dataset: str) -> ReferenceConfiguration:
    """The reference configuration ``dataset`` takes (:data:`DATASET_CONFIGURATION`)."""
    return REFERENCE_CONFIGURATIONS[DATASET_CONFIGURATION.get(dataset, "tabular")]


def reference_sgd(dataset: str) -> tuple[float, bool, float]:
    """The reference's base-learner SGD ``(momentum, nesterov, weight_decay)`` for ``dataset``
    (Raymond et al. 2023 code configurations): ``(0, False, 0)`` in the MNIST configuration,
    else ``(0.9, True, 5e-4)``."""
    ref = reference_configuration(dataset)
    return ref.momentum, ref.nesterov, ref.weight_decay


def reference_final_schedule(dataset: str) -> tuple[int, tuple]:
    """The reference's meta-testing ``(steps, milestones)`` for ``dataset``: 150,000 steps with
    milestones (100,000, 135,000) in the CIFAR/SVHN configuration, else 10,000 steps and none."""
    ref = reference_configuration(dataset)
    return ref.final_steps, ref.final_milestones


def reference_rejection_steps(dataset: str) -> int:
    """The reference's rejection-protocol steps for ``dataset`` (``filter_gradient_steps``: 100
    in the MNIST configuration, 1,000 in every other one)."""
    return reference_configuration(dataset).rejection_steps


@dataclass
class EvoMALConfig(SGDSettings, RegimeSettings, FastPathSettings):
    """One EvoMAL fitness evaluation (plain data, picklable). The SGD settings are the base
    learner's (local search, fitness and final training): :meth:`sgd_defaults` resolves the
    ones left ``None`` to the reference's for the dataset (:func:`reference_sgd`). The
    training split is in the regime of :class:`~deapnn.data.RegimeSettings`; the fitness and
    final trainings run on the fast path of :class:`~deapnn.fastpath.FastPathSettings` (the
    unrolled local search stays eager float32)."""
    dataset: str = setting("diabetes", "diabetes, digits, or any `deapnn datasets` name, a path "
                                       "to your .npz or package.module:function",
                           parse=dataset_argument, group=_SEARCH)
    seed: int = setting(0, "run seed (python, numpy, torch)", group="run")
    model: str = setting("mlp", "base network (mlp, cnn, ...) or your factory "
                                "package.module:function", group=_SEARCH)
    hidden: tuple | None = setting(
        None, "MLP hidden sizes, e.g. 256,256 (default: the reference's 1000,1000)",
        parse=parse_list(int, "layer sizes", positive=True, nonempty=True), group=_SEARCH)
    init: str = setting(
        "xavier", "initialisation of every base network: 'xavier' (Xavier-uniform weights, zero "
                  "biases: the reference's) or 'pytorch' (each layer's default)",
        metavar="|".join(INITS), group=_SEARCH)
    meta_steps: int = setting(250, "local-search meta-steps", group="evaluation")
    inner_steps: int = setting(1, "unrolled inner SGD steps K (>= 1)", group="evaluation")
    meta_lr: float = setting(1e-3, "local-search Adam learning rate", group="evaluation")
    fitness_steps: int = setting(500, "SGD steps of a fitness evaluation", group="evaluation")
    rejection: str = setting(
        "reference", "rejection protocol: 'reference' (after the local search, the learned loss "
                     "on a fresh network's outputs for the first training rows and their "
                     "labels) or 'before' (before the local search, the unweighted tree on "
                     "random predictions and targets)", metavar="|".join(REJECTIONS),
        group="evaluation")
    rejection_samples: int = 100
    rejection_steps: int | None = setting(
        None, "rejection-protocol Adam steps (default: the reference's, 100 on MNIST-like "
              "datasets, else 1000)", group="evaluation")
    rejection_lr: float = 0.01           # Adam; the reference uses the base learning rate
    fitness_seed: str = setting(
        "common", "'common': every candidate evaluated with the same seed (common random "
                  "numbers, the reference's); 'per_tree': a seed derived from the tree",
        metavar="|".join(FITNESS_SEEDS), group="evaluation")
    nonnegative: bool = setting(False, "softplus on the loss output",
                                group=_SEARCH)
    device: str | None = setting(None, invocation=True)   # --device's, never stored
    root: str | None = setting(None, "data directory for torchvision datasets", group="data")
    download: bool = setting(False, "let torchvision download missing files", group="data")

    _parameter_constraints = {
        **SGDSettings._parameter_constraints, **RegimeSettings._parameter_constraints,
        **FastPathSettings._parameter_constraints,
        "dataset": [str], "seed": seed_constraint(), "model": [str],
        "hidden": [None, int_list(1, high=SIZE_MAX)],
        "init": [Options(INITS)],
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
        from deapnn.data import dataset_names, is_user_spec
        from deapnn.models import USER_MODEL, is_user_model, model_names
        for name, value, valid, user, words in (
                ("dataset", self.dataset, dataset_names(), is_user_spec,
                 "a path to an .npz file, or package.module:function"),
                ("model", self.model, model_names(), is_user_model, USER_MODEL)):
            if value not in valid and not user(value):
                raise ConfigError(f"unknown {name} {value!r}; valid: "
                                  f"{', '.join(sorted(valid))}, or {words}", name)
        if self.hidden is not None and self.model != "mlp":
            raise ConfigError(f"hidden sets the layers of model mlp, not of {self.model}",
                              "hidden")
        # a base network that cannot take the data fails every candidate
        check_network(self.model, dataset_of(self.dataset))

    def hidden_of_model(self) -> tuple | None:
        """The MLP's hidden sizes: ``hidden``, or when None the reference's
        (:data:`REFERENCE_HIDDEN`); None for any other model."""
        if self.model != "mlp":
            return None
        return tuple(self.hidden) if self.hidden is not None else REFERENCE_HIDDEN

    def memory_needs(self) -> list[tuple[str, float, str]]:
        """One base network trained by unrolled differentiation (§4.5): its float32 weights
        four times (weights, gradients, SGD momentum, the unrolled step's updated copy) and, for
        the MLP, its activations twice (forward and backward) for the larger of a batch and
        the rejection protocol's rows; measured peaks are higher (about 6x and 3x)."""
        try:
            spec = dataset_of(self.dataset)
        except ConfigError:
            return []
        hidden = self.hidden_of_model()
        if hidden is None:
            n, width = network_parameters(self.model, spec.input_shape, spec.num_classes), 0
        else:
            widths = [math.prod(spec.input_shape), *hidden, spec.num_classes]
            n = sum(a * b + b for a, b in zip(widths, widths[1:]))
            width = sum(widths[1:])
        weights = 4 * 4 * n
        activations = 2 * 4 * width * max(self.batch_size, self.rejection_samples)
        what = f"a base network of {n:,} parameters" + (
            f" and batches of {self.batch_size} through its {width:,} units" if width else "")
        name = "hidden" if self.hidden is not None else \
            "batch_size" if activations > weights else "model"
        return [(name, weights + activations, what)]

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
                                 val_batch_size=self.batch_size, init=self.init)

    def to_dict(self) -> dict:
        """The configuration as plain data (the SGD settings resolved when it was made, so a
        stored configuration says what was run)."""
        d = super().to_dict()
        hidden = self.hidden_of_model()
        d["hidden"] = list(hidden) if hidden is not None else None
        return d


@dataclass
class EvoMALRunConfig(EvoMALConfig, TuningSettings):
    """A ``deapnn evomal`` run: evaluation settings (inherited) + search + final comparison.

    ``device`` and ``final_eval_every`` are settings of the invocation, not of the run: they
    are not stored in ``config.json`` (device) or not taken from it (``final_eval_every``) — a
    resumed run uses this command line's values (:meth:`~deapnn.config.Config.for_invocation`).
    The final trainings
    are re-done when the evaluation grid differs from the stored ``final_runs.json``."""
    population_size: int = setting(25, "population size", group=_SEARCH,
                                   aliases=("--population",))
    generations: int = setting(
        10, "populations evaluated, the initial one included (the paper: 50)", group=_SEARCH)
    cxpb: float = setting(0.7, "crossover probability", group=_SEARCH)
    mutpb: float = setting(0.25, "mutation probability", group=_SEARCH)
    elitism: int = setting(1, "best trees kept unchanged (0: the reference's none)",
                           group=_SEARCH)
    tournament: int = setting(4, "tournament size", group=_SEARCH)
    max_height: int = setting(10, "tree height limit", group=_SEARCH)
    archive_key: str = setting(
        "tree", "what the fitness archive keys by: 'tree' (the exact tree, the reference's: a "
                "tree's local search is its own) or 'fingerprint' (outputs on probe inputs: "
                "equivalent trees share one evaluation)", metavar="|".join(ARCHIVE_KEYS),
        group=_SEARCH)
    final_steps: int | None = setting(
        None, "SGD steps of the final training (default: the reference's, 150000 on "
              "cifar10/cifar100/svhn, else 10000)", group="final comparison")
    final_milestones: tuple | None = setting(
        None, "final-training steps at which the learning rate is multiplied by 0.1; '' for "
              "none (default: the reference's, 100000,135000 on cifar10/cifar100/svhn at the "
              "reference's length, else none)", metavar="S1,S2",
        parse=parse_list(int, "step numbers", positive=True), group="final comparison")
    final_eval_every: int = setting(
        0, "evaluate test and validation every N steps of the final training (0: final-steps "
           "/ 20); the early-stopped result picks the best-validation step. On --resume this "
           "flag is taken from the command line, not config.json", metavar="N",
        invocation=True, group="final comparison")
    population: InitVar[int | None] = None   # former name of population_size (0.3.0: removed)

    def __post_init__(self, population: int | None = None):
        self.population_size = former_name(population, self.population_size,
                                           "EvoMALRunConfig(population=)", "population_size=",
                                           default=25)
        super().__post_init__()
        if isinstance(self.final_milestones, list):   # config.json stores the tuple as a list
            self.final_milestones = tuple(self.final_milestones)

    #: settings of the tuned final comparison (absent from run directories written before it)
    TUNING = ("tune", "lr_grid", "tune_seeds", "baselines", "final_model")

    _parameter_constraints = {
        **EvoMALConfig._parameter_constraints, **TuningSettings._parameter_constraints,
        "population_size": [Interval(int, 2)],
        "generations": [Interval(int, 1)],
        "cxpb": [Interval(float, 0, 1)], "mutpb": [Interval(float, 0, 1)],
        "elitism": [Interval(int, 0)],
        "tournament": [Interval(int, 1)],
        # argument correction adds one level; deapnn.losses.tree.MAX_TREE_HEIGHT is 90
        "max_height": [Interval(int, 1, 89)],
        "archive_key": [Options(ARCHIVE_KEYS)],
        "final_steps": [None, Interval(int, 0)],
        "final_milestones": [None, int_list(1, nonempty=False)],
        "final_eval_every": [Interval(int, 0)],
    }

    def _check(self) -> None:
        super()._check()
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed (the final training is the "
                              "run's result)", "seeds")
        why = variation_error(self.cxpb, self.mutpb)
        if why:
            raise ConfigError(why, "cxpb")
        if self.elitism >= self.population_size:
            raise ConfigError(f"elitism must be < population_size, got {self.elitism}",
                              "elitism")
        if self.final_model and self.final_model != self.model:
            check_network(self.final_model, dataset_of(self.dataset), "final_model")
        if self.baselines:
            spec = dataset_of(self.dataset)
            if spec.task != "classification":
                raise ConfigError(f"the library's losses (deapnn.losses.get) are classification "
                                  f"losses; {self.dataset} is {spec.task}", "baselines")

    def final_network(self) -> EvoMALConfig:
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

    def to_dict(self) -> dict:
        """The stored configuration (``config.json``): the device left out, the reference's
        per-dataset settings resolved."""
        d = super().to_dict()
        d.pop("device")
        d["final_steps"], d["final_milestones"] = self.steps_of_final(), \
            list(self.milestones_of_final())
        return d


__all__ = ["EvoMALConfig", "EvoMALRunConfig", "REJECTIONS", "FITNESS_SEEDS",
           "REFERENCE_CONFIGURATIONS", "DATASET_CONFIGURATION", "REFERENCE_HIDDEN",
           "reference_configuration", "reference_rejection_steps"]
