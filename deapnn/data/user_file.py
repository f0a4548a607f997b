"""The user's data file (``--dataset PATH.npz``): telling a path from a dataset name or an import
string, opening it safely, and what a run records of it.

A data file is opened read-only from a descriptor that never follows a link (a link to
``/dev/zero`` is refused, never read) and must be a regular file, not a directory, FIFO or
device. A run's ``config.json`` records the file's path, SHA-256 and size
(:func:`dataset_record`), and ``--resume`` refuses a file that changed (:func:`check_record`).
Reading and checking the arrays is :mod:`deapnn.data.user`'s work.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat

from ..imports import is_import_string
from .registry import DATASETS

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class UserDataError(ValueError):
    """The user's data cannot be used; the message is one line naming the setting, the file (or
    import string) and the array (``what``: the problem alone)."""

    what = ""


def is_path_spec(spec) -> bool:
    """A path to a data file: not a dataset name nor an import string, and ending in ``.npz``,
    holding a directory separator or naming something that exists."""
    if not isinstance(spec, str) or not spec.strip() or is_import_string(spec):
        return False
    if spec.strip().lower().replace("-", "_") in DATASETS:
        return False
    return spec.lower().endswith(".npz") or "/" in spec or os.sep in spec \
        or os.path.lexists(spec)


def is_user_spec(spec) -> bool:
    """The user's data: a path (:func:`~deapnn.data.user_file.is_path_spec`) or an import string."""
    return is_path_spec(spec) or is_import_string(spec)


def dataset_argument(text: str) -> str:
    """``--dataset``'s parser: a path made absolute (the run's ``config.json`` and its SCOOP
    workers then name the same file wherever they start); anything else as typed."""
    text = str(text)
    return os.path.abspath(os.path.expanduser(text)) if is_path_spec(text) else text


def data_error(shown: str, what: str) -> UserDataError:
    """A :class:`UserDataError` ``dataset: SHOWN: WHAT`` (``what`` kept as its attribute)."""
    exc = UserDataError(f"dataset: {shown}: {what}")
    exc.what = what
    return exc


def open_data_file(path: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor on the regular file ``path`` and its ``fstat``; a link (never
    followed), a directory, FIFO or device is a :class:`UserDataError`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise data_error(path, f"is a symbolic link (to {os.path.realpath(path)}); deapnn does "
                               "not follow links to data files: give the file itself") from None
        if exc.errno == errno.ENOENT:
            raise data_error(path, "does not exist") from None
        raise data_error(path, f"cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((k for test, k in _KINDS if test(info.st_mode)), "a special file")
            raise data_error(path, f"is {kind}, not an .npz file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def file_sha256(path: str) -> str:
    """The SHA-256 of the data file ``path`` (read as :func:`open_data_file` opens it)."""
    fd, _ = open_data_file(path)
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: the key of ``config.json`` that records the user's data file of a run
RECORD = "dataset_file"


def dataset_record(spec) -> dict:
    """What a run's ``config.json`` records of its dataset beside the configuration: for a data
    file ``{"dataset_file": {"path", "sha256", "bytes"}}`` (``--resume`` refuses a changed
    file, :func:`check_record`); nothing for a name or an import string (which the
    configuration records)."""
    if not is_path_spec(spec):
        return {}
    path = os.path.abspath(os.path.expanduser(spec))
    return {RECORD: {"path": path, "sha256": file_sha256(path),
                     "bytes": os.stat(path).st_size}}


def check_record(config: dict) -> None:
    """A :class:`UserDataError` line unless the data file a run's ``config.json`` records
    (:func:`dataset_record`) is still there with the same SHA-256."""
    record = config.get(RECORD)
    if not isinstance(record, dict):
        return
    path, digest = str(record.get("path")), str(record.get("sha256"))
    try:
        now = file_sha256(path)
    except UserDataError as exc:
        raise UserDataError(f"the run's data file {path} {getattr(exc, 'what', exc)}: restore "
                            "it, or start a new run with --out") from None
    if now != digest:
        raise UserDataError(f"the data file {path} changed since the run started (SHA-256 "
                            f"{digest[:12]}..., now {now[:12]}...): restore it, or start a new "
                            "run with --out")


__all__ = ["RECORD", "UserDataError", "check_record", "data_error", "dataset_argument",
           "dataset_record", "file_sha256", "is_path_spec", "is_user_spec", "open_data_file"]
