"""``load_dataset(..., val_size=N)``: the validation examples held out of the training data.

``val_size=0`` is the GLS paper's CIFAR protocol (train on all 50,000 images, no validation
split; Ding & Spector 2022, §4); the default (``None``) keeps every dataset's usual split.
"""
import numpy as np
import pytest
import torch

from deapnn.data import fake, load_dataset
from deapnn.data.vision import default_val_size

N_TRAIN, N_TEST = 100, 20


@pytest.fixture
def cifar_root(tmp_path):
    fake.fake_cifar10(tmp_path, N_TRAIN, N_TEST, seed=3)
    with fake.trust_local_files():
        yield tmp_path


def rows(split):
    return {tuple(np.round(x.flatten().numpy(), 5)) + (int(y),) for x, y in zip(split.x, split.y)}


def same(a, b):
    return torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_torchvision_default_is_the_usual_split_and_equals_its_size_given_explicitly(cifar_root):
    default = load_dataset("cifar10", root=cifar_root, seed=2)
    assert len(default.val) == default_val_size(N_TRAIN) == 10
    explicit = load_dataset("cifar10", root=cifar_root, seed=2, val_size=10)
    for name in ("train", "val", "test"):
        assert same(default.splits[name], explicit.splits[name])


def test_torchvision_val_size_zero_trains_on_the_whole_training_set(cifar_root):
    default = load_dataset("cifar10", root=cifar_root, seed=2)
    paper = load_dataset("cifar10", root=cifar_root, seed=2, val_size=0)
    assert (len(paper.train), len(paper.val), len(paper.test)) == (N_TRAIN, 0, N_TEST)
    assert paper.val.x.shape == (0, 3, 32, 32) and paper.val.y.dtype == torch.int64
    assert rows(paper.train) == rows(default.train) | rows(default.val)
    assert same(paper.test, default.test)
    # in file order: the official training set as it is
    assert np.array_equal(paper.meta["indices"]["train"], np.arange(N_TRAIN))


def test_torchvision_val_size_n_holds_out_n_and_larger_splits_contain_smaller(cifar_root):
    small = load_dataset("cifar10", root=cifar_root, seed=5, val_size=7)
    large = load_dataset("cifar10", root=cifar_root, seed=5, val_size=30)
    assert (len(small.train), len(small.val)) == (93, 7)
    assert (len(large.train), len(large.val)) == (70, 30)
    assert rows(small.val) <= rows(large.val)
    assert not rows(small.val) & rows(small.train)


@pytest.mark.parametrize("bad", [-1, N_TRAIN, 2.5, True])
def test_torchvision_val_size_out_of_range_is_a_value_error(cifar_root, bad):
    with pytest.raises(ValueError, match="val_size"):
        load_dataset("cifar10", root=cifar_root, val_size=bad)


@pytest.mark.parametrize("name", ["digits", "iris", "diabetes", "mnist1d"])
def test_embedded_val_size(name):
    default = load_dataset(name, seed=1)
    explicit = load_dataset(name, seed=1, val_size=len(default.val))
    for split in ("train", "val", "test"):   # the usual size given explicitly: the same split
        assert same(default.splits[split], explicit.splits[split])
    paper = load_dataset(name, seed=1, val_size=0)
    assert len(paper.val) == 0 and paper.val.x.shape[1:] == default.val.x.shape[1:]
    assert len(paper.train) == len(default.train) + len(default.val)
    idx, pidx = default.meta["indices"], paper.meta["indices"]
    assert np.array_equal(np.sort(np.concatenate([idx["train"], idx["val"]])), pidx["train"])
    if name != "mnist1d":     # standardised with training statistics: same examples, test too
        assert np.array_equal(idx["test"], pidx["test"])
    else:
        assert same(default.test, paper.test)
    some = load_dataset(name, seed=1, val_size=12)
    assert len(some.val) == 12 and len(some.train) == len(paper.train) - 12


def test_embedded_val_size_too_small_to_stratify_or_too_large_names_val_size():
    with pytest.raises(ValueError, match="val_size 2 cannot be drawn stratified"):
        load_dataset("iris", val_size=2)                 # 3 classes
    with pytest.raises(ValueError, match="val_size must be an integer from 0 to 118"):
        load_dataset("iris", val_size=500)


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast_cancer", "diabetes", "mnist1d"])
def test_registry_train_pool_is_what_val_size_zero_trains_on(name):
    from deapnn.data import DATASETS
    assert len(load_dataset(name, val_size=0).train) == DATASETS[name].train_pool
