"""Configuration of a GLS comparison: :class:`GLSConfig` and the comparison arms (Ding & Spector
2022, §4: GLS against SGD at the same epochs, SGD at matched gradient compute and SubGD with
random selection; beyond the paper, two controls: ``sgd_reset``, SGD whose momentum is reset
every T steps, T = a GLS child's steps per generation, and ``sgd_tuned``, SGD at the learning
rate of a small grid that scores best on the validation split; ``docs/faithfulness.md``) —
and, for a long-tailed training split (``imbalance``, issue 25), the class-rebalancing baselines
``sgd_balanced`` and ``sgd_resampled`` (:mod:`deapnn.rebalance`), tuned as ``sgd_tuned``)."""
from __future__ import annotations

from dataclasses import InitVar, dataclass

from ..algorithms.gradient_lexicase import GLSLoopConfig
from ..baseline import SGDRunConfig
from ..operators.gls_cases import CASE_METRICS, MAX_CHUNK_SIZE, LexicaseSettings
from ..deprecation import former_name
from ..config import (Check, ConfigError, Interval, Options, dataset_of, network_parameters,
                      parse_list, parse_seeds, seed_list, setting, subset_of)

ARMS = ("gls", "sgd", "sgd_matched", "random", "sgd_reset", "sgd_tuned", "sgd_balanced",
        "sgd_resampled")
ARM_TITLES = {"gls": "GLS", "sgd": "SGD (same epochs)", "sgd_matched": "SGD ((p+1)× epochs)",
              "random": "SubGD + random selection", "sgd_reset": "SGD, momentum reset",
              "sgd_tuned": "SGD, lr tuned on val", "sgd_balanced": "SGD, class-weighted loss",
              "sgd_resampled": "SGD, balanced sampling"}
#: the class-rebalancing baselines of a long-tailed split (issue 25, :mod:`deapnn.rebalance`)
REBALANCING_ARMS = ("sgd_balanced", "sgd_resampled")
#: the arms whose learning rate is chosen on the validation split from ``tune_factors``
TUNED_ARMS = ("sgd_tuned", *REBALANCING_ARMS)
SELECTION_DATA = ("clean", "augmented")
#: the learning rates ``sgd_tuned`` tries, as multiples of ``lr``
TUNE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _augmentation_ok(value) -> bool:
    from ..data import parse_kind
    parse_kind(value)
    return True


def _epsilon(text: str):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number or auto, got {text!r}") from None


@dataclass
class GLSConfig(SGDRunConfig):
    """Everything that defines a GLS comparison (stored as the run's ``config.json``): the
    dataset, model and SGD settings of :class:`~deapnn.baseline.SGDRunConfig` (``epochs``: the
    baselines' epochs; SGD defaults :attr:`SGD_DEFAULTS`, the paper's) and the GLS settings.

    ``val_size`` (see :func:`deapnn.data.load_dataset`): ``None`` holds out the dataset's usual
    validation split (5,000 CIFAR/SVHN images); 0 is the paper's protocol (Ding & Spector 2022,
    §4): every arm trains on the whole training set and only the final parent's test accuracy
    is measured.

    Beyond the paper (issue "GLS in the paper's regime"): ``augmentation`` chooses the
    augmentation kind (see :meth:`augmentation_kind`); ``case_metric="loss"`` makes lexicase
    compare per-case cross-entropy, with ``epsilon`` (None: exact, a number, or "auto": the
    MAD of the case's losses over the current pool, "dynamic" ε-lexicase, La Cava et al. 2016);
    ``diagnostics`` logs, per generation, whether the winner trained on the case that decided
    its selection and whether it is the best child on the validation split; ``tune_factors``
    are the multiples of ``lr`` the ``sgd_tuned`` arm tries (and ``sgd_balanced`` and
    ``sgd_resampled``, the class-rebalancing baselines of ``imbalance``, issue 25)."""
    epochs: int = setting(30, "the baselines' epochs; GLS runs epochs x (p+1) generations",
                          group="training")
    population_size: int = setting(4, "children per generation, p", group="GLS",
                                   aliases=("--pop",))
    pop: InitVar[int | None] = None      # former name of population_size (removed in 0.3.0)
    momentum_mode: str = setting("reset", "reset | inherit | none", group="GLS")
    init: str = setting("clone", "clone | independent (reference code)", group="GLS")
    selection_data: str = setting("clean", "clean | augmented (reference code)", group="GLS")
    semantics: str = setting("standard", "standard | reference", group="GLS")
    chunk_size: int = setting(8, "first chunk of cases (doubles)", group="GLS")
    max_cases: int | None = setting(
        None, "cases one selection may examine (down-sampled lexicase; default: all)",
        group="GLS")
    eval_every: int = setting(
        0, "generations/epochs between evaluations (0: every epoch-equivalent)", group="GLS")
    val_size: int | None = setting(
        None, "validation examples held out of the training set (default: the dataset's "
              "usual split, 5000 for CIFAR/SVHN; 0: none, train on all of it and report the "
              "final test accuracy only, as the paper)", group="data")
    arms: list = setting(
        factory=lambda: ["sgd"], flag="--compare", group="GLS", metavar="ARM,...",
        parse=parse_list(str, "arm names", skip=("none",)),
        help="arms beside GLS, which always runs: sgd, sgd_matched, random, sgd_reset, "
             "sgd_tuned, sgd_balanced (loss weighted by inverse class frequency), "
             "sgd_resampled (class-balanced sampling) (comma-separated; none for GLS only)")
    seeds: list = setting(factory=lambda: [0], help="run seeds, e.g. 0,1,2 or 0-4",
                          parse=parse_seeds, metavar="SEEDS", group="run", aliases=("--seed",))
    augmentation: str | None = setting(
        None, "augmentation of SubGD and SGD batches (never of selection): none, crop, "
              "crop_flip, shift, optionally :PADDING, e.g. crop:1 for digits (default: the "
              "dataset's own; mnist1d_large: shift:4)", flag="--augment", metavar="KIND",
        parse=str, group="training")
    case_metric: str = setting("error", "lexicase on per-case top-1 error (the paper's) or loss",
                               group="GLS")
    epsilon: float | str | None = setting(
        None, "with --case-metric loss: a number or auto (MAD over the current pool)",
        parse=_epsilon, group="GLS")
    diagnostics: bool = setting(
        False, "log per generation whether the winner trained on the deciding case and is the "
               "best child on the validation split", group="GLS")
    tune_factors: list = setting(
        factory=lambda: list(TUNE_FACTORS), group="GLS", metavar="F,...",
        parse=parse_list(float, "numbers", nonempty=True),
        help="the multiples of --lr the sgd_tuned, sgd_balanced and sgd_resampled arms try")

    #: Ding & Spector 2022, §4 and the reference code's ``lexi.py``: SGD lr 0.1, momentum 0.9,
    #: weight decay 1e-4, no Nesterov, batch 64, cosine from lr to 0 over all generations
    SGD_DEFAULTS = {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 1e-4,
                    "batch_size": 64, "schedule": "cosine", "milestones": (), "gamma": 0.1}

    _parameter_constraints = {
        **SGDRunConfig._parameter_constraints,
        "population_size": GLSLoopConfig._parameter_constraints["population_size"],
        "momentum_mode": GLSLoopConfig._parameter_constraints["momentum_mode"],
        "init": GLSLoopConfig._parameter_constraints["init"],
        "selection_data": [Options(SELECTION_DATA)],
        **LexicaseSettings._parameter_constraints,
        # run_gls selects with selGradientLexicase's default largest chunk
        "chunk_size": [Interval(int, 1, MAX_CHUNK_SIZE)],
        "eval_every": [Interval(int, 0, None)],
        "val_size": [Interval(int, 0, None), None],
        "arms": [subset_of(ARMS)],
        "seeds": [seed_list()],
        "augmentation": [Check(_augmentation_ok, "none, crop, crop_flip or shift, optionally "
                                                 "with :PADDING (e.g. crop:1)"), None],
        "diagnostics": [bool],
        "tune_factors": [Check(lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < float("inf")
            for f in v), "a non-empty list of numbers > 0")],
    }

    def __post_init__(self, pop: int | None = None) -> None:
        self.population_size = former_name(pop, self.population_size, "GLSConfig(pop=)",
                                           "population_size=", default=4)
        super().__post_init__()

    def _check(self) -> None:
        """Beside the dataset/model/SGD checks: ``val_size`` leaves training examples."""
        super()._check()
        from ..data import is_user_spec
        info = dataset_of(self.dataset)
        pool = info.train_pool
        if self.val_size and pool is None and is_user_spec(self.dataset):
            raise ConfigError(f"val_size must be left out (or 0 for none) for {self.dataset}: "
                              f"it has its own validation split, x_val, y_val; got "
                              f"{self.val_size}", "val_size")
        if self.val_size is not None and pool is not None and self.val_size >= pool:
            raise ConfigError(f"val_size must be < {pool} (the training examples of "
                              f"{self.dataset}), got {self.val_size}", "val_size")
        if pool is not None:        # SubGD gives every child mini-batches of its own (§3.2)
            self._check_batches(pool - (self.val_size or 0), f"{self.dataset}: at most")
        LexicaseSettings(self.semantics, self.case_metric, self.epsilon, self.chunk_size,
                         self.max_cases)
        tuned = [a for a in TUNED_ARMS if a in self.arms]
        if tuned and self.val_size == 0:
            raise ConfigError(f"arm {tuned[0]} chooses its learning rate on the validation "
                              "split: it needs val_size > 0", "arms")
        rebalanced = [a for a in REBALANCING_ARMS if a in self.arms]
        if rebalanced and info.task != "classification":
            raise ConfigError(f"arm {rebalanced[0]} rebalances classes: {self.dataset} is a "
                              f"{info.task} dataset", "arms")
        kind = self.augmentation_kind()
        if kind is not None:
            import torch

            from ..data import augment_batch
            shape = info.input_shape
            try:
                augment_batch(torch.zeros((1,) + tuple(shape)), kind)
            except ValueError as exc:
                raise ConfigError(f"augmentation {kind} does not fit dataset {self.dataset}: "
                                  f"{exc}", "augmentation") from None

    def _check_batches(self, n_train: int, where: str) -> None:
        batches = -(-n_train // self.batch_size)
        if self.population_size > batches:
            raise ConfigError(
                f"population_size must be <= {batches}, the mini-batches of an epoch "
                f"({where} {n_train} training examples in batches of {self.batch_size}; each "
                f"child trains on batches of its own), got {self.population_size}",
                "population_size")

    def check_training_split(self, data, seed: int) -> None:
        """With a data regime (checked before the run starts, :meth:`check_regime`): the
        long-tailed training split still gives every child mini-batches of its own."""
        self._check_batches(len(data.train), f"{self.dataset} in its regime with seed {seed}:")

    def memory_needs(self) -> list[tuple[str, float, str]]:
        """The children of a generation, each with its weights, gradients and (unless
        ``momentum_mode`` is none or momentum 0) momentum buffers, as float32, and the parent;
        activations and the data come on top."""
        spec = dataset_of(self.dataset)
        n = network_parameters(self.model, spec.input_shape, spec.num_classes)
        copies = 2 if self.momentum == 0 or self.momentum_mode == "none" else 3
        need = 4 * n * (copies * self.population_size + 1)
        return [("population_size", need, f"{self.population_size} children of {n:,} "
                                          f"parameters")]

    def augmentation_kind(self, dataset_default: str | None = "registry") -> str | None:
        """The augmentation SubGD and the SGD arms apply (never selection, unless
        ``selection_data`` is "augmented"): None with ``augment`` off, else ``augmentation``
        or the dataset's own (``dataset_default``, the loaded dataset's ``augment``; by default
        the registry's: ``mnist1d_large``: ``shift:4``; digits: none, ``crop:1`` opt-in)."""
        if not self.augment:
            return None
        if dataset_default == "registry":
            dataset_default = dataset_of(self.dataset).augment
        kind = self.augmentation if self.augmentation is not None else dataset_default
        return None if kind in (None, "none") else kind

    def generations(self) -> int:
        """GLS generations = epochs · (p+1): (p+1)× the baseline's gradient compute, as in the
        reference code (Ding & Spector 2022, §4)."""
        return self.epochs * (self.population_size + 1)


__all__ = ["GLSConfig", "ARMS", "ARM_TITLES", "SELECTION_DATA", "CASE_METRICS", "TUNE_FACTORS",
           "TUNED_ARMS", "REBALANCING_ARMS"]
