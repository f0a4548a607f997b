"""deapnn.data torchvision loaders on tiny files written here in the real on-disk formats.

CIFAR and SVHN files are md5-checked by torchvision against the official archives, which a
tiny synthetic file can never match: the ``tiny_files_pass_md5`` fixture replaces the
integrity check (in torchvision's cifar/svhn modules, for this test only) by an existence
check, so everything else — paths, pickle/.mat/idx parsing, layout — is torchvision's real
code. ``test_fake_files_fail_real_md5_check`` shows the library itself does not bypass it.
"""
import pickle
import struct

import numpy as np
import pytest
import torch

from deapnn.data import DatasetNotFoundError, fake, load_dataset
from deapnn.data.vision import NORMALISATION, default_root, default_val_size as val_size

N_TRAIN, N_TEST = 30, 7


@pytest.fixture
def tiny_files_pass_md5():
    with fake.trust_local_files():
        yield


def images(n, c, h, w, seed):
    """Random uint8 images (N, C, H, W): distinct and asymmetric, so orientation errors show."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def labels(n, k, seed):
    return np.random.default_rng(seed + 100).integers(0, k, size=n).astype(np.int64)


# ------------------------------------------------------------------ writers (real formats)

def write_idx(path, arr: np.ndarray):
    """MNIST idx file: big-endian magic (0, 0, dtype=0x08 uint8, ndim), dims, raw bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, arr.ndim))
        f.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def write_mnist(root, folder, xtr, ytr, xte, yte):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", xtr[:, 0])
    write_idx(raw / "train-labels-idx1-ubyte", ytr)
    write_idx(raw / "t10k-images-idx3-ubyte", xte[:, 0])
    write_idx(raw / "t10k-labels-idx1-ubyte", yte)


def write_cifar10(root, xtr, ytr, xte, yte):
    fake.write_cifar10(root, xtr, ytr, xte, yte)


def write_cifar100(root, xtr, ytr, xte, yte):
    d = root / "cifar-100-python"
    d.mkdir()
    for name, xs, ys in (("train", xtr, ytr), ("test", xte, yte)):
        with open(d / name, "wb") as f:
            pickle.dump({"data": xs.reshape(len(xs), -1), "fine_labels": ys.tolist(),
                         "coarse_labels": (ys // 5).tolist()}, f)
    with open(d / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"fine{i}" for i in range(100)],
                     "coarse_label_names": [f"coarse{i}" for i in range(20)]}, f)


def write_svhn(root, xtr, ytr, xte, yte):
    from scipy.io import savemat

    for name, xs, ys in (("train_32x32.mat", xtr, ytr), ("test_32x32.mat", xte, yte)):
        # X is (H, W, C, N) uint8; y is (N, 1) with label 10 standing for digit 0
        savemat(root / name, {"X": xs.transpose(2, 3, 1, 0),
                              "y": np.where(ys == 0, 10, ys)[:, None].astype(np.uint8)})


FORMATS = {  # name: (writer, (C, H, W), classes)
    "mnist": (lambda r, *a: write_mnist(r, "MNIST", *a), (1, 28, 28), 10),
    "fashion_mnist": (lambda r, *a: write_mnist(r, "FashionMNIST", *a), (1, 28, 28), 10),
    "cifar10": (write_cifar10, (3, 32, 32), 10),
    "cifar100": (write_cifar100, (3, 32, 32), 100),
    "svhn": (write_svhn, (3, 32, 32), 10),
}


def to_uint8(x: torch.Tensor, name: str) -> np.ndarray:
    """Undo the loader's normalisation: back to uint8 pixels."""
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in NORMALISATION[name])
    return ((x * std + mean) * 255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("name", list(FORMATS))
def test_torchvision_round_trip(name, tmp_path, tiny_files_pass_md5):
    writer, shape, k = FORMATS[name]
    xtr, xte = images(N_TRAIN, *shape, seed=1), images(N_TEST, *shape, seed=2)
    ytr, yte = labels(N_TRAIN, k, 1), labels(N_TEST, k, 2)
    ytr[:2] = [0, k - 1]  # SVHN's "10 means 0" and the top class both appear
    writer(tmp_path, xtr, ytr, xte, yte)

    ds = load_dataset(name, root=tmp_path, seed=0)
    assert ds.input_shape == shape and ds.num_classes == k and ds.task == "classification"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (N_TRAIN - val_size(N_TRAIN),
                                                          val_size(N_TRAIN), N_TEST)
    assert ds.augment == {"cifar10": "crop_flip", "cifar100": "crop_flip", "svhn": "crop"}.get(name)
    for split in ds.splits.values():
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == shape
        assert split.y.dtype == torch.int64

    # test split: exact pixels, orientation and labels, in file order
    assert np.array_equal(to_uint8(ds.test.x, name), xte)
    assert np.array_equal(ds.test.y.numpy(), yte)
    # normalisation: per-channel (pixel / 255 - mean_c) / std_c
    mean, std = NORMALISATION[name]
    c = shape[0] - 1
    assert abs(float(ds.test.x[3, c, 5, 7]) - (xte[3, c, 5, 7] / 255 - mean[c]) / std[c]) < 1e-5
    assert torch.allclose(ds.mean, torch.tensor(mean)) and torch.allclose(ds.std, torch.tensor(std))

    # train + val: disjoint, together exactly the training file, each image with its label
    idx = ds.meta["indices"]
    assert not set(idx["train"]) & set(idx["val"])
    assert sorted(np.concatenate([idx["train"], idx["val"]])) == list(range(N_TRAIN))
    for part in ("train", "val"):
        split = ds.splits[part]
        assert np.array_equal(to_uint8(split.x, name), xtr[idx[part]])
        assert np.array_equal(split.y.numpy(), ytr[idx[part]])

    # deterministic for a seed, another seed carves another validation set
    again = load_dataset(name, root=tmp_path, seed=0)
    other = load_dataset(name, root=tmp_path, seed=1)
    assert torch.equal(again.val.x, ds.val.x) and torch.equal(again.train.y, ds.train.y)
    assert not np.array_equal(other.meta["indices"]["val"], idx["val"])


def test_root_as_string_and_default_root_from_env(tmp_path, monkeypatch, tiny_files_pass_md5):
    xtr, xte = images(N_TRAIN, 1, 28, 28, 3), images(N_TEST, 1, 28, 28, 4)
    write_mnist(tmp_path, "MNIST", xtr, labels(N_TRAIN, 10, 3), xte, labels(N_TEST, 10, 4))
    assert len(load_dataset("MNIST", root=str(tmp_path)).test) == N_TEST
    monkeypatch.setenv("DEAPNN_DATA", str(tmp_path))
    assert default_root() == tmp_path
    assert np.array_equal(to_uint8(load_dataset("mnist").test.x, "mnist"), xte)


@pytest.mark.parametrize("name,subdir", [("mnist", "MNIST/raw"),
                                         ("fashion_mnist", "FashionMNIST/raw"),
                                         ("cifar10", "cifar-10-batches-py"),
                                         ("cifar100", "cifar-100-python"),
                                         ("svhn", "")])
def test_missing_files_name_directory_and_download_option(name, subdir, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, root=tmp_path)
    assert isinstance(err.value, FileNotFoundError)
    msg = str(err.value)
    assert str(tmp_path / subdir) in msg and "--download" in msg and name in msg


def test_fake_files_fail_real_md5_check(tmp_path):
    """Without the test-only fixture, torchvision's md5 check rejects the synthetic CIFAR files."""
    write_cifar10(tmp_path, images(10, 3, 32, 32, 5), labels(10, 10, 5),
                  images(2, 3, 32, 32, 6), labels(2, 10, 6))
    with pytest.raises(DatasetNotFoundError, match="corrupted"):
        load_dataset("cifar10", root=tmp_path)
