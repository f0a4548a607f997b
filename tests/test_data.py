"""deapnn.data: embedded datasets (scikit-learn, MNIST-1D), registry and augmentation."""
import hashlib
import random

import numpy as np
import pytest
import sklearn.datasets as skd
import torch

from deapnn.data import (DATASETS, Dataset, Split, augment_batch, dataset_names, load_dataset)
from deapnn.data import embedded

SKLEARN = ["digits", "diabetes", "iris", "wine", "breast_cancer"]
EXPECTED = {  # name: (input_shape, num_classes, task, n after removing exact duplicates)
    "digits": ((1, 8, 8), 10, "classification", 1797),
    "diabetes": ((10,), 1, "regression", 442),
    "iris": ((4,), 3, "classification", 149),
    "wine": ((13,), 3, "classification", 178),
    "breast_cancer": ((30,), 2, "classification", 569),
}


def row_hashes(split: Split) -> set:
    """Hash of every example (features and label) of a split."""
    x = split.x.reshape(len(split), -1).numpy()
    y = split.y.reshape(len(split), -1).numpy()
    return {hashlib.sha1(x[i].tobytes() + y[i].tobytes()).hexdigest() for i in range(len(split))}


def raw_features(name):
    x = skd.__dict__[f"load_{name}"]().data.astype(np.float64)
    return x / 16.0 if name == "digits" else x


def assert_rows_from(rows: np.ndarray, raw: np.ndarray):
    """Every row of ``rows`` is (numerically) a row of ``raw`` (nearest raw row, per-column
    scale)."""
    scale = np.abs(raw).max(axis=0)
    scale = np.where(scale == 0, 1.0, scale)
    d = torch.cdist(torch.from_numpy(rows / scale), torch.from_numpy(raw / scale), p=float("inf"))
    assert (d.min(dim=1).values < 1e-5).all()


# ---------------------------------------------------------------- registry

def test_registry_lists_all_datasets_with_metadata():
    names = dataset_names()
    assert set(names) == set(SKLEARN) | {"mnist1d", "mnist1d_large", "mnist", "fashion_mnist",
                                         "cifar10", "cifar100", "svhn"}
    for name in names:
        info = DATASETS[name]
        assert info.name == name and info["input_shape"] == info.input_shape
        assert info.task in ("classification", "regression")
        assert info.source in ("embedded", "torchvision")
    assert DATASETS["cifar10"].augment == "crop_flip"
    assert DATASETS["cifar100"].augment == "crop_flip"
    assert DATASETS["svhn"].augment == "crop" and DATASETS["mnist"].augment is None
    assert DATASETS["diabetes"].num_classes == 1 and DATASETS["cifar100"].num_classes == 100


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        load_dataset("imagenet")
    assert "imagenet" in str(err.value)
    for name in dataset_names():
        assert name in str(err.value)


def test_bad_seed_rejected():
    with pytest.raises(ValueError, match="seed"):
        load_dataset("iris", seed=1.5)


# ---------------------------------------------------------------- scikit-learn datasets

@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_shapes_dtypes_classes(name):
    shape, ncls, task, n = EXPECTED[name]
    ds = load_dataset(name, seed=0)
    assert isinstance(ds, Dataset) and ds.name == name and ds.task == task
    assert ds.input_shape == shape and ds.num_classes == ncls and ds.augment is None
    assert ds.input_shape == DATASETS[name].input_shape
    assert len(ds.train) + len(ds.val) + len(ds.test) == n
    assert abs(len(ds.train) - 0.6 * n) <= 2 and abs(len(ds.test) - 0.2 * n) <= 1
    for split in ds.splits.values():
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == shape
        assert split.x.device.type == "cpu" and torch.isfinite(split.x).all()
        if task == "classification":
            assert split.y.dtype == torch.int64 and split.y.shape == (len(split),)
            # stratified: every class in every split
            assert set(split.y.tolist()) == set(range(ncls))
        else:
            assert split.y.dtype == torch.float32 and split.y.shape == (len(split), 1)


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_splits_disjoint(name):
    ds = load_dataset(name, seed=3)
    h = {k: row_hashes(s) for k, s in ds.splits.items()}
    assert all(len(h[k]) == len(ds.splits[k]) for k in h)  # no duplicate inside a split either
    assert not h["train"] & h["val"] and not h["train"] & h["test"] and not h["val"] & h["test"]
    idx = ds.meta["indices"]
    allidx = np.concatenate([idx["train"], idx["val"], idx["test"]])
    assert len(np.unique(allidx)) == len(allidx) == ds.meta["n_total"]


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_deterministic_per_seed(name):
    a, b, c = load_dataset(name, seed=7), load_dataset(name, seed=7), load_dataset(name, seed=8)
    for k in ("train", "val", "test"):
        assert torch.equal(a.splits[k].x, b.splits[k].x)
        assert torch.equal(a.splits[k].y, b.splits[k].y)
    assert row_hashes(a.test) != row_hashes(c.test)


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_standardised_with_train_statistics_only(name):
    ds = load_dataset(name, seed=1)
    per_feature = name != "digits"
    xtr = ds.train.x.reshape(len(ds.train), -1).double()
    if per_feature:
        assert xtr.mean(0).abs().max() < 1e-5
        assert (xtr.std(0, unbiased=False) - 1).abs().max() < 1e-4
        assert ds.mean.shape == (xtr.shape[1],) and ds.std.shape == (xtr.shape[1],)
    else:
        assert abs(xtr.mean()) < 1e-5 and abs(xtr.std(unbiased=False) - 1) < 1e-4
        assert ds.mean.dim() == 0
    raw = raw_features(name)
    # val/test were not re-standardised on their own statistics ...
    assert ds.val.x.reshape(len(ds.val), -1).double().mean(0).abs().max() > 1e-3
    # ... but with the training ones: undoing them gives back original rows.
    for split in ds.splits.values():
        x = split.x.reshape(len(split), -1).double().numpy()
        orig = x * ds.std.double().numpy() + ds.mean.double().numpy()
        assert_rows_from(orig, raw)
    # and the stored statistics are those of the raw training rows only
    orig_tr = xtr.numpy() * ds.std.double().numpy() + ds.mean.double().numpy()
    if per_feature:
        assert np.allclose(orig_tr.mean(0), ds.mean.double().numpy(), atol=1e-5 * np.abs(raw).max())
        assert not np.allclose(raw.mean(0), ds.mean.double().numpy(), rtol=1e-6, atol=0)
    else:
        assert not np.isclose(raw.mean(), float(ds.mean), rtol=1e-6, atol=0)


def test_diabetes_target_standardised_with_train_statistics():
    ds = load_dataset("diabetes", seed=2)
    y = ds.train.y.double()
    assert abs(y.mean()) < 1e-5 and abs(y.std(unbiased=False) - 1) < 1e-4
    raw = skd.load_diabetes().target
    assert ds.target_std > 10 and 100 < ds.target_mean < 200
    for split in ds.splits.values():
        orig = split.y.double().numpy()[:, 0] * ds.target_std + ds.target_mean
        assert_rows_from(orig[:, None], raw[:, None])
    assert not np.isclose(raw.mean(), ds.target_mean, rtol=1e-9, atol=0)


def test_digits_are_images_and_iris_duplicate_removed():
    ds = load_dataset("digits")
    pix = ds.train.x * ds.std + ds.mean  # back to [0, 1] scaled pixels
    assert pix.min() > -1e-5 and pix.max() < 1 + 1e-5
    assert torch.allclose(pix * 16, (pix * 16).round(), atol=1e-4)
    iris = load_dataset("iris")
    assert len(iris.train) + len(iris.val) + len(iris.test) == 149


def test_split_and_dataset_helpers():
    ds = load_dataset("wine")
    moved = ds.to("cpu")
    assert torch.equal(moved.test.x, ds.test.x) and len(moved.val) == len(ds.val)
    assert "wine" in ds.summary() and "classification" in ds.summary()


# ---------------------------------------------------------------- MNIST-1D

@pytest.fixture
def mnist1d_cache(tmp_path, monkeypatch):
    """Point the disk cache at a temporary directory and clear the in-memory cache."""
    monkeypatch.setenv("DEAPNN_CACHE", str(tmp_path))
    embedded.mnist1d_arrays.cache_clear()
    yield tmp_path
    embedded.mnist1d_arrays.cache_clear()


def test_mnist1d_sizes_shapes_deterministic(mnist1d_cache):
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    a = load_dataset("mnist1d", seed=0)
    # make_dataset reseeds the global RNGs; the loader must restore them
    assert np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state
    assert (len(a.train), len(a.val), len(a.test)) == (3500, 500, 1000)
    assert a.input_shape == (1, 40) and a.num_classes == 10 and a.task == "classification"
    for split in a.splits.values():
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (1, 40)
        assert split.y.dtype == torch.int64 and set(split.y.tolist()) == set(range(10))
    h = {k: row_hashes(s) for k, s in a.splits.items()}
    assert not h["train"] & h["val"] and not h["train"] & h["test"] and not h["val"] & h["test"]
    assert len(h["train"] | h["val"]) == 4000

    # same data from the disk cache (fresh process simulated by clearing the memory cache)
    files = list(mnist1d_cache.glob("mnist1d-*.npz"))
    assert len(files) == 1
    embedded.mnist1d_arrays.cache_clear()
    b = load_dataset("mnist1d", seed=0)
    for k in ("train", "val", "test"):
        assert torch.equal(a.splits[k].x, b.splits[k].x)
        assert torch.equal(a.splits[k].y, b.splits[k].y)

    # another seed: other validation carve-out, same official test set, same union
    c = load_dataset("mnist1d", seed=1)
    assert torch.equal(a.test.x, c.test.x) and not torch.equal(a.val.x, c.val.x)
    assert h["train"] | h["val"] == row_hashes(c.train) | row_hashes(c.val)

    # returned tensors never alias the cache: in-place edits do not leak into the next load
    c.test.x.add_(1.0)
    c.train.x.mul_(0.0)
    d = load_dataset("mnist1d", seed=1)
    assert torch.equal(d.test.x, a.test.x) and torch.equal(d.val.x, c.val.x)
    assert d.train.x.abs().sum() > 0


def test_mnist1d_matches_package_generation(mnist1d_cache):
    from mnist1d.data import get_dataset_args, make_dataset

    ref = make_dataset(get_dataset_args())
    ds = load_dataset("mnist1d", seed=0)
    assert np.allclose(ds.test.x[:, 0].numpy(), ref["x_test"], atol=1e-6)
    assert np.array_equal(ds.test.y.numpy(), ref["y_test"])
    idx = ds.meta["indices"]
    assert np.allclose(ds.val.x[:, 0].numpy(), ref["x"][idx["val"]], atol=1e-6)
    assert np.array_equal(ds.train.y.numpy(), ref["y"][idx["train"]])


# ---------------------------------------------------------------- augmentation

def _windows(img: torch.Tensor, pad: int = 4):
    """All (dy, dx) crops of the zero-padded image."""
    c, h, w = img.shape
    p = torch.nn.functional.pad(img, (pad, pad, pad, pad))
    return [p[:, dy:dy + h, dx:dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]


def _asymmetric_batch(n=48, c=3, h=8, w=8):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, c, h, w, generator=g) + 1.0  # strictly positive: padding zeros are visible


def test_augment_identity_for_none():
    x = _asymmetric_batch()
    assert augment_batch(x, None) is x
    assert augment_batch(x, "none") is x


@pytest.mark.parametrize("kind", ["crop", "crop_flip"])
def test_augment_shape_dtype_and_determinism(kind):
    x = _asymmetric_batch()
    a = augment_batch(x, kind, torch.Generator().manual_seed(5))
    b = augment_batch(x, kind, torch.Generator().manual_seed(5))
    c = augment_batch(x, kind, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_crop_is_a_padded_window_and_never_flips():
    x = _asymmetric_batch()
    out = augment_batch(x, "crop", torch.Generator().manual_seed(1))
    shifted = 0
    for img, o in zip(x, out):
        wins = _windows(img)
        assert any(torch.equal(o, wnd) for wnd in wins)
        # a flipped window never matches the output (unflipped windows are all distinct here)
        assert not any(torch.equal(o, wnd.flip(-1)) for wnd in wins)
        shifted += not torch.equal(o, img)
    assert shifted > len(x) // 2


def test_crop_flip_is_a_possibly_flipped_window_and_flips_sometimes():
    x = _asymmetric_batch()
    out = augment_batch(x, "crop_flip", torch.Generator().manual_seed(2))
    flips = 0
    for img, o in zip(x, out):
        wins = _windows(img)
        plain = any(torch.equal(o, wnd) for wnd in wins)
        flipped = any(torch.equal(o, wnd.flip(-1)) for wnd in wins)
        assert plain != flipped
        flips += flipped
    assert 0.2 * len(x) < flips < 0.8 * len(x)


def test_augment_rejects_bad_input():
    with pytest.raises(ValueError, match="valid"):
        augment_batch(_asymmetric_batch(), "rotate")
    with pytest.raises(ValueError, match="image"):
        augment_batch(torch.zeros(4, 10), "crop")
