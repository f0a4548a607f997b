"""Datasets for deapnn: embedded offline ones and torchvision ones, as CPU tensors.

>>> from deapnn.data import load_dataset
>>> ds = load_dataset("digits", seed=0)
>>> ds.train.x.shape, ds.num_classes
(torch.Size([1079, 1, 8, 8]), 10)

Embedded (offline, no files): ``digits``, ``diabetes``, ``iris``, ``wine``, ``breast_cancer``
(scikit-learn) and ``mnist1d`` (generated from its templates). torchvision, read from a data
directory: ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``svhn``.
"""
from __future__ import annotations

from .augment import AUGMENTATIONS, augment_batch
from .base import Dataset, Split
from .registry import DATASETS, DatasetInfo, canonical_name, dataset_names
from .vision import DatasetNotFoundError, default_root

__all__ = [
    "AUGMENTATIONS", "DATASETS", "Dataset", "DatasetInfo", "DatasetNotFoundError", "Split",
    "augment_batch", "dataset_names", "default_root", "load_dataset",
]


def load_dataset(name: str, root=None, download: bool = False, seed: int = 0) -> Dataset:
    """Load dataset ``name`` with disjoint train/val/test splits, deterministic in ``seed``.

    ``root`` (torchvision datasets only) defaults to ``$DEAPNN_DATA`` or
    ``~/.cache/deapnn/data``; ``download`` is passed through to torchvision. Unknown names
    raise ``ValueError`` listing the valid ones; missing files raise
    :class:`DatasetNotFoundError` (a ``FileNotFoundError``) naming the directory and
    ``--download``.
    """
    key = canonical_name(name)
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    if DATASETS[key].source == "embedded":
        from .embedded import load_embedded

        return load_embedded(key, seed)
    from .vision import load_torchvision

    return load_torchvision(key, root, download, seed)
