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
from contextlib import contextmanager
import tempfile
import time

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read safely (truncated, tampered, or of another format)."""


class StateError(CheckpointError):
    """A checkpoint of the right format whose state does not fit the run resuming it (a key
    missing, a value of the wrong type or shape): the run's error, reported in one line."""

    def __init__(self, detail: str, path: str | None = None):
        self.detail, self.path = detail, path
        super().__init__(f"checkpoint {path or 'checkpoint.pt'} is readable but does not hold "
                         f"this run's state ({detail}); move it away to restart that part of "
                         "the run")

    def at(self, path: str) -> StateError:
        """The same error naming ``path`` (when the code that restored it did not know it)."""
        return self if self.path else StateError(self.detail, path)


@contextmanager
def restoring(path: str | None = None):
    """Restore a run's state from a loaded checkpoint inside this block: a state of the wrong
    shape (``KeyError``, ``TypeError``, a weight tensor that does not fit...) raises
    :class:`StateError` naming ``path`` (default: the run's checkpoint.pt)."""
    try:
        yield
    except StateError as exc:
        # the error being handled, or the same error naming path: nothing new to chain it to
        raise exc.at(path) if path else exc  # noqa: B904
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        text = str(exc).strip()
        detail = f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"
        raise StateError(detail, path) from None


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
    blob = serialize({"format": FORMAT, "state": state})
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ckpt-", dir=directory)
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_error(exc, path) from None
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def serialize(obj) -> bytes:
    """``torch.save(obj)`` as bytes: written to the file by plain ``write`` calls, a full disk
    or a file-size limit surfaces as its ``OSError`` (ENOSPC, EFBIG) instead of the
    ``unexpected pos`` that torch's zip writer reports for a failed write."""
    import io
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def write_error(exc: OSError, path: str) -> OSError:
    """``exc`` (a failed write) naming ``path``, the file being written, with its errno."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), os.fspath(path))


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
