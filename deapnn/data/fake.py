"""Tiny datasets written in real on-disk formats, for smoke runs and tests without downloads.

torchvision md5-checks CIFAR files against the official archives, which a synthetic file never
matches; :func:`trust_local_files` relaxes that check to "file exists" inside a ``with`` block
(smoke runs only — normal loading always verifies).
"""
from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path

import numpy as np


def write_cifar10(root, xtr: np.ndarray, ytr, xte: np.ndarray, yte) -> Path:
    """Write CIFAR-10 python pickle batches (``cifar-10-batches-py``) for uint8 images
    ``x`` of shape (N, 3, 32, 32) — the layout torchvision's ``CIFAR10`` reads."""
    d = Path(root) / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    for b, (xs, ys) in enumerate(zip(np.array_split(xtr, 5), np.array_split(ytr, 5)), start=1):
        with open(d / f"data_batch_{b}", "wb") as f:   # rows: 1024 R, 1024 G, 1024 B, row-major
            pickle.dump({"batch_label": f"training batch {b} of 5", "data": xs.reshape(len(xs), -1),
                         "labels": list(map(int, ys)),
                         "filenames": [f"{i}.png" for i in range(len(xs))]}, f)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "data": xte.reshape(len(xte), -1),
                     "labels": list(map(int, yte))}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}, f)
    return d


def fake_cifar10(root, n_train: int = 100, n_test: int = 20, seed: int = 0) -> Path:
    """Random CIFAR-10-format files with ``n_train`` / ``n_test`` images under ``root``."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n_train + n_test, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=n_train + n_test)
    return write_cifar10(root, x[:n_train], y[:n_train], x[n_train:], y[n_train:])


@contextlib.contextmanager
def trust_local_files():
    """Inside the block torchvision's CIFAR/SVHN integrity check only tests that files exist."""
    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.svhn as tv_svhn
    saved = tv_cifar.check_integrity, tv_svhn.check_integrity

    def exists_only(fpath, md5=None):
        return os.path.isfile(fpath)

    tv_cifar.check_integrity = tv_svhn.check_integrity = exists_only
    try:
        yield
    finally:
        tv_cifar.check_integrity, tv_svhn.check_integrity = saved
