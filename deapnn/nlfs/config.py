"""Configurations of an NLFS run (Morgan & Hougen 2024, §3) with their constraints declared once.

:class:`NLFSConfig` is the whole run (search, elimination, final comparison; what
``config.json`` stores and ``deapnn nlfs`` builds from its flags); :class:`SurrogateConfig` one
surrogate training (§3.5), derived from it by :meth:`NLFSConfig.surrogate`.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass

from ..comparison import TuningSettings
from ..config import (Check, ConfigError, Interval, Options, check_network, dataset_of,
                      parse_list, seed_constraint, setting)
from ..data import RegimeSettings, dataset_argument
from ..deprecation import former_name
from ..fastpath import FastPathSettings
from ..operators.aging import check_sample_size
from ..operators.graph_integrity import FLIP_RULES
from ..sgd import SGDSettings


def _positive_int():
    return [Interval(int, 1, None)]


def _count():
    return [Interval(int, 0, None)]


def _halving_sizes(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) >= 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
            and all(b <= a for a, b in zip(value, value[1:])))


#: the surrogate's SGD (Morgan & Hougen 2024 §3.5 trains with Adam on a ResNet; deapnn's small
#: surrogate uses SGD, ``docs/faithfulness.md``, NLFS "surrogate budget"): lr 0.05, momentum
#: 0.9, weight decay 5e-4, batch 64, cosine from lr to 0 over the budget
SURROGATE_SGD = {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4,
                 "batch_size": 64, "schedule": "cosine", "milestones": (), "gamma": 0.1}


#: what a surrogate training that turns non-finite after passing its pre-screen scores
DIVERGED_FITNESS = ("best", "zero")
#: NLFSConfig.diverged_child -> SurrogateConfig.diverged_fitness
_DIVERGED = {"insert": "best", "failed": "zero"}


@dataclass
class SurrogateConfig(SGDSettings, RegimeSettings, FastPathSettings):
    """Budget and regularisation of one surrogate training run (Morgan & Hougen 2024 §3.5), on
    the training split in the run's regime (:class:`~deapnn.data.RegimeSettings`), on the
    run's fast path (:class:`~deapnn.fastpath.FastPathSettings`)."""
    dataset: str = "digits"
    model: str = "mlp"
    steps: int = 300
    noise: float = 0.1               # std of Gaussian noise added to training inputs
    augment: str | None = "auto"     # "auto": the dataset's own augmentation (crop for images)
    eval_every: int = 50
    prescreen_steps: int = 50        # 0 disables the pre-screen
    prescreen_threshold: float | None = None   # default 1.5 / num_classes
    seed: int = 0
    root: str | None = None
    # a training turning non-finite after its pre-screen: "best" validation accuracy so far
    # (Morgan & Hougen's implementation) or "zero" (a failure: deapnn before)
    diverged_fitness: str = "best"

    SGD_DEFAULTS = SURROGATE_SGD

    _parameter_constraints = {
        **SGDSettings._parameter_constraints, **RegimeSettings._parameter_constraints,
        **FastPathSettings._parameter_constraints,
        "dataset": [str], "model": [str],
        "steps": _positive_int(), "eval_every": _positive_int(),
        "noise": [Interval(float, 0, None)],
        "augment": [str, None], "prescreen_steps": _count(),
        "prescreen_threshold": [Interval(float), None],
        "seed": seed_constraint(), "root": [str, None],
        "diverged_fitness": [Options(DIVERGED_FITNESS)],
    }


@dataclass
class NLFSConfig(SGDSettings, TuningSettings, RegimeSettings, FastPathSettings):
    """An NLFS run: random pool → aging evolution → (optional) elimination → final comparison
    against cross-entropy (Morgan & Hougen 2024 §3.4–3.6). The SGD settings are the
    surrogate's (:data:`SURROGATE_SGD`); ``pool`` left None is 2 × ``population`` and
    ``final_steps`` left None 3 × ``budget``."""
    dataset: str = setting("digits", "dataset (a classification one; see `deapnn datasets`), "
                                     "a path to your .npz or package.module:function",
                           parse=dataset_argument, group="search")
    model: str = setting("mlp", "surrogate model (mlp, cnn, ...) or your factory "
                                "package.module:function", group="search")
    population_size: int = setting(20, "population size P [paper: 100]", group="search",
                                   aliases=("--population",))
    cycles: int = setting(200, "children to evaluate [paper: 4000]", group="search")
    sample_size: int = setting(5, "tournament sample S [paper: 20]", group="search")
    pool: int | None = setting(None, "random initial pool; the best P seed the population "
                                     "[default: 2P]", group="search")
    budget: int = setting(300, "surrogate SGD steps per candidate", group="search")
    batch: int = setting(1, "children in flight per round [default: --workers]",
                         group="search")
    seed: int = setting(0, "run seed (python, numpy, torch)", group="run")
    final_steps: int | None = setting(None, "[default: 3x --budget]", group="final comparison")
    top: int = setting(3, "best losses to print and register", group="search")
    eliminate: bool = setting(False, "successive halving of the hall of fame on longer budgets "
                                     "/ a CNN", group="search")
    sizes: list = setting(factory=lambda: [25, 12, 6, 4], group="search", metavar="N,N,...",
                          parse=parse_list(int, "survivor counts"),
                          help="elimination: candidates, then the survivors of each round")
    root: str | None = setting(None, "data directory for torchvision datasets", group="data")
    failed_child: str = setting(
        "discard", "a child failing the pre-screen or diverging: re-mutate its parent (up to 7 "
                   "attempts) and then discard it, as the reference does, or insert it with "
                   "fitness 0: discard | insert", group="search")
    initial_age: str = setting(
        "shared", "seeded members share one age (the weakest dies first, as the reference) or "
                  "are aged best first: shared | ordered", group="search")
    wiring: str = setting(
        "reference", "inputs of random genomes and mutations: as the reference (the root starts "
                     "on hidden nodes, binary inputs distinct, a toggle draws a new input) or "
                     "free (deapnn before): reference | free", group="search")
    diverged_child: str = setting(
        "insert", "a child whose training turns non-finite after passing the pre-screen: insert "
                  "it with its best validation accuracy so far, as the reference does, or treat "
                  "it as a failed child (--failed-child; deapnn before): insert | failed",
        group="search")
    flip_rule: str = setting(
        "start", "integrity check: a probe curve with two bends is flipped when it starts "
                 "rising (its third step), as the reference (start), or when it ends falling "
                 "(end, deapnn before); monotone and one-bend curves alike: start | end",
        group="search")
    population: InitVar[int | None] = None   # former name of population_size (0.3.0: removed)
    pool_rescore: int | None = setting(
        None, "score the pool with the standard (un-augmented) surrogate and re-score its best "
              "N with the search's surrogate, as the reference does; 0: one stage "
              "[default: P, the seeded members]", metavar="N", group="search")

    SGD_DEFAULTS = SURROGATE_SGD

    _parameter_constraints = {
        **SGDSettings._parameter_constraints, **TuningSettings._parameter_constraints,
        **RegimeSettings._parameter_constraints, **FastPathSettings._parameter_constraints,
        "dataset": [str], "model": [str],
        "population_size": _positive_int(), "cycles": _count(), "sample_size": _positive_int(),
        "pool": _positive_int(), "budget": _positive_int(), "batch": _positive_int(),
        "seed": seed_constraint(), "final_steps": _positive_int(),
        "top": _positive_int(), "eliminate": [bool],
        "sizes": [Check(_halving_sizes, "a list of at least 2 non-increasing integers >= 1")],
        "root": [str, None],
        "failed_child": [Options(("discard", "insert"))],
        "initial_age": [Options(("shared", "ordered"))],
        "wiring": [Options(("reference", "free"))],
        "diverged_child": [Options(tuple(_DIVERGED))],
        "flip_rule": [Options(FLIP_RULES)],
        "pool_rescore": [Interval(int, 0, None), None],
    }

    def __post_init__(self, population: int | None = None) -> None:
        self.population_size = former_name(population, self.population_size,
                                           "NLFSConfig(population=)", "population_size=",
                                           default=20)
        if self.pool is None and isinstance(self.population_size, int):
            self.pool = 2 * self.population_size
        if self.final_steps is None and isinstance(self.budget, int):
            self.final_steps = 3 * self.budget
        super().__post_init__()

    def _check(self) -> None:
        super()._check()
        check_sample_size(self.population_size, self.sample_size)
        if self.pool < self.population_size:
            raise ConfigError(f"pool {self.pool} is smaller than the population "
                              f"{self.population_size}", "pool")
        n = self.rescore_count()
        if n and not self.population_size <= n <= self.pool:
            raise ConfigError(f"pool_rescore must be 0 (one stage) or between the population "
                              f"{self.population_size} and the pool {self.pool}, got {n}",
                              "pool_rescore")
        from ..data import DATASETS, dataset_names, is_user_spec
        from ..models import USER_MODEL, is_user_model, model_names
        if self.dataset not in DATASETS and not is_user_spec(self.dataset):
            raise ConfigError(f"unknown dataset {self.dataset!r}; valid: "
                              f"{', '.join(sorted(dataset_names()))}, or a path to an .npz "
                              "file, or package.module:function", "dataset")
        spec = dataset_of(self.dataset)
        if spec.task != "classification":
            raise ConfigError(f"NLFS needs a classification dataset; {self.dataset} is "
                              f"{spec.task}", "dataset")
        for name, m in (("model", self.model), ("final_model", self.final_model or self.model)):
            if m not in model_names() and not is_user_model(m):
                raise ConfigError(f"unknown model {m!r}; valid: "
                                  f"{', '.join(sorted(model_names()))}, or {USER_MODEL}", name)
            check_network(m, spec, name)

    def rescore_count(self) -> int:
        """How many of the best pool members the second pool stage re-scores: ``pool_rescore``,
        or the population size when it is None (Morgan & Hougen's implementation re-scores
        exactly the members it seeds, the best 100 of 1,000); 0: no second stage."""
        return self.population_size if self.pool_rescore is None else self.pool_rescore

    def standard_surrogate(self) -> SurrogateConfig:
        """The first pool stage's surrogate when the pool is re-scored: the search's surrogate
        without input noise and augmentation (Morgan & Hougen's implementation scores its pool
        with the standard, un-augmented training and only the best with the augmented one)."""
        return SurrogateConfig(**{**self.surrogate().to_dict(), "noise": 0.0, "augment": None})

    def surrogate(self) -> SurrogateConfig:
        """The surrogate training of the search (§3.5): ``budget`` steps, evaluated 4 times (at
        most every 50 steps), pre-screened after a quarter of the budget (at most 50 steps); a
        divergence after the pre-screen keeps the best accuracy so far unless
        ``diverged_child="failed"``."""
        return SurrogateConfig(**self.sgd().to_dict(), dataset=self.dataset, model=self.model,
                               steps=self.budget, seed=self.seed, root=self.root,
                               **self.regime(), compile=self.compile, precision=self.precision,
                               eval_every=max(1, min(50, self.budget // 4)),
                               prescreen_steps=min(50, self.budget // 4),
                               diverged_fitness=_DIVERGED[self.diverged_child])


__all__ = ["NLFSConfig", "SurrogateConfig"]
