"""Run directories shared by every command: ``config.json``, ``logbook.csv``, weights, plots,
``results.json`` and an atomic checkpoint that ``--resume DIR`` continues from. ``config.json``
and ``results.json`` carry a schema version; an older run directory is read through the one
migration table (:mod:`deapnn.results`)."""
from __future__ import annotations

import csv
import json
import os
import tempfile

from .checkpoint import load_checkpoint, save_checkpoint, serialize, write_error
from .results import LEGACY_RESULTS_FILE, RESULTS_FILE, SCHEMA_VERSION, migrate, stored_version


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
            if os.path.lexists(self.file(self.CONFIG)):
                raise RunDirError(f"{self.path} already holds a run; use --resume {self.path} "
                                  "to continue it or choose another --out")
            if os.path.isdir(self.path) and os.listdir(self.path):
                raise RunDirError(f"{self.path} is not empty and holds no deapnn run: nothing "
                                  "there is overwritten; choose a new or empty --out")
            if os.path.lexists(self.path) and not os.path.isdir(self.path):
                raise RunDirError(f"{self.path} exists and is not a directory")
            os.makedirs(self.path, exist_ok=True)
            self.write_json(self.CONFIG, self.config)
        else:
            check_no_links(self.path)

    @classmethod
    def resume(cls, path: str | os.PathLike) -> RunDir:
        """Reopen the run in ``path`` with its stored ``config.json``, in the current layout
        (an older one is migrated, :func:`deapnn.results.migrate`; the file is left as it is);
        a directory with a symbolic link in it, or without a readable run configuration of a
        known version, raises :class:`RunDirError`."""
        path = os.fspath(path)
        cfg_file = os.path.join(path, cls.CONFIG)
        check_no_links(path)
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
        """A directory for a part of a run (e.g. one arm × seed), without a config of its own."""
        os.makedirs(path, exist_ok=True)
        check_no_links(path)
        return cls(path, {}, _resuming=True)

    def file(self, name: str) -> str:
        """The path of the run's file ``name``."""
        return os.path.join(self.path, name)

    # --- state -----------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        """Whether the run has written a checkpoint."""
        return os.path.exists(self.file(self.CHECKPOINT))

    def save_checkpoint(self, state: dict) -> None:
        """Write ``state`` as the run's checkpoint, atomically
        (:func:`deapnn.checkpoint.save_checkpoint`)."""
        save_checkpoint(self.file(self.CHECKPOINT), state)

    def load_checkpoint(self) -> dict | None:
        """The run's checkpoint, read with the safe loader, or ``None`` when there is none."""
        return load_checkpoint(self.file(self.CHECKPOINT)) if self.has_checkpoint() else None

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
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:   # RecursionError: absurd nesting
        raise ValueError(f"unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def check_no_links(path: str | os.PathLike) -> None:
    """Refuse a run directory that holds a symbolic link anywhere below it: deapnn never creates
    one, and a link planted in a shared run directory would make a later write (or a resumed
    read) reach a file outside it. The directory given itself may be a link (a user's path)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            entry = os.path.join(root, name)
            if os.path.islink(entry):
                raise RunDirError(f"{entry} is a symbolic link: a run directory must hold none "
                                  "(deapnn never writes through links); remove it")


def open_lock(path: str | os.PathLike) -> int:
    """A file descriptor on the lock file ``path``, created if absent, never through a link."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError:
        if os.path.islink(path):
            raise RunDirError(f"{path} is a symbolic link: a run directory must hold none; "
                              "remove it") from None
        raise


def atomic_write(target: str, write, mode: str = "wb") -> str:
    """Write ``target`` through ``write(file)`` into a uniquely named temporary file in the same
    directory, then rename it over ``target``: readers and concurrent writers of the same file
    (e.g. a duplicated job) only ever see a complete version."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}-",
                                   dir=os.path.dirname(target) or ".")
    except OSError as exc:
        raise write_error(exc, target) from None
    try:
        text = {"newline": "", "encoding": "utf-8"} if "b" not in mode else {}
        with os.fdopen(fd, mode, **text) as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):   # disk full, read-only, size limit: name the file
            raise write_error(exc, target) from None
        raise
    return target


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
    """Read a ``logbook.csv`` back as a list of dicts with numbers parsed."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            if None in row:      # csv.DictReader's key of the values beyond the header
                raise ValueError(f"line {reader.line_num} has more fields than the header")
            rows.append({k: _parse(v) for k, v in row.items()})
    return rows


def _parse(text: str | None):
    if text is None or text == "":       # None: a row shorter than the header
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
