"""Run directories shared by every command: ``config.json``, ``logbook.csv``, weights, plots,
``results.json`` and an atomic checkpoint that ``--resume DIR`` continues from. ``config.json``
and ``results.json`` carry a schema version; an older run directory is read through the one
migration table (:mod:`deapnn.results`)."""
from __future__ import annotations

import csv
import fcntl
import json
import os
import socket
import stat
from contextlib import contextmanager

from .checkpoint import config_hash, load_checkpoint, save_checkpoint, serialize
from .results import LEGACY_RESULTS_FILE, RESULTS_FILE, SCHEMA_VERSION, migrate, stored_version
from .safefs import (MAX_JSON_BYTES, MAX_LOGBOOK_BYTES, FileKindError, atomic_write, guard,
                     link_error, make_dirs, open_dir, open_text, read_text)


class RunDirError(RuntimeError):
    """A run directory that cannot be created or resumed as asked."""


class RunDir:
    """A run's directory.

    ``RunDir(path, config)`` starts a fresh run (refusing a directory that already holds a
    run's ``config.json``, so nothing is overwritten by accident); ``RunDir.resume(path)``
    reopens one and restores its stored configuration. ``version``: the schema version of the
    stored ``config.json`` (:data:`deapnn.results.SCHEMA_VERSION` for a fresh run).
    """

    CONFIG, LOGBOOK, CHECKPOINT = "config.json", "logbook.csv", "checkpoint.pt"

    def __init__(self, path: str | os.PathLike, config: dict, *, _resuming: bool = False,
                 _version: int = SCHEMA_VERSION):
        self.path = os.fspath(path)
        self.config = dict(config)
        self.version = _version
        if not self.path:
            raise RunDirError("the run directory must not be an empty path")
        if not _resuming:
            if _is_link(self.path):
                raise _run_dir_link(self.path)
            if os.path.lexists(self.file(self.CONFIG)):
                raise RunDirError(f"{self.path} already holds a run; use --resume {self.path} "
                                  "to continue it or choose another --out")
            if os.path.isdir(self.path) and os.listdir(self.path):
                raise RunDirError(f"{self.path} is not empty and holds no deapnn run: nothing "
                                  "there is overwritten; choose a new or empty --out")
            if os.path.lexists(self.path) and not os.path.isdir(self.path):
                raise RunDirError(f"{self.path} exists and is not a directory")
            _make_run_dir(self.path)
            self.write_json(self.CONFIG, self.config)
        else:
            check_no_links(self.path)
            guard(self.path)

    @classmethod
    def resume(cls, path: str | os.PathLike) -> RunDir:
        """Reopen the run in ``path`` with its stored ``config.json``, in the current layout
        (an older one is migrated, :func:`deapnn.results.migrate`; the file is left as it is);
        a directory that is or holds a symbolic link, or without a readable run configuration
        of a known version, raises :class:`RunDirError`."""
        path = os.fspath(path)
        cfg_file = os.path.join(path, cls.CONFIG)
        check_no_links(path)
        guard(path)
        if not os.path.exists(cfg_file):
            raise RunDirError(f"cannot resume {path}: no {cls.CONFIG} there")
        try:
            config = read_json_object(cfg_file)
        except ValueError as exc:
            raise RunDirError(f"cannot resume {path}: {cls.CONFIG} is {exc}") from None
        try:
            version = stored_version(config)
        except ValueError as exc:
            raise RunDirError(f"cannot resume {path}: {exc}") from None
        return cls(path, migrate({cls.CONFIG: config})[cls.CONFIG], _resuming=True,
                   _version=version)

    @classmethod
    def create(cls, path: str | os.PathLike, command: str, config, **extra) -> RunDir:
        """Start a fresh ``command`` run in ``path``; ``config.json`` is the one layout every
        command writes: ``{"command": command, "config": config.to_dict(), "schema_version":
        SCHEMA_VERSION, **extra}`` (``extra``: facts of this invocation that do not define the
        run, e.g. the device asked for)."""
        return cls(path, {"command": command, "config": config.to_dict(),
                          "schema_version": SCHEMA_VERSION, **extra})

    def stored(self, command: str, cls):
        """The stored configuration of a ``command`` run as ``cls`` (a
        :class:`deapnn.config.Config`, validated); a directory of another run type or a
        config.json that does not fit raises :class:`RunDirError`."""
        if self.config.get("command") != command:
            raise RunDirError(f"cannot resume {self.path}: it holds a "
                              f"{self.config.get('command')!r} run, not {command}")
        try:
            if "config" not in self.config:
                raise ValueError("no configuration block")
            return cls.from_dict(self.config["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"cannot resume {self.path}: its config.json is not a valid "
                              f"{command} configuration ({exc})") from None

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """A directory for a part of a run (e.g. one arm × seed), without a config of its own;
        below a run directory opened before (a guarded root, :func:`deapnn.safefs.guard`) it is
        created without following links."""
        make_dirs(path)
        check_no_links(path)
        return cls(path, {}, _resuming=True)

    def file(self, name: str) -> str:
        """The path of the run's file ``name``."""
        return os.path.join(self.path, name)

    # --- state -----------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        """Whether the run has written a checkpoint."""
        return os.path.exists(self.file(self.CHECKPOINT))

    def identity(self) -> str | None:
        """The run's :func:`deapnn.checkpoint.config_hash` (None for a directory without a
        configuration block, e.g. a part of a run): its checkpoint is bound to it."""
        block = self.config.get("config")
        return config_hash(self.config.get("command"), block) if isinstance(block, dict) \
            else None

    def save_checkpoint(self, state: dict) -> None:
        """Write ``state`` as the run's checkpoint, atomically, bound to this run
        (:func:`deapnn.checkpoint.save_checkpoint`)."""
        save_checkpoint(self.file(self.CHECKPOINT), state, run=self.identity())

    def load_checkpoint(self) -> dict | None:
        """The run's checkpoint, read with the safe loader, or ``None`` when there is none; a
        checkpoint bound to another run is a :class:`~deapnn.checkpoint.CheckpointError`."""
        if not self.has_checkpoint():
            return None
        return load_checkpoint(self.file(self.CHECKPOINT), run=self.identity())

    @contextmanager
    def locked(self):
        """Hold the run directory's lock inside this block (:func:`lock_directory`): every
        command that runs in a run directory (a fresh run, ``--resume``, ``deapnn compare``)
        holds it, so a second process is refused with :class:`RunDirInUse`."""
        fd = lock_directory(self.path)
        try:
            yield self
        finally:
            os.close(fd)

    def save_weights(self, state_dict: dict, name: str = "best_model.pt") -> str:
        """Save model weights (CPU tensors) atomically; load with
        ``torch.load(weights_only=True)``."""
        return save_weights(self.file(name), state_dict)

    def write_results(self, summary) -> str:
        """Write ``summary.to_dict()`` (a :class:`deapnn.results.Summary`) as the run's
        ``results.json``; return its path. A resumed run directory of an older version is left
        in the current layout: its ``config.json`` rewritten as migrated, a version-0
        ``result.json`` removed."""
        path = self.write_json(RESULTS_FILE, summary.to_dict())
        if self.version < SCHEMA_VERSION:
            self.write_json(self.CONFIG, self.config)
            if os.path.exists(self.file(LEGACY_RESULTS_FILE)):
                os.unlink(self.file(LEGACY_RESULTS_FILE))
            self.version = SCHEMA_VERSION
        return path

    # --- text outputs ------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> str:
        """Write ``text`` to the run's file ``name`` atomically; return its path."""
        return atomic_write(self.file(name), lambda fh: fh.write(text), mode="w")

    def write_json(self, name: str, obj) -> str:
        """Write ``obj`` as indented, key-sorted JSON to the run's file ``name`` atomically;
        return its path."""
        def write(fh):
            json.dump(obj, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
        return atomic_write(self.file(name), write, mode="w")

    def write_logbook(self, records, name: str | None = None) -> str:
        """Write a list of dicts (or a DEAP ``Logbook``) as CSV; columns are the union of keys."""
        rows = [dict(r) for r in records]
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        def write(fh):
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
        return atomic_write(self.file(name or self.LOGBOOK), write, mode="w")


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file that holds one object; ``ValueError`` saying why when it is unreadable, not
    JSON or not an object (``"unreadable (...)"`` / ``"not a JSON object"``)."""
    try:      # a regular file of bounded size, never through a link (deapnn.safefs)
        data = json.loads(read_text(path, MAX_JSON_BYTES))
    except FileKindError as exc:
        raise ValueError(str(exc)) from None
    except (OSError, ValueError, RecursionError) as exc:   # RecursionError: absurd nesting
        raise ValueError(f"unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def check_no_links(path: str | os.PathLike) -> None:
    """Refuse a run directory that is a symbolic link or holds one anywhere below it: deapnn
    never creates one, and a link planted in a shared run directory would make a later write (or
    a resumed read) reach a file outside it. (Directories above it may be links: a user's
    path.)"""
    path = os.fspath(path)
    if _is_link(path):
        raise _run_dir_link(path)
    if not os.path.isdir(path):
        return
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            entry = os.path.join(root, name)
            if os.path.islink(entry):
                raise link_error(entry)


def _is_link(path: str) -> bool:
    """Whether the directory named ``path`` is a link (``DIR/`` too: a trailing slash would
    make ``islink`` look through it)."""
    return os.path.islink(os.path.normpath(path))


def _run_dir_link(path: str) -> RunDirError:
    return RunDirError(f"{path} is a symbolic link: a run directory must not be one (deapnn "
                       f"never writes through links); give the directory itself, "
                       f"{os.path.realpath(path)}")


def refuse_run_dir_link(path: str) -> None:
    """Raise :class:`RunDirError` when the run directory ``path`` is itself a symbolic link."""
    if _is_link(path):
        raise _run_dir_link(path)


def _make_run_dir(path: str) -> None:
    """Create the fresh run directory ``path`` (its parents as needed), never through a link
    (one planted meanwhile is refused), and guard it (:func:`deapnn.safefs.guard`)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    if _is_link(path):
        raise _run_dir_link(path)
    guard(path)


def open_lock(path: str | os.PathLike) -> int:
    """A file descriptor on the lock file ``path``, created if absent, never through a link
    and only on a regular file (a planted FIFO or device is refused, not opened for good);
    below a run directory, its directory is reached without following links
    (:func:`deapnn.safefs.open_dir`)."""
    directory, name = os.path.split(os.fspath(path))
    dir_fd = open_dir(directory or ".")
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, 0o644, dir_fd=dir_fd)
    except OSError:
        if os.path.islink(path):
            raise link_error(os.fspath(path)) from None
        raise
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RunDirError(f"{path} is not a regular file: deapnn's lock file is one; remove it")
    return fd


#: the lock file of a run directory (and of a GLS job's directory)
LOCK_FILE = ".lock"


class RunDirInUse(RunDirError):
    """A run directory whose lock another process holds."""


def lock_directory(path: str | os.PathLike, *, wait: bool = False) -> int:
    """Take the lock of the directory ``path``: an exclusive ``flock`` on its
    :data:`LOCK_FILE`, which then holds this process's id and host; return its file
    descriptor (closing it, or the process ending however it ends, releases the lock). The one
    lock rule of every command: a process running in a run directory holds its lock, and a
    second one is refused (:class:`RunDirInUse`: ``run directory X is in use by pid N``);
    ``wait``: wait for the holder instead (a GLS job resent by SCOOP waits for its first
    copy)."""
    path = os.fspath(path)
    fd = open_lock(os.path.join(path, LOCK_FILE))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
        os.close(fd)
        pid = holder[0] if holder and holder[0].isdigit() else "?"
        host = f" on {holder[1]}" if len(holder) > 1 and holder[1] != socket.gethostname() \
            else ""
        raise RunDirInUse(f"run directory {path} is in use by pid {pid}{host} (another deapnn "
                          "process runs in it); wait until it ends") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    return fd


def save_weights(target: str, state_dict: dict) -> str:
    """Atomically save a model's weights as CPU tensors (load with ``weights_only=True``)."""
    weights = {k: v.detach().cpu() for k, v in state_dict.items()}
    blob = serialize(weights)       # bytes first: a failed write raises its real OSError
    return atomic_write(target, lambda fh: fh.write(blob))


def _cell(value):
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def read_logbook(path: str | os.PathLike) -> list[dict]:
    """Read a ``logbook.csv`` back as a list of dicts with numbers parsed
    (:func:`iter_logbook`)."""
    return list(iter_logbook(path))


def iter_logbook(path: str | os.PathLike):
    """The rows of a ``logbook.csv`` as dicts with numbers parsed, streamed: a regular file of
    at most :data:`deapnn.safefs.MAX_LOGBOOK_BYTES`, never through a link
    (:func:`deapnn.safefs.open_regular`); ``ValueError`` naming the line of a row with more
    fields than the header or a NUL byte (a logbook deapnn writes holds none), or a
    :class:`~deapnn.safefs.FileKindError` (a ``ValueError``) for a file that is not a regular
    one or is too large."""
    with open_text(path, MAX_LOGBOOK_BYTES, newline="") as fh:
        reader = csv.DictReader(_text_lines(fh))
        for row in reader:
            if None in row:      # csv.DictReader's key of the values beyond the header
                raise ValueError(f"line {reader.line_num} has more fields than the header")
            yield {k: _parse(v) for k, v in row.items()}


def _text_lines(fh):
    for number, line in enumerate(fh, 1):
        if "\x00" in line:
            raise ValueError(f"line {number} holds a NUL byte (not a logbook deapnn writes)")
        yield line


def _parse(text: str | None):
    if text is None or text == "":       # None: a row shorter than the header
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
