"""Configuration of a GLS comparison: :class:`GLSConfig` and the comparison arms (Ding & Spector
2022, §4: GLS against SGD at the same epochs, SGD at matched gradient compute and SubGD with
random selection)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..algorithms.gradient_lexicase import GLSLoopConfig
from ..baseline import SGDRunConfig
from ..config import ConfigError, Interval, Options, int_list, subset_of

ARMS = ("gls", "sgd", "sgd_matched", "random")
ARM_TITLES = {"gls": "GLS", "sgd": "SGD (same epochs)", "sgd_matched": "SGD ((p+1)× epochs)",
              "random": "SubGD + random selection"}
SELECTION_DATA = ("clean", "augmented")


def _semantics():
    from operators.gls import SEMANTICS
    return SEMANTICS


@dataclass
class GLSConfig(SGDRunConfig):
    """Everything that defines a GLS comparison (stored as the run's ``config.json``): the
    dataset, model and SGD settings of :class:`~deapnn.baseline.SGDRunConfig` (``epochs``: the
    baselines' epochs; weight decay 1e-4 as in the paper, the train command's default is 5e-4)
    and the GLS settings.

    ``val_size`` (see :func:`deapnn.data.load_dataset`): ``None`` holds out the dataset's usual
    validation split (5,000 CIFAR/SVHN images); 0 is the paper's protocol (Ding & Spector 2022,
    §4): every arm trains on the whole training set and only the final parent's test accuracy
    is measured."""
    epochs: int = 30
    weight_decay: float = 1e-4
    pop: int = 4
    momentum_mode: str = "reset"
    init: str = "clone"
    selection_data: str = "clean"
    semantics: str = "standard"
    chunk_size: int = 8
    max_cases: int | None = None   # case budget per selection event (None: exact lexicase)
    eval_every: int = 0            # generations/epochs between val/test evaluations (0: per epoch-equivalent)
    val_size: int | None = None    # validation examples held out of the training data (None: the
                                   # dataset's usual split; 0: none, the paper's CIFAR protocol)
    arms: list = field(default_factory=lambda: ["gls", "sgd"])
    seeds: list = field(default_factory=lambda: [0])

    _parameter_constraints = {
        **SGDRunConfig._parameter_constraints,
        "pop": GLSLoopConfig._parameter_constraints["pop_size"],
        "momentum_mode": GLSLoopConfig._parameter_constraints["momentum"],
        "init": GLSLoopConfig._parameter_constraints["init"],
        "selection_data": [Options(SELECTION_DATA)],
        "semantics": [Options(_semantics())],
        "chunk_size": [Interval(int, 1, None)],
        "max_cases": [Interval(int, 1, None), None],
        "eval_every": [Interval(int, 0, None)],
        "val_size": [Interval(int, 0, None), None],
        "arms": [subset_of(ARMS)],
        "seeds": [int_list(0, distinct=True)],
    }

    def _check(self) -> None:
        """Beside the dataset/model/SGD checks: ``val_size`` leaves training examples."""
        super()._check()
        from ..data import DATASETS
        pool = DATASETS[self.dataset].train_pool
        if self.val_size is not None and pool is not None and self.val_size >= pool:
            raise ConfigError(f"val_size must be < {pool} (the training examples of "
                              f"{self.dataset}), got {self.val_size}", "val_size")

    def generations(self) -> int:
        """GLS generations = epochs · (p+1): (p+1)× the baseline's gradient compute, as in the
        reference code (Ding & Spector 2022, §4)."""
        return self.epochs * (self.pop + 1)


__all__ = ["GLSConfig", "ARMS", "ARM_TITLES", "SELECTION_DATA"]
