"""Embedded, offline datasets: scikit-learn's bundled tables/images and MNIST-1D.

Splits are 60/20/20 train/val/test, drawn from ``seed`` (stratified for classification;
``val_size`` sets the validation examples taken from the 80 % that is not test, 0 for none),
and inputs are standardised with statistics of the *training* split only, so no
information from validation or test leaks into preprocessing. Exact duplicate examples
(same features and label; one pair in iris) are dropped first so that no example is shared
between splits.

MNIST-1D (Greydanus & Kobak, 2020/2024) is generated offline by the ``mnist1d`` package's
``make_dataset`` with its default ``get_dataset_args()`` and hard-coded templates (never its
download path): 4,000 training and 1,000 test sequences of length 40. The validation split
(500) is carved, stratified, out of the 4,000 training sequences. The package standardises
the whole generated set with one global scalar; that canonical form is kept unchanged so
results compare with published MNIST-1D numbers.

``mnist1d_large`` is the same generator, arguments and templates with ``num_samples`` 50,000 and
``train_split`` 0.9: 45,000 training sequences (5,000 of them, stratified by ``seed``, are the
validation split) and 5,000 test sequences. It exists so that a GLS child takes the paper's
order of SGD steps per generation on a CPU (40,000 / 64 / 4 = 156; the paper's CIFAR setting has
50,000 / 64 / 4 = 195, Ding & Spector 2022, §4), where ``mnist1d`` gives only 13.
"""
from __future__ import annotations

import functools
import os
import random
from pathlib import Path

import numpy as np
import torch

from .base import Dataset, Split
from .registry import DATASETS
from .vision import check_val_size

FRACTIONS = (0.6, 0.2, 0.2)
MNIST1D_VAL = 500
#: name -> (num_samples, train_split, validation examples carved from the training sequences)
MNIST1D_VARIANTS = {"mnist1d": (5000, 0.8, MNIST1D_VAL), "mnist1d_large": (50000, 0.9, 5000)}


def cache_dir() -> Path:
    """Directory for on-disk caches: ``$DEAPNN_CACHE`` or ``~/.cache/deapnn``."""
    return Path(os.environ.get("DEAPNN_CACHE") or Path.home() / ".cache" / "deapnn").expanduser()


def _sklearn_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)


def _drop_duplicates(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first occurrence of each exact (features, label) row, in original order."""
    rows = np.concatenate([x.reshape(len(x), -1), y.reshape(len(y), -1).astype(np.float64)], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    keep = np.sort(first)
    return x[keep], y[keep]


def split_indices(n: int, seed: int, y: np.ndarray | None = None,
                  fractions: tuple = FRACTIONS, val_size: int | None = None,
                  name: str = "dataset") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint sorted ``(train, val, test)`` index arrays covering ``range(n)``.

    Deterministic in ``seed``; stratified on ``y`` when given (classification). ``val_size``
    (default: ``fractions[1]`` of ``n``) validation examples are drawn from what the test split
    leaves, so the test split does not depend on it; 0 leaves the validation split empty.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    n_test = int(round(fractions[2] * n))
    rest, test = train_test_split(idx, test_size=n_test, random_state=seed,
                                  stratify=None if y is None else y)
    if val_size is None:
        n_val = int(round(fractions[1] * n))
    else:
        n_val = check_val_size(val_size, len(rest), name)
        if n_val == 0:
            return np.sort(rest), np.array([], dtype=rest.dtype), np.sort(test)
    train, val = _split_off(rest, n_val, seed, None if y is None else y[rest], name)
    return np.sort(train), np.sort(val), np.sort(test)


def _split_off(idx: np.ndarray, k: int, seed: int, y: np.ndarray | None, name: str):
    """``(rest, k of idx)`` drawn with ``seed``, stratified on ``y`` (a stratified draw needs
    room for every class on both sides: ``ValueError`` naming ``val_size`` otherwise)."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(idx, test_size=k, random_state=seed, stratify=y)
    except ValueError as err:
        raise ValueError(f"val_size {k} cannot be drawn stratified from the {len(idx)} "
                         f"training examples of {name}: {err}") from None


def _standardise(x: np.ndarray, train_idx: np.ndarray, per_feature: bool):
    """``(x - mean) / std`` with mean/std of the training rows only; constant features keep
    std 1."""
    xt = x[train_idx]
    if per_feature:
        mean, std = xt.mean(axis=0), xt.std(axis=0)
        std = np.where(std < 1e-12, 1.0, std)
    else:
        mean, std = np.asarray(xt.mean()), np.asarray(xt.std())
    return (x - mean) / std, mean, std


def _splits(x: np.ndarray, y: np.ndarray, parts) -> list[Split]:
    return [Split(torch.from_numpy(np.ascontiguousarray(x[i])),
                  torch.from_numpy(np.ascontiguousarray(y[i])))
            for i in parts]


def load_sklearn(name: str, seed: int = 0, val_size: int | None = None) -> Dataset:
    """Load one of ``digits``, ``diabetes``, ``iris``, ``wine``, ``breast_cancer`` (offline).

    digits: pixels scaled by 1/16, then standardised with one scalar mean/std of the training
    pixels (an image keeps its spatial contrast), shaped ``(N, 1, 8, 8)``. Tables: per-feature
    standardisation. diabetes (regression): the target is also standardised with training
    statistics, kept in ``target_mean``/``target_std``.
    """
    info = DATASETS[name]
    x, y = _sklearn_arrays(name)
    x, y = _drop_duplicates(x, y)
    is_image = name == "digits"
    if is_image:
        x = x / 16.0
    classification = info.task == "classification"
    parts = split_indices(len(x), seed, y if classification else None, val_size=val_size,
                          name=name)
    x, mean, std = _standardise(x, parts[0], per_feature=not is_image)
    x = x.astype(np.float32).reshape((len(x),) + tuple(info.input_shape))
    target_mean = target_std = None
    if classification:
        y = y.astype(np.int64)
    else:
        target_mean, target_std = float(y[parts[0]].mean()), float(y[parts[0]].std())
        y = ((y - target_mean) / target_std).astype(np.float32).reshape(-1, 1)
    train, val, test = _splits(x, y, parts)
    return Dataset(
        name=name, task=info.task, input_shape=tuple(info.input_shape),
        num_classes=info.num_classes, train=train, val=val, test=test, augment=info.augment,
        mean=torch.as_tensor(mean, dtype=torch.float32),
        std=torch.as_tensor(std, dtype=torch.float32),
        target_mean=target_mean, target_std=target_std,
        classes=list(range(info.num_classes)) if classification else None, source=info.source,
        meta={"indices": dict(zip(("train", "val", "test"), parts)), "n_total": len(x),
              "standardisation": "scalar" if is_image else "per_feature", "seed": seed},
    )


def _mnist1d_cache_file(name: str = "mnist1d") -> Path:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("mnist1d")
    except PackageNotFoundError:  # pragma: no cover - the loader fails later anyway
        ver = "unknown"
    if name == "mnist1d":
        return cache_dir() / f"mnist1d-{ver}-default-v1.npz"
    n, split, _ = MNIST1D_VARIANTS[name]
    return cache_dir() / f"mnist1d-{ver}-n{n}-split{split}-v1.npz"


def generate_mnist1d(num_samples: int | None = None,
                     train_split: float | None = None) -> dict[str, np.ndarray]:
    """Run ``mnist1d.data.make_dataset`` with the default args and templates (no network);
    ``num_samples`` / ``train_split`` replace the defaults (5,000 / 0.8) when given.

    ``make_dataset`` reseeds the global ``random``/``numpy`` RNGs; their state is restored
    afterwards so loading data never perturbs a run's random stream.
    """
    from mnist1d.data import get_dataset_args, get_templates, make_dataset

    args = get_dataset_args()
    if num_samples is not None:
        args.num_samples = num_samples
    if train_split is not None:
        args.train_split = train_split
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(args, get_templates())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {"x": np.asarray(d["x"], np.float32), "y": np.asarray(d["y"], np.int64),
            "x_test": np.asarray(d["x_test"], np.float32),
            "y_test": np.asarray(d["y_test"], np.int64)}


@functools.lru_cache(maxsize=2)
def mnist1d_arrays(name: str = "mnist1d") -> dict[str, np.ndarray]:
    """The generated arrays of ``name`` (``mnist1d`` or ``mnist1d_large``), cached in memory
    and under :func:`cache_dir` on disk.

    The disk cache is best effort: an unreadable or unwritable cache just means regenerating.
    """
    n, split, _ = MNIST1D_VARIANTS[name]
    n_train = int(n * split)
    path = _mnist1d_cache_file(name)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        if arrays["x"].shape == (n_train, 40) and arrays["x_test"].shape == (n - n_train, 40):
            return arrays
    except (OSError, KeyError, ValueError):
        pass
    arrays = generate_mnist1d() if name == "mnist1d" else generate_mnist1d(n, split)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)  # atomic: concurrent SCOOP workers never see a partial file
    except OSError:
        pass
    return arrays


def load_mnist1d(seed: int = 0, val_size: int | None = None, name: str = "mnist1d") -> Dataset:
    """MNIST-1D: 3,500 train / 500 val (stratified from the 4,000, by ``seed``; ``val_size``
    sets the 500, 0 trains on all 4,000) / 1,000 test, ``(1, 40)``. ``name="mnist1d_large"``:
    40,000 / 5,000 (from the 45,000) / 5,000."""
    info = DATASETS[name]
    a = mnist1d_arrays(name)
    idx = np.arange(len(a["y"]))
    default_val = MNIST1D_VARIANTS[name][2]
    k = default_val if val_size is None else check_val_size(val_size, len(idx), name)
    if k == 0:
        train_idx, val_idx = idx, np.array([], dtype=idx.dtype)
    else:
        train_idx, val_idx = _split_off(idx, k, seed, a["y"], name)
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    x = a["x"][:, None, :]
    return Dataset(
        name=name, task=info.task, input_shape=tuple(info.input_shape), num_classes=10,
        train=Split(torch.from_numpy(x[train_idx]), torch.from_numpy(a["y"][train_idx])),
        val=Split(torch.from_numpy(x[val_idx]), torch.from_numpy(a["y"][val_idx])),
        test=Split(torch.from_numpy(a["x_test"][:, None, :].copy()),
                   torch.from_numpy(a["y_test"].copy())),
        augment=info.augment, mean=torch.tensor(0.0), std=torch.tensor(1.0),
        classes=list(range(10)), source=info.source,
        meta={"indices": {"train": train_idx, "val": val_idx}, "seed": seed,
              "standardisation": "mnist1d package (global scalar over the generated set)"},
    )


def load_embedded(name: str, seed: int = 0, val_size: int | None = None) -> Dataset:
    """Dispatch an embedded dataset by registry name."""
    if name in MNIST1D_VARIANTS:
        return load_mnist1d(seed, val_size, name)
    return load_sklearn(name, seed, val_size)
