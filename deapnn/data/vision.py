"""torchvision datasets read from a data directory: MNIST, Fashion-MNIST, CIFAR-10/100, SVHN.

Files are read by torchvision's own dataset classes (so the on-disk layout and integrity
checks are torchvision's), then converted once to normalised float32 tensors with the usual
per-channel mean/std constants. A validation split (5,000 images, or 10 % of a smaller
training set; ``val_size`` images when given, none with ``val_size=0``) is carved out of the
training set with ``seed``; the test split is the official one.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .base import Dataset, Split
from .registry import DATASETS

VAL_SIZE = 5000

# Per-channel statistics of the training images in [0, 1] (the constants used throughout
# the literature, e.g. the CIFAR training recipes of the GLS / NLFS / EvoMAL papers).
NORMALISATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}


class DatasetNotFoundError(FileNotFoundError):
    """The files of a torchvision dataset are missing or corrupted under the data directory."""


def default_root() -> Path:
    """Default data directory: ``$DEAPNN_DATA`` or ``~/.cache/deapnn/data``."""
    return Path(os.environ.get("DEAPNN_DATA")
                or Path.home() / ".cache" / "deapnn" / "data").expanduser()


def dataset_dir(name: str, root) -> Path:
    """Directory where torchvision looks for ``name``'s files under ``root``."""
    root = Path(root).expanduser()
    return {
        "mnist": root / "MNIST" / "raw",
        "fashion_mnist": root / "FashionMNIST" / "raw",
        "cifar10": root / "cifar-10-batches-py",
        "cifar100": root / "cifar-100-python",
        "svhn": root,
    }[name]


def _read(name: str, root: str, train: bool,
          download: bool) -> tuple[np.ndarray, np.ndarray, list | None]:
    """``(uint8 images (N, C, H, W), int64 labels (N,), class names)`` via the torchvision class."""
    import torchvision.datasets as tvd

    if name in ("mnist", "fashion_mnist"):
        cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
        ds = cls(root, train=train, download=download)
        return ds.data.numpy()[:, None], ds.targets.numpy().astype(np.int64), list(ds.classes)
    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        ds = cls(root, train=train, download=download)
        return ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets, np.int64), list(ds.classes)
    ds = tvd.SVHN(root, split="train" if train else "test", download=download)
    return ds.data, np.asarray(ds.labels, np.int64), [str(i) for i in range(10)]


def check_val_size(val_size, n_train: int, name: str) -> int:
    """``val_size`` as an int, or ``ValueError`` unless it leaves at least one training example."""
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) \
            or not 0 <= val_size < n_train:
        raise ValueError(f"val_size must be an integer from 0 to {n_train - 1} for {name} "
                         f"({n_train} training examples), got {val_size!r}")
    return int(val_size)


def _normalise(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
    return x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))


def default_val_size(n_train: int) -> int:
    """Validation images carved from ``n_train`` training images: 5,000, or 10 % when that is
    less."""
    return max(1, min(VAL_SIZE, n_train // 10))


def load_torchvision(name: str, root=None, download: bool = False, seed: int = 0,
                     val_size: int | None = None) -> Dataset:
    """Load a torchvision dataset from ``root`` (default :func:`default_root`).

    ``val_size``: training images held out for validation (default: :func:`default_val_size`);
    0 trains on the whole official training set with an empty validation split (the protocol
    of the GLS paper, Ding & Spector 2022, §4). The held-out images are the first ``val_size``
    of one ``seed`` permutation, so a larger split contains a smaller one.

    Missing or corrupted files raise :class:`DatasetNotFoundError` (a ``FileNotFoundError``)
    naming the directory and the ``--download`` option, unless ``download`` is set, in which
    case torchvision fetches them.
    """
    info = DATASETS[name]
    root = Path(root).expanduser() if root is not None else default_root()
    try:
        x_tr, y_tr, classes = _read(name, str(root), True, download)
        x_te, y_te, _ = _read(name, str(root), False, download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        if download:
            raise DatasetNotFoundError(f"could not download or verify dataset {name!r} into "
                                       f"{dataset_dir(name, root)}: {err}") from err
        raise DatasetNotFoundError(
            f"dataset {name!r} not found or corrupted in {dataset_dir(name, root)} "
            f"(data root {root}); pass --download (download=True) to fetch it, or point the "
            f"data root (DEAPNN_DATA) at a directory that holds it [{err}]") from err
    mean, std = (torch.tensor(v, dtype=torch.float32) for v in NORMALISATION[name])
    n = len(y_tr)
    perm = np.random.default_rng(seed).permutation(n)
    k = default_val_size(n) if val_size is None else check_val_size(val_size, n, name)
    val_idx, train_idx = np.sort(perm[:k]), np.sort(perm[k:])
    x_all = _normalise(x_tr, mean, std)
    y_all = torch.from_numpy(y_tr)
    return Dataset(
        name=name, task=info.task, input_shape=tuple(info.input_shape),
        num_classes=info.num_classes,
        train=Split(x_all[torch.from_numpy(train_idx)], y_all[torch.from_numpy(train_idx)]),
        val=Split(x_all[torch.from_numpy(val_idx)], y_all[torch.from_numpy(val_idx)]),
        test=Split(_normalise(x_te, mean, std), torch.from_numpy(y_te)),
        augment=info.augment, mean=mean, std=std, classes=classes, source=info.source,
        meta={"root": str(root), "indices": {"train": train_idx, "val": val_idx}, "seed": seed,
              "val_size": k},
    )
