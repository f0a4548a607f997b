"""Dataset registry: names and static metadata, available without loading any data.

Nothing here imports torchvision, scikit-learn or mnist1d, so ``deapnn datasets`` and
argument validation stay fast (bad input fails before anything is loaded).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

EMBEDDED = "embedded"
TORCHVISION = "torchvision"


@dataclass(frozen=True)
class DatasetInfo:
    """Static metadata of one dataset (also readable as ``info["input_shape"]``)."""

    name: str
    input_shape: tuple
    num_classes: int          # output dimension: number of classes, 1 for regression
    task: str                 # "classification" | "regression"
    source: str               # "embedded" (offline) | "torchvision" (files under root)
    augment: str | None = None
    description: str = ""
    #: examples a validation split is carved from (the official training set; for the embedded
    #: datasets what the test split leaves), the bound of ``load_dataset(val_size=...)``
    train_pool: int | None = None

    def __getitem__(self, key: str):
        """Dict-style access to a field (``info["num_classes"]``)."""
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def as_dict(self) -> dict:
        """The metadata as a plain dict."""
        return asdict(self)


def _info(*args, **kwargs) -> tuple[str, DatasetInfo]:
    info = DatasetInfo(*args, **kwargs)
    return info.name, info


DATASETS: dict[str, DatasetInfo] = dict([
    _info("digits", (1, 8, 8), 10, "classification", EMBEDDED, None,
          "scikit-learn 8x8 handwritten digits, 1,797 images", 1438),
    _info("diabetes", (10,), 1, "regression", EMBEDDED, None,
          "scikit-learn diabetes progression, 442 patients, standardised target", 354),
    _info("iris", (4,), 3, "classification", EMBEDDED, None,
          "scikit-learn iris, 150 flowers (149 after removing one exact duplicate)", 119),
    _info("wine", (13,), 3, "classification", EMBEDDED, None, "scikit-learn wine, 178 samples",
          142),
    _info("breast_cancer", (30,), 2, "classification", EMBEDDED, None,
          "scikit-learn Wisconsin breast cancer, 569 samples", 455),
    _info("mnist1d", (1, 40), 10, "classification", EMBEDDED, None,
          "MNIST-1D generated from its templates: 4,000 train / 1,000 test sequences", 4000),
    _info("mnist1d_large", (1, 40), 10, "classification", EMBEDDED, "shift:4",
          "MNIST-1D, same generator and templates, 45,000 train / 5,000 test sequences "
          "(40,000 / 5,000 validation / 5,000 test), random-shift augmentation", 45000),
    _info("mnist", (1, 28, 28), 10, "classification", TORCHVISION, None,
          "MNIST handwritten digits, 60,000 / 10,000", 60000),
    _info("fashion_mnist", (1, 28, 28), 10, "classification", TORCHVISION, None,
          "Fashion-MNIST, 60,000 / 10,000", 60000),
    _info("cifar10", (3, 32, 32), 10, "classification", TORCHVISION, "crop_flip",
          "CIFAR-10, 50,000 / 10,000", 50000),
    _info("cifar100", (3, 32, 32), 100, "classification", TORCHVISION, "crop_flip",
          "CIFAR-100 (fine labels), 50,000 / 10,000", 50000),
    _info("svhn", (3, 32, 32), 10, "classification", TORCHVISION, "crop",
          "SVHN cropped digits (train split, no extra), 73,257 / 26,032", 73257),
])


def dataset_names() -> list[str]:
    """All valid dataset names, in registry order (embedded first, then torchvision)."""
    return list(DATASETS)


def canonical_name(name: str) -> str:
    """Normalise ``name`` (case, ``-``) to a registry key or raise ``ValueError`` listing the
    valid ones."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(dataset_names())}")
    return key
