"""The containers every loader returns: :class:`Split` and :class:`Dataset`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


@dataclass
class Split:
    """One split as CPU tensors.

    ``x`` is float32: images ``(N, C, H, W)``, tabular ``(N, F)``, MNIST-1D ``(N, 1, 40)``.
    ``y`` is int64 ``(N,)`` for classification, float32 ``(N, 1)`` for regression.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        """Number of examples."""
        return int(self.x.shape[0])

    def to(self, device) -> Split:
        """A copy of this split on ``device`` (the cached CPU split is left untouched)."""
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Dataset:
    """A loaded dataset: three disjoint splits plus the metadata models and training need.

    ``mean``/``std`` are the input normalisation statistics actually applied (scalar, per
    channel or per feature, always from the training data or published constants);
    ``target_mean``/``target_std`` undo target standardisation for regression
    (``y_original = y * target_std + target_mean``, so MSE in original units is
    ``mse * target_std ** 2``).
    """

    name: str
    task: str
    input_shape: tuple
    num_classes: int
    train: Split
    val: Split
    test: Split
    augment: str | None = None
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    target_mean: float | None = None
    target_std: float | None = None
    classes: list | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def splits(self) -> dict[str, Split]:
        """``{"train": ..., "val": ..., "test": ...}``."""
        return {"train": self.train, "val": self.val, "test": self.test}

    def to(self, device) -> Dataset:
        """A copy whose three splits live on ``device``."""
        return replace(self, train=self.train.to(device), val=self.val.to(device),
                       test=self.test.to(device))

    def summary(self) -> str:
        """One line: name, task, shape, classes and split sizes."""
        return (f"{self.name}: {self.task}, input {tuple(self.input_shape)}, "
                f"{self.num_classes} {'classes' if self.task == 'classification' else 'output'}, "
                f"train/val/test {len(self.train)}/{len(self.val)}/{len(self.test)}")
