"""The file operations every run directory goes through (docs/concepts/rundirs.rst).

A run directory may be shared (a cluster file system, a colleague's account), so its contents are
never trusted:

* **no symbolic link is followed below a run directory**, nor at the run directory itself. A run
  directory opened by deapnn is a *guarded root* (:func:`guard`); every path at or below it is
  reached from the root one directory at a time with ``O_NOFOLLOW|O_DIRECTORY``
  (:func:`open_dir`), so a link planted before or *during* a run (a GLS job directory that does
  not exist yet, ``gls/seed1 -> /victim``) is refused (:class:`~deapnn.rundir.RunDirError`
  naming it), never written through or read from;
* **only regular files are read** (:func:`open_regular`: ``O_NONBLOCK`` and an ``fstat`` check),
  so a FIFO or device planted as ``config.json`` or ``logbook.csv`` cannot block a reader; and a
  file read whole is **bounded in size** (:data:`MAX_JSON_BYTES`, :data:`MAX_LOGBOOK_BYTES`);
* **every file is written atomically** (:func:`atomic_write`): into a fresh temporary file
  (``O_CREAT|O_EXCL|O_NOFOLLOW``) renamed over the target, created with mode ``0666`` less the
  umask (the mode ``open()`` gives any new file, so a shared run directory stays readable to the
  colleagues the umask allows).

Paths outside every guarded root (the user's own ``--out FILE.md``, a loss library) are opened as
given.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat


#: the largest JSON file (``config.json``, ``results.json``, a job's ``result.json``, a state
#: file) deapnn reads: a run writes kilobytes, so a larger one is not a run's file
MAX_JSON_BYTES = 16 << 20
#: the largest ``logbook.csv`` deapnn reads (50 to 200 bytes a generation or epoch: 100,000
#: rows or more), which bounds the memory ``deapnn report`` takes (about 0.4 GB at the limit)
MAX_LOGBOOK_BYTES = 16 << 20

_ROOTS: set[str] = set()
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def guard(root: str | os.PathLike) -> str:
    """Make ``root`` (a run directory) a guarded root of this process: from now on no path at
    or below it is reached through a symbolic link (see the module). Returns its absolute path."""
    root = os.path.abspath(os.fspath(root))
    _ROOTS.add(root)
    return root


def guarded_root(path: str | os.PathLike) -> str | None:
    """The outermost guarded root that holds ``path`` (or is it), or None."""
    path = os.path.abspath(os.fspath(path))
    found = [r for r in _ROOTS if path == r or path.startswith(r.rstrip(os.sep) + os.sep)]
    return min(found, key=len) if found else None


def run_dir_error(message: str):
    """A :class:`deapnn.rundir.RunDirError` (one line, exit 2)."""
    from .rundir import RunDirError
    return RunDirError(message)


def link_error(path: str):
    """The :class:`~deapnn.rundir.RunDirError` of a symbolic link where a run directory holds
    none."""
    return run_dir_error(f"{path} is a symbolic link: a run directory must hold none (deapnn "
                         "never writes through links); remove it")


def _open_component(name: str, dir_fd, shown: str) -> int:
    """``open(name, O_DIRECTORY|O_NOFOLLOW)`` relative to ``dir_fd``; a link or a non-directory
    is a :class:`~deapnn.rundir.RunDirError` naming ``shown``."""
    try:
        return os.open(name, _DIR | _NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            mode = None
        if mode is not None and stat.S_ISLNK(mode):
            raise link_error(shown) from None
        if mode is not None and not stat.S_ISDIR(mode):
            raise run_dir_error(f"{shown} is not a directory: a run directory's part is "
                                "one; remove it") from None
        raise OSError(exc.errno, exc.strerror, shown) from None


def open_dir(path: str | os.PathLike, *, create: bool = False) -> int:
    """A descriptor on the directory ``path``. Below a guarded root it is reached from the root
    without following any link (the root itself included), ``create`` making the missing
    directories (mode 0777 less the umask); elsewhere ``path`` is opened as given (``create``:
    ``os.makedirs``)."""
    path = os.fspath(path) or "."
    root = guarded_root(path)
    if root is None:
        if create:
            os.makedirs(path, exist_ok=True)
        return os.open(path, _DIR)
    rel = os.path.relpath(os.path.abspath(path), root)
    fd = _open_component(root, None, root)
    shown = root
    try:
        for part in ([] if rel == "." else rel.split(os.sep)):
            shown = os.path.join(shown, part)
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            child = _open_component(part, fd, shown)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_dirs(path: str | os.PathLike) -> str:
    """Create the directory ``path`` and its missing parents, below a guarded root without
    following links (:func:`open_dir`); return ``path``."""
    os.close(open_dir(path, create=True))
    return os.fspath(path)


class FileKindError(ValueError):
    """A file of a run directory that is not one deapnn reads: not a regular file, or too large.
    The message is a predicate (``"not a regular file (a FIFO)"``) to follow the file's name."""


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def open_regular(path: str | os.PathLike, limit: int | None = None) -> int:
    """A read-only descriptor on the regular file ``path``: never through a symbolic link (at
    ``path`` or, below a guarded root, above it: :class:`~deapnn.rundir.RunDirError`), never
    on a FIFO, device, socket or directory (it would block or mislead the reader) nor on a file
    of more than ``limit`` bytes (:class:`FileKindError`); other failures are the ``OSError``
    of ``open``."""
    path = os.fspath(path)
    directory, name = os.path.split(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    dir_fd = open_dir(directory or ".") if guarded_root(path) is not None else None
    try:
        fd = os.open(name if dir_fd is not None else path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise link_error(path) from None
        raise
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((k for test, k in _KINDS if test(info.st_mode)), "a special file")
            raise FileKindError(f"not a regular file ({kind}); deapnn reads only the regular "
                                "files it writes")
        if limit is not None and info.st_size > limit:
            raise FileKindError(f"{info.st_size} bytes, over the {limit >> 20} MiB deapnn reads "
                                "for such a file; not a file of a run")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_text(path: str | os.PathLike, limit: int = MAX_JSON_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (:func:`open_regular`); a NUL byte (no file
    deapnn writes holds one) is a :class:`FileKindError`."""
    with os.fdopen(open_regular(path, limit), encoding="utf-8") as fh:
        text = fh.read(limit + 1)
    if "\x00" in text:
        raise FileKindError("not a text file deapnn writes (it holds a NUL byte)")
    return text


def open_text(path: str | os.PathLike, limit: int | None = None, **kwargs):
    """The regular file ``path`` opened for reading text (:func:`open_regular`), e.g. to stream
    a logbook's rows."""
    return os.fdopen(open_regular(path, limit), encoding="utf-8", **kwargs)


def open_binary(path: str | os.PathLike, limit: int | None = None):
    """The regular file ``path`` opened for reading bytes (:func:`open_regular`)."""
    return os.fdopen(open_regular(path, limit), "rb")


def atomic_write(target: str, write, mode: str = "wb", *, fsync: bool = False,
                 prefix: str | None = None) -> str:
    """Write ``target`` through ``write(file)`` into a fresh temporary file in the same
    directory (``prefix`` + random, ``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0666 less the umask),
    then rename it over ``target``: readers and concurrent writers of the same file (e.g. a
    duplicated job) only ever see a complete version, and a link at ``target`` is replaced,
    never followed. Below a guarded root the directory is reached without following links
    (:func:`open_dir`). ``fsync``: flush the file and the directory to disk first (checkpoints).
    An ``OSError`` names ``target``."""
    from .checkpoint import write_error
    directory, name = os.path.split(os.fspath(target))
    try:
        dir_fd = open_dir(directory or ".")
    except OSError as exc:
        raise write_error(exc, target) from None
    tmp = None
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        while tmp is None:
            candidate = f"{prefix or '.' + name + '-'}{secrets.token_hex(4)}"
            try:
                fd = os.open(candidate, flags, 0o666, dir_fd=dir_fd)
                tmp = candidate
            except FileExistsError:
                continue
        text = {"newline": "", "encoding": "utf-8"} if "b" not in mode else {}
        with os.fdopen(fd, mode, **text) as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
        if fsync:
            os.fsync(dir_fd)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
        if isinstance(exc, OSError):   # disk full, read-only, size limit: name the file
            raise write_error(exc, target) from None
        raise
    finally:
        os.close(dir_fd)
    return os.fspath(target)
