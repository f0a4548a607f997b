"""Atomic, resumable, safe-to-load run state.

A checkpoint is a nest of dicts / lists / tuples / str / int / float / bool / None and tensors,
written with ``torch.save`` to a temporary file in the same directory, flushed, fsynced and renamed
over the old one, so a kill at any moment leaves either the previous or the new checkpoint.
It is read back with ``torch.load(weights_only=True)``: no arbitrary object is unpickled, so a
tampered file cannot execute code; a truncated or tampered file raises :class:`CheckpointError`.
"""
from __future__ import annotations

import glob
import os
import tempfile
import time

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read safely (truncated, tampered, or of another format)."""


FORMAT = "deapnn-checkpoint-1"
STALE_SECONDS = 60.0


def _remove_stale_temporaries(directory: str) -> None:
    """Delete temporary files left by writers killed mid-write (older than a minute)."""
    now = time.time()
    for tmp in glob.glob(os.path.join(directory, ".ckpt-*")):
        try:
            if now - os.path.getmtime(tmp) > STALE_SECONDS:
                os.unlink(tmp)
        except OSError:   # removed meanwhile by another process
            pass


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Atomically write ``state`` to ``path`` (write to a temporary file, fsync, rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temporaries(directory)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, "state": state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` without executing any code."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, disallowed global, bad magic...
        raise CheckpointError(f"checkpoint {path} is corrupt or unsafe: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {FORMAT} file")
    return blob["state"]
