"""Datasets for deapnn: embedded offline ones and torchvision ones, as CPU tensors.

>>> from deapnn.data import load_dataset
>>> ds = load_dataset("digits", seed=0)
>>> ds.train.x.shape, ds.num_classes
(torch.Size([1079, 1, 8, 8]), 10)

Embedded (offline, no files): ``digits``, ``diabetes``, ``iris``, ``wine``, ``breast_cancer``
(scikit-learn), ``mnist1d`` and ``mnist1d_large`` (generated from its templates). torchvision,
read from a data directory: ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``svhn``.
The user's own (:mod:`deapnn.data.user`): a path to an ``.npz`` file or an import string
``package.module:function``; :func:`dataset_info` describes any of them.
"""
from __future__ import annotations

from .augment import AUGMENTATIONS, augment_batch, parse_kind
from .base import Dataset, Split
from .registry import DATASETS, DatasetInfo, canonical_name, dataset_names
from .regimes import RegimeError, RegimeSettings, apply_regime
from .user_file import UserDataError, dataset_argument, is_user_spec
from .vision import DatasetNotFoundError, default_root

__all__ = [
    "AUGMENTATIONS", "DATASETS", "Dataset", "DatasetInfo", "DatasetNotFoundError",
    "RegimeError", "RegimeSettings", "Split", "UserDataError", "apply_regime", "augment_batch",
    "cache_dataset", "cached_dataset", "dataset_argument",
    "dataset_constraint", "dataset_info", "dataset_key", "dataset_names", "default_root",
    "is_user_spec", "load_dataset", "parse_kind",
]

#: the words of a user's dataset in a constraint's message
USER_DATASET = "a path to an .npz file, or package.module:function"


def dataset_key(spec: str) -> str:
    """The registry key of a dataset name (``ValueError`` listing the valid ones for an unknown
    one), or the user's dataset ``spec`` (a path or import string) as it is."""
    return spec if is_user_spec(spec) else canonical_name(spec)


def dataset_info(spec: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a dataset name or of the user's data (a path to an ``.npz``
    or ``package.module:function``: read and checked once per process,
    :class:`UserDataError` naming the array at fault)."""
    if is_user_spec(spec):
        from .user import user_info
        return user_info(spec)
    return DATASETS[canonical_name(spec)]


def dataset_constraint():
    """The constraint of a configuration's ``dataset``: a registry name, or the user's data
    (the file itself is checked by :func:`dataset_info` in the configuration's checks)."""
    from ..config import Check, Options
    return Options(dataset_names(), Check(is_user_spec, USER_DATASET))

#: datasets loaded in this process, by (name, seed, root): the one cache of every method
_CACHE: dict = {}
_CACHE_SIZE = 4


def load_dataset(name: str, root=None, download: bool = False, seed: int = 0,
                 val_size: int | None = None, *, imbalance: float | None = None,
                 label_noise: float = 0.0) -> Dataset:
    """Load dataset ``name`` with disjoint train/val/test splits, deterministic in ``seed``.

    ``val_size``: examples held out of the training data for validation; ``None`` (default) is
    the dataset's usual split (torchvision: 5,000 images or 10 %; scikit-learn: 20 % of all
    examples; MNIST-1D: 500); 0 leaves the validation split empty and trains on all of it (the
    GLS paper's CIFAR protocol, Ding & Spector 2022, §4). The test split never depends on it.
    A value that leaves no training example (or, for the stratified embedded splits, no room
    for every class) raises ``ValueError`` naming ``val_size``.

    ``imbalance`` / ``label_noise``: the training split's data regime, drawn from ``seed``
    (:mod:`deapnn.data.regimes`: a long tail with head/tail ratio ``imbalance``, a fraction
    ``label_noise`` of its labels replaced by another class; recorded in ``meta["regime"]``);
    the validation and test splits never change. A long tail that leaves a class fewer than 2
    examples, or a regime on a regression dataset, raises :class:`RegimeError`.

    ``root`` (torchvision datasets only) defaults to ``$DEAPNN_DATA`` or
    ``~/.cache/deapnn/data``; ``download`` is passed through to torchvision. Unknown names
    raise ``ValueError`` listing the valid ones; missing files raise
    :class:`DatasetNotFoundError` (a ``FileNotFoundError``) naming the directory and
    ``--download``. ``name`` may be the user's data (:mod:`deapnn.data.user`: a path to an
    ``.npz`` or ``package.module:function``; its own ``x_val`` or 20 % of its training examples
    for validation); a problem with it is a :class:`UserDataError`.
    """
    key = dataset_key(name)
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    if is_user_spec(key):
        from .user import load_user

        data = load_user(key, seed, val_size)
    elif DATASETS[key].source == "embedded":
        from .embedded import load_embedded

        data = load_embedded(key, seed, val_size)
    else:
        from .vision import load_torchvision

        data = load_torchvision(key, root, download, seed, val_size)
    # the one place a training split gets its regime (validation and test are left as they are)
    return apply_regime(data, seed, imbalance, label_noise)


def _cache_key(name, seed, root, imbalance, label_noise) -> tuple:
    return (dataset_key(name), int(seed), None if root is None else str(root),
            None if imbalance is None else float(imbalance), float(label_noise))


def cached_dataset(name: str, seed: int = 0, root=None, *, imbalance: float | None = None,
                   label_noise: float = 0.0) -> Dataset:
    """:func:`load_dataset` once per process for each ``(name, seed, root)`` and regime (a
    SCOOP worker evaluating many candidates of one run loads its data once). Keeps the last
    few datasets."""
    key = _cache_key(name, seed, root, imbalance, label_noise)
    if key not in _CACHE:
        cache_dataset(load_dataset(name, root=root, seed=seed, imbalance=imbalance,
                                   label_noise=label_noise), name, seed, root,
                      imbalance=imbalance, label_noise=label_noise)
    return _CACHE[key]


def cache_dataset(data: Dataset, name: str, seed: int = 0, root=None, *,
                  imbalance: float | None = None, label_noise: float = 0.0) -> Dataset:
    """Make :func:`cached_dataset` return ``data`` (already loaded by the caller) for these
    arguments, so in-process evaluations reuse it instead of loading it again."""
    key = _cache_key(name, seed, root, imbalance, label_noise)
    _CACHE.pop(key, None)
    _CACHE[key] = data
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    return data
