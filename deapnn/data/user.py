"""The user's own data: ``--dataset PATH.npz`` or ``--dataset package.module:function``.

An ``.npz`` (written with ``numpy.savez``) holds the arrays ``x_train``, ``y_train``, ``x_test``,
``y_test``, optionally ``x_val``/``y_val`` (else a validation split is drawn from the training
examples, as for the embedded datasets: 20 %, stratified, deterministic in the seed), ``classes``
(class names; the dataset is then a classification one) and ``task`` (``"classification"`` or
``"regression"``; without it integer labels mean classification, float targets regression). A
function named by an import string (:mod:`deapnn.imports`) is called without arguments and
returns a dict of the same arrays (NumPy arrays or torch tensors).

The file is read with ``allow_pickle=False`` from a descriptor opened without following a link
(:mod:`deapnn.data.user_file`: a link to ``/dev/zero`` is refused, never read), and every array
is checked before any work: names, dtypes, shapes, split sizes, NaN/inf and label ranges. A
problem is one :class:`~deapnn.data.user_file.UserDataError` line naming the setting, the file
and the array (``dataset: FILE: y_test ...``). Inputs are standardised with statistics of the
training split only (per feature for tables, per channel for ``(N, C, ...)`` inputs), regression
targets as the embedded ``diabetes``. The checked arrays are kept once per process (a SCOOP
worker reads the file once; a file changed on disk is read again).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .base import Dataset, Split
from ..imports import exception_line, is_import_string
from .registry import DatasetInfo
from .user_file import open_data_file
from .user_file import data_error as _error

USER = "user"
REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val", "classes", "task")
TASKS = ("classification", "regression")
#: the validation split drawn from the training examples when the data has none
VAL_FRACTION = 0.2
_CACHE: dict = {}
_CACHE_SIZE = 4


def _read_npz(path: str, fd: int) -> dict:
    import zipfile
    with os.fdopen(fd, "rb") as fh:
        try:
            loaded = np.load(fh, allow_pickle=False)
        except ValueError as exc:
            if "pickle" in str(exc):
                raise _error(path, "is not an .npz archive (numpy would read it as pickled "
                                   "data, which deapnn never loads: allow_pickle=False); write "
                                   "it with numpy.savez") from None
            raise _error(path, f"is not a readable .npz archive ({exception_line(exc)})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise _error(path, f"is not a readable .npz archive ({exception_line(exc)})") from None
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise _error(path, "holds one array, not an .npz archive of named arrays; write it "
                               "with numpy.savez(path, x_train=..., y_train=..., ...)")
        arrays = {}
        with loaded:
            _check_names(path, loaded.files)
            for name in loaded.files:
                try:
                    arrays[name] = loaded[name]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise _error(path, f"{name} is an object array, which needs pickle "
                                           "(deapnn loads with allow_pickle=False); store a "
                                           "numeric array") from None
                    raise _error(path, f"{name} is unreadable ({exception_line(exc)})") from None
                except (OSError, EOFError, zipfile.BadZipFile) as exc:
                    raise _error(path, f"{name} is unreadable ({exception_line(exc)})") from None
    return arrays


def _call_function(spec: str) -> dict:
    from collections.abc import Mapping

    from ..imports import resolve
    function = resolve(spec, "dataset")
    try:
        out = function()
    except Exception as exc:            # a user's function may raise anything
        raise _error(spec, f"the function raised {exception_line(exc)}") from None
    if not isinstance(out, Mapping):
        raise _error(spec, f"the function returned a {type(out).__name__}, not a dict of "
                           "arrays (x_train, y_train, x_test, y_test, ...)")
    _check_names(spec, [str(k) for k in out])
    arrays = {}
    for name, value in out.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            arrays[str(name)] = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise _error(spec, f"{name} is not an array ({exception_line(exc)})") from None
    return arrays


def _check_names(shown: str, names) -> None:
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    if unknown:
        raise _error(shown, f"unknown array {unknown[0]!r} (known: "
                            f"{', '.join(REQUIRED + OPTIONAL)})")
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise _error(shown, f"no array {missing[0]} (needed: {', '.join(REQUIRED)}; optional: "
                            f"{', '.join(OPTIONAL)})")
    if ("x_val" in names) != ("y_val" in names):
        have, lack = ("x_val", "y_val") if "x_val" in names else ("y_val", "x_val")
        raise _error(shown, f"{have} without {lack}: give both or neither")


@dataclass
class UserData:
    """The checked arrays of the user's data (``val`` None: drawn from the training split)."""
    name: str
    task: str
    num_classes: int
    classes: list | None
    train: tuple
    val: tuple | None
    test: tuple

    @property
    def input_shape(self) -> tuple:
        """One example's shape."""
        return tuple(int(s) for s in self.train[0].shape[1:])


def _marker(shown: str, arrays: dict) -> str | None:
    if "task" not in arrays:
        return None
    task = arrays["task"]
    value = task.reshape(-1)[0] if task.size == 1 else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if task.dtype.kind not in "US" or value is None or str(value) not in TASKS:
        raise _error(shown, f"task must be one string, classification or regression, got "
                            f"{task.tolist()!r}"[:200])
    return str(value)


def _check_split(shown: str, split: str, x: np.ndarray, y: np.ndarray, shape) -> None:
    for name, a in ((f"x_{split}", x), (f"y_{split}", y)):
        if a.dtype.kind not in "biuf":
            raise _error(shown, f"{name} has dtype {a.dtype}, not a numeric one")
        if a.ndim == 0 or len(a) == 0:
            raise _error(shown, f"{name} is empty (shape {a.shape}): every split needs "
                                "examples")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
            what = "NaN" if np.isnan(a).any() else "inf"
            rows = int(bad.sum())
            raise _error(shown, f"{name} holds {what} ({rows} row{'s' * (rows != 1)}, the "
                                f"first is row {int(np.argmax(bad))})")
    if x.ndim < 2:
        raise _error(shown, f"x_{split} is {x.ndim}-D, shape {x.shape}: x needs one row per "
                            "example, (N, features) or (N, C, H, W)")
    if len(x) != len(y):
        raise _error(shown, f"x_{split} has {len(x)} examples, y_{split} {len(y)}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise _error(shown, f"x_{split} examples have shape {tuple(x.shape[1:])}, x_train's "
                            f"{tuple(shape)}")
    if x.dtype.kind == "f" and x.dtype.itemsize > 4 \
            and np.abs(x).max() > np.finfo(np.float32).max:
        raise _error(shown, f"x_{split} holds values beyond the float32 range")


def checked(shown: str, arrays: dict) -> UserData:
    """The arrays as :class:`UserData`, or the
    :class:`~deapnn.data.user_file.UserDataError` of the first problem."""
    _check_names(shown, list(arrays))
    for name, a in arrays.items():
        if a.dtype == object:
            raise _error(shown, f"{name} is an object array; store a numeric array")
    task = _marker(shown, arrays)
    classes = None
    if "classes" in arrays:
        c = arrays["classes"]
        if c.ndim != 1 or len(c) < 2:
            raise _error(shown, f"classes must list the class names (1-D, at least 2), got "
                                f"shape {c.shape}")
        classes = c.tolist()
    splits = ["train"] + ["val"] * ("x_val" in arrays) + ["test"]
    for split in splits:
        _check_split(shown, split, arrays[f"x_{split}"], arrays[f"y_{split}"],
                     None if split == "train" else arrays["x_train"].shape[1:])
    if task is None:
        task = "classification" if classes is not None \
            or arrays["y_train"].dtype.kind in "biu" else "regression"
    if task == "regression" and classes is not None:
        raise _error(shown, "classes given for a regression task")
    ys = {s: arrays[f"y_{s}"] for s in splits}
    for split, y in ys.items():
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise _error(shown, f"y_{split} has shape {y.shape}: one label or target per "
                                "example, (N,) or (N, 1)")
    if task == "classification":
        for split, y in ys.items():
            if y.dtype.kind not in "biu":
                raise _error(shown, f"y_{split} holds {y.dtype} labels, a classification task "
                                    "needs integer class indices 0..C-1 (or mark the task "
                                    "regression: task='regression')")
        n = len(classes) if classes is not None else \
            max(int(y.max()) for y in ys.values()) + 1
        for split, y in ys.items():
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= n:
                bad = low if low < 0 else high
                source = f"{n} names in classes" if classes is not None else f"{n} classes"
                raise _error(shown, f"y_{split} holds label {bad}, outside 0..{n - 1} ({source})")
        if n < 2:
            raise _error(shown, "y_train holds one class only; classification needs at least 2")
        ys = {s: y.reshape(-1).astype(np.int64) for s, y in ys.items()}
    else:
        n = 1
        ys = {s: y.reshape(-1, 1).astype(np.float64) for s, y in ys.items()}
    parts = {s: (np.asarray(arrays[f"x_{s}"], dtype=np.float32), ys[s]) for s in splits}
    return UserData(shown, task, n, classes, parts["train"], parts.get("val"), parts["test"])


def user_data(spec: str) -> UserData:
    """The checked arrays of the user's dataset ``spec`` (a path or an import string), read
    once per process (a path again when the file changed)."""
    if is_import_string(spec):
        key: tuple = ("function", spec)
        if key not in _CACHE:
            _remember(key, checked(spec, _call_function(spec)))
        return _CACHE[key]
    path = os.path.abspath(os.path.expanduser(spec))
    fd, info = open_data_file(path)
    key = ("file", path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if key in _CACHE:
        os.close(fd)
        return _CACHE[key]
    return _remember(key, checked(spec, _read_npz(spec, fd)))


def _remember(key: tuple, data: UserData) -> UserData:
    _CACHE.pop(key, None)
    _CACHE[key] = data
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    return data


def user_info(spec: str) -> DatasetInfo:
    """The :class:`~deapnn.data.DatasetInfo` of the user's dataset ``spec`` (its arrays are
    read and checked). ``train_pool``: the training examples a validation split is drawn from,
    None when the data has its own."""
    d = user_data(spec)
    n_val = "own validation split" if d.val is not None else \
        f"{VAL_FRACTION:.0%} of the training examples for validation"
    return DatasetInfo(spec, d.input_shape, d.num_classes, d.task, USER, None,
                       f"user data: {len(d.train[0])} training / {len(d.test[0])} test "
                       f"examples, {n_val}", None if d.val is not None else len(d.train[0]))


def _val_indices(d: UserData, seed: int, val_size: int | None) -> tuple:
    from sklearn.model_selection import train_test_split

    from .vision import check_val_size
    n = len(d.train[0])
    idx = np.arange(n)
    k = min(n - 1, max(1, int(round(VAL_FRACTION * n)))) if val_size is None else \
        check_val_size(val_size, n, d.name)
    if k == 0:
        return idx, idx[:0]
    y = d.train[1] if d.task == "classification" else None
    try:
        train, val = train_test_split(idx, test_size=k, random_state=seed, stratify=y)
    except ValueError:      # a class too small to stratify: an unstratified draw
        train, val = train_test_split(idx, test_size=k, random_state=seed)
    return np.sort(train), np.sort(val)


def load_user(spec: str, seed: int = 0, val_size: int | None = None) -> Dataset:
    """The user's dataset ``spec`` as a :class:`~deapnn.data.Dataset` (see the module)."""
    d = user_data(spec)
    x, y = d.train
    if d.val is not None:
        if val_size not in (None, 0):
            raise ValueError(f"val_size must be left out (or 0 for none) for {spec}: it has "
                             f"its own validation split, x_val, y_val; got {val_size!r}")
        vx, vy = d.val if val_size is None else (x[:0], y[:0])
    else:
        train_idx, val_idx = _val_indices(d, seed, val_size)
        x, y, vx, vy = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    axes = (0,) if x.ndim == 2 else (0,) + tuple(range(2, x.ndim))
    mean, std = x.mean(axis=axes, dtype=np.float64), x.std(axis=axes, dtype=np.float64)
    std = np.where(std < 1e-12, 1.0, std)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    view = (1, -1) + (1,) * (x.ndim - 2)

    def inputs(a):
        return torch.from_numpy(((a - mean.reshape(view)) / std.reshape(view)).astype(np.float32))

    target_mean = target_std = None
    if d.task == "regression":
        target_mean, target_std = float(y.mean()), float(y.std())
        target_std = target_std if target_std > 1e-12 else 1.0

    def targets(a):
        if d.task == "classification":
            return torch.from_numpy(np.ascontiguousarray(a))
        return torch.from_numpy(((a - target_mean) / target_std).astype(np.float32))

    return Dataset(
        name=spec, task=d.task, input_shape=d.input_shape, num_classes=d.num_classes,
        train=Split(inputs(x), targets(y)), val=Split(inputs(vx), targets(vy)),
        test=Split(inputs(d.test[0]), targets(d.test[1])), augment=None,
        mean=torch.as_tensor(mean, dtype=torch.float32),
        std=torch.as_tensor(std, dtype=torch.float32),
        target_mean=target_mean, target_std=target_std,
        classes=d.classes if d.classes is not None else (
            list(range(d.num_classes)) if d.task == "classification" else None),
        source=USER, meta={"seed": seed, "standardisation": "per_feature" if x.ndim == 2
                           else "per_channel"})


__all__ = ["REQUIRED", "OPTIONAL", "UserData", "checked", "load_user", "user_data", "user_info"]
