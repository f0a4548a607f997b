"""Atomic, resumable, safe-to-load run state.

A checkpoint is a nest of dicts / lists / tuples / str / int / float / bool / None and tensors,
written with ``torch.save`` to a temporary file in the same directory, flushed, fsynced and renamed
over the old one, so a kill at any moment leaves either the previous or the new checkpoint.
It is read back with ``torch.load(weights_only=True)``: no arbitrary object is unpickled, so a
tampered file cannot execute code; a truncated or tampered file raises :class:`CheckpointError`.

A checkpoint is bound to its run: it stores :func:`config_hash` of the configuration that defines
the run (``config.json``'s ``"config"`` block, the invocation's settings left out), and a
checkpoint of another run (copied, or left by a run of other settings) is refused when it is
loaded. A checkpoint written before the binding (no hash) is accepted as before.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
from contextlib import contextmanager
import time

import torch

from .safefs import FileKindError, atomic_write, make_dirs, open_binary


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


def config_hash(command, block: dict, part: str | None = None) -> str:
    """The identity of a run (or of ``part`` of it, e.g. one GLS job ``"gls/seed0"``): the
    SHA-256 of its ``command`` and defining configuration ``block`` (``config.json``'s
    ``"config"``, in the current layout) without the invocation's settings
    (:meth:`deapnn.config.Config.invocation_settings`: they may change on ``--resume``), and
    without the settings added since runs were stored while they hold the value that means "as
    before" (``ADDED_FIELDS`` of the class and of every base: a run stored before they existed
    keeps its identity)."""
    from .results import config_class
    cls = config_class(command) if isinstance(command, str) else None
    skip = set(cls.invocation_settings()) if cls is not None else set()
    plain = json.loads(json.dumps(block, default=str))      # as config.json stores it
    if cls is not None and isinstance(plain, dict):
        added = {k: v for klass in cls.__mro__ for k, v in vars(klass).get("ADDED_FIELDS",
                                                                            {}).items()}
        skip |= {k for k, v in added.items() if k in plain and plain[k] == v}
    defining = {k: v for k, v in plain.items() if k not in skip} if isinstance(plain, dict) \
        else plain
    text = json.dumps({"command": command, "config": defining, "part": part}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _remove_stale_temporaries(directory: str) -> None:
    """Delete temporary files left by writers killed mid-write (older than a minute)."""
    now = time.time()
    for tmp in glob.glob(os.path.join(directory, ".ckpt-*")):
        try:
            if now - os.path.getmtime(tmp) > STALE_SECONDS:
                os.unlink(tmp)
        except OSError:   # removed meanwhile by another process
            pass


def save_checkpoint(path: str | os.PathLike, state: dict, run: str | None = None) -> None:
    """Atomically write ``state`` to ``path`` (write to a temporary file, fsync, rename);
    ``run``: the :func:`config_hash` of the run it belongs to (checked by
    :func:`load_checkpoint`)."""
    from .results import SCHEMA_VERSION
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:        # below a run directory: created and written without following links
        make_dirs(directory)
    except OSError as exc:
        raise write_error(exc, path) from None
    _remove_stale_temporaries(directory)
    bound = {"run": run, "schema_version": SCHEMA_VERSION} if run is not None else {}
    blob = serialize({"format": FORMAT, "state": state, **bound})
    atomic_write(path, lambda fh: fh.write(blob), fsync=True, prefix=".ckpt-")


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


def load_checkpoint(path: str | os.PathLike, run: str | None = None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` without executing any code. With
    ``run`` (this run's :func:`config_hash`), a checkpoint bound to another run is a
    :class:`CheckpointError`; one without a hash (written before the binding) or hashed in an
    older layout of the configuration is accepted."""
    from .results import SCHEMA_VERSION
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:        # a regular file (a FIFO would block), never through a link (RunDirError)
        fh = open_binary(path)
    except FileKindError as exc:
        raise CheckpointError(f"checkpoint {path} is {exc}") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable: {exc.strerror}") from None
    try:
        with fh:
            blob = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, disallowed global, bad magic...
        raise CheckpointError(f"checkpoint {path} is corrupt or unsafe: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {FORMAT} file")
    stored = blob.get("run")
    if run is not None and stored is not None and stored != run \
            and blob.get("schema_version") == SCHEMA_VERSION:
        raise CheckpointError(f"checkpoint {path} belongs to another run: it was written for "
                              "another configuration than this run's config.json; move it "
                              "away to restart that part of the run")
    return blob["state"]
