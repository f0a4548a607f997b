"""Configuration of a GLS comparison: :class:`GLSConfig` and the comparison arms (Ding & Spector
2022, §4: GLS against SGD at the same epochs, SGD at matched gradient compute and SubGD with
random selection)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..algorithms.gradient_lexicase import GLSLoopConfig
from ..baseline import check_training, sgd_config, training_constraints
from ..config import Config, Interval, Options, int_list, subset_of
from ..training import TrainConfig

ARMS = ("gls", "sgd", "sgd_matched", "random")
ARM_TITLES = {"gls": "GLS", "sgd": "SGD (same epochs)", "sgd_matched": "SGD ((p+1)× epochs)",
              "random": "SubGD + random selection"}
SELECTION_DATA = ("clean", "augmented")


def _semantics():
    from operators.gls import SEMANTICS
    return SEMANTICS


@dataclass
class GLSConfig(Config):
    """Everything that defines a GLS comparison (stored as the run's ``config.json``)."""
    dataset: str = "digits"
    model: str = "cnn"
    epochs: int = 30
    pop: int = 4
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4     # the paper's setting (the train command's default is 5e-4)
    batch_size: int = 64
    schedule: str = "cosine"
    momentum_mode: str = "reset"
    init: str = "clone"
    selection_data: str = "clean"
    semantics: str = "standard"
    chunk_size: int = 8
    max_cases: int | None = None   # case budget per selection event (None: exact lexicase)
    augment: bool = True
    eval_every: int = 0            # generations/epochs between val/test evaluations (0: per epoch-equivalent)
    arms: list = field(default_factory=lambda: ["gls", "sgd"])
    seeds: list = field(default_factory=lambda: [0])
    root: str | None = None
    download: bool = False

    _parameter_constraints = {
        **training_constraints(),
        "pop": GLSLoopConfig._parameter_constraints["pop_size"],
        "momentum_mode": GLSLoopConfig._parameter_constraints["momentum"],
        "init": GLSLoopConfig._parameter_constraints["init"],
        "selection_data": [Options(SELECTION_DATA)],
        "semantics": [Options(_semantics())],
        "chunk_size": [Interval(int, 1, None)],
        "max_cases": [Interval(int, 1, None), None],
        "augment": [bool],
        "eval_every": [Interval(int, 0, None)],
        "arms": [subset_of(ARMS, distinct=False)],
        "seeds": [int_list()],
        "root": [str, None],
        "download": [bool],
    }

    def _check(self) -> None:
        check_training(self)

    def train_config(self, epochs: int) -> TrainConfig:
        """The SGD settings for ``epochs`` epochs (or GLS generations)."""
        return sgd_config(self, epochs)

    def generations(self) -> int:
        """GLS generations = epochs · (p+1): (p+1)× the baseline's gradient compute, as in the
        reference code (Ding & Spector 2022, §4)."""
        return self.epochs * (self.pop + 1)


__all__ = ["GLSConfig", "ARMS", "ARM_TITLES", "SELECTION_DATA"]
