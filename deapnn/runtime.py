"""Runtime: device choice, worker threads, seeding and the toolbox ``map``.

Nothing here touches CUDA at import time: the device is chosen lazily, per
worker process, the first time :func:`get_device` is called.
"""
from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch

_DEVICE: torch.device | None = None
_REQUESTED: str | None = None
VALID_DEVICES = ("auto", "cpu", "cuda")


def _env_device() -> str | None:
    return os.environ.get("DEAPNN_DEVICE") or None


def set_device(name: str | None) -> None:
    """Force the device for this process (``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``).

    The choice is also exported as ``DEAPNN_DEVICE`` so SCOOP workers spawned later inherit it.
    """
    global _DEVICE, _REQUESTED
    if name is not None:
        base = name.split(":")[0]
        if base not in VALID_DEVICES:
            raise ValueError(f"unknown device {name!r}; "
                             f"valid: {', '.join(VALID_DEVICES)} or cuda:N")
        os.environ["DEAPNN_DEVICE"] = name
    _REQUESTED = name
    _DEVICE = None


_SLOT: int | None = None          # slot claimed by this process (held for its lifetime)
_SLOT_FH = None                   # the open, flock-ed lock file that holds the claim


def slot_directory(key: str | None = None) -> str:
    """Where this host's slot lock files live: ``$DEAPNN_SLOT_DIR`` or
    ``<tmp>/deapnn-slots-<uid>``, then one sub-directory per ``key`` (``$DEAPNN_SLOT_KEY`` or the
    host name, so a temp directory shared over NFS still gives per-host slots)."""
    import socket
    import tempfile
    base = os.environ.get("DEAPNN_SLOT_DIR") or os.path.join(
        tempfile.gettempdir(), f"deapnn-slots-{os.getuid() if hasattr(os, 'getuid') else 0}")
    key = key or os.environ.get("DEAPNN_SLOT_KEY") or socket.gethostname() or "localhost"
    return os.path.join(base, "".join(c if c.isalnum() or c in "-_." else "_" for c in key))


def claim_slot(directory: str | None = None, max_slots: int = 4096) -> int:
    """Claim the lowest free slot of this host and hold it until the process exits.

    Slot ``i`` is an exclusive, non-blocking ``fcntl.flock`` on ``<directory>/slot<i>.lock``.
    The kernel drops the lock when the process ends, however it ends (SIGKILL included), so
    there is no stale claim to clean up and no shared scheduler is needed: the SCOOP workers of
    one host (of every run of this user on it) get distinct slots 0, 1, 2, … . Idempotent: a
    process claims once and keeps its slot. Without ``fcntl`` (Windows) the slot is 0.

    The lock directory lives in a temporary directory other users share, so it is private: made
    with mode 0700, and one (or the per-user ``deapnn-slots-<uid>`` above it) that is a
    symbolic link, belongs to another user or can be written by others is refused with a
    ``PermissionError`` naming it. Lock files are opened in it with ``O_NOFOLLOW`` (never
    through a link) and only when they are regular files.
    """
    global _SLOT, _SLOT_FH
    if _SLOT is not None:
        return _SLOT
    try:
        import fcntl
    except ImportError:                      # pragma: no cover - non-POSIX
        _SLOT = 0
        return _SLOT
    if directory is None:
        directory = slot_directory()
        os.close(_private_directory(os.path.dirname(directory)))     # deapnn-slots-<uid>
    dir_fd = _private_directory(directory)
    try:
        for i in range(max_slots):
            fd = _open_slot_file(f"slot{i}.lock", dir_fd, directory)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:                  # held by a live process: try the next slot
                os.close(fd)
                continue
            os.set_blocking(fd, True)
            fh = os.fdopen(fd, "r+")
            fh.truncate()
            fh.write(f"{os.getpid()}\n")      # for people looking at the directory
            fh.flush()
            _SLOT, _SLOT_FH = i, fh
            return i
    finally:
        os.close(dir_fd)
    raise RuntimeError(f"no free worker slot among {max_slots} in {directory}")


def _private_directory(path: str) -> int:
    """A descriptor on the directory ``path`` (made with mode 0700 when missing), opened
    without following a link; ``PermissionError`` naming it when it is a link, is not this
    user's or others can write in it."""
    import errno
    import stat
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    refuse = ("deapnn keeps its worker slot locks in a directory only you can write; remove "
              "it or set DEAPNN_SLOT_DIR to one")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        if os.path.islink(path):
            raise PermissionError(errno.EPERM, f"a symbolic link: {refuse}", path) from None
        raise
    info = os.fstat(fd)
    uid = os.geteuid()
    if info.st_uid != uid or info.st_mode & 0o022:
        os.close(fd)
        why = (f"owned by uid {info.st_uid}, not {uid}" if info.st_uid != uid
               else f"writable by others (mode {stat.S_IMODE(info.st_mode):o})")
        raise PermissionError(errno.EPERM, f"{why}: {refuse}", path)
    return fd


def _open_slot_file(name: str, dir_fd: int, directory: str) -> int:
    """``name`` in the lock directory, created if absent (mode 0600), never through a link and
    only a regular file (a planted FIFO is refused, not waited on)."""
    import errno
    import stat
    path = os.path.join(directory, name)
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PermissionError(errno.ELOOP, "a symbolic link, not a slot lock file; remove "
                                  "it", path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PermissionError(errno.EPERM, "not a regular file, not a slot lock file; remove "
                              "it", path)
    return fd


def release_slot() -> None:
    """Give this process's slot back (tests; a worker normally holds it until it exits)."""
    global _SLOT, _SLOT_FH
    if _SLOT_FH is not None:
        _SLOT_FH.close()                     # closing the file drops the flock
    _SLOT, _SLOT_FH = None, None


def worker_slot() -> int:
    """Index of this worker among the workers of its host.

    ``DEAPNN_WORKER_SLOT`` (or ``SCOOP_WORKER_SLOT``) when set; under SCOOP the slot this
    worker claims with :func:`claim_slot` (distinct per live worker on the host); 0 otherwise.
    """
    from .parallel import env_setting
    for var in ("DEAPNN_WORKER_SLOT", "SCOOP_WORKER_SLOT"):
        if env_setting(var) is not None:
            return env_setting(var)
    if running_under_scoop():
        return claim_slot()
    return 0


def cuda_device_count() -> int:
    """Number of visible CUDA devices (``DEAPNN_FAKE_GPUS`` simulates a count for tests)."""
    from .parallel import env_setting
    fake = env_setting("DEAPNN_FAKE_GPUS")
    if fake is not None:
        return fake
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def assign_gpu(slot: int, n_gpus: int) -> int | None:
    """GPU index claimed by worker ``slot`` on a host with ``n_gpus`` GPUs (slot mod G), or None."""
    return None if n_gpus <= 0 else slot % n_gpus


def get_device() -> torch.device:
    """The device evaluations on this worker run on, chosen once, lazily.

    ``auto`` (default): ``cuda:<slot mod G>`` when CUDA is available, where ``slot`` is this
    worker's claimed slot on its host (:func:`worker_slot`) and ``G`` the visible GPU count;
    else CPU (with one torch thread per SCOOP worker).
    """
    global _DEVICE
    if _DEVICE is None:
        if running_under_scoop():
            # SCOOP workers share their host: one torch thread each unless DEAPNN_THREADS says
            # otherwise (workers never run the command's own thread setup).
            configure_worker_threads()
        req = _REQUESTED or _env_device() or "auto"
        if req == "auto":
            gpu = (assign_gpu(worker_slot(), cuda_device_count()) if torch.cuda.is_available()
                   else None)
            _DEVICE = torch.device("cpu") if gpu is None else torch.device("cuda", gpu)
        elif req == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("--device cuda requested but CUDA is not available on this host")
            _DEVICE = torch.device("cuda", assign_gpu(worker_slot(), cuda_device_count()) or 0)
        else:
            _DEVICE = torch.device(req)
    return _DEVICE


def running_under_scoop() -> bool:
    """True inside a program started with ``python -m scoop``."""
    try:
        import scoop
    except ImportError:
        return False
    return bool(getattr(scoop, "IS_RUNNING", False))


def configure_worker_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count for this worker.

    Under SCOOP several workers share a host, so each gets one thread unless ``n`` says otherwise.
    Returns the thread count in force.
    """
    if n is None:
        from .parallel import env_setting
        env = env_setting("DEAPNN_THREADS")
        n = env if env is not None else (1 if running_under_scoop() else torch.get_num_threads())
    if n != torch.get_num_threads():
        torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


#: batch-system variables from which SCOOP takes its host list instead of starting local workers
SCHEDULER_VARS = ("SLURM_NODELIST", "SLURM_JOB_NODELIST", "PBS_ENVIRONMENT", "PE_HOSTFILE")


def scoop_launch_env(env: dict | None = None, *, local: bool = True) -> dict:
    """Environment for starting ``python -m scoop`` from this checkout.

    The checkout goes first on ``PYTHONPATH`` (SCOOP forwards it to every worker, remote ones
    included, so they import this deapnn even where it is not installed) and the current
    directory last (:func:`deapnn.imports.search_path`: the user's ``--model`` or ``--dataset``
    module ``package.module:function`` is imported on every worker as here); with ``local`` the
    batch-system host lists are dropped, so SCOOP starts its workers on this host.
    """
    from .imports import search_path
    env = dict(os.environ if env is None else env)
    if local:
        for var in SCHEDULER_VARS:
            env.pop(var, None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH"), *search_path())
                                        if p)
    return env


def get_map():
    """The ``map`` for ``toolbox.register("map", ...)``: under ``python -m scoop`` a SCOOP map
    that survives a lost worker (:func:`deapnn.parallel.scoop_map`: the origin evaluates too,
    results in input order, a bound of ``--worker-timeout`` seconds on a worker that stopped
    answering), the builtin ``map`` otherwise."""
    if running_under_scoop():
        from .parallel import scoop_map
        return scoop_map()
    return map


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch from one integer (the same seed on CPU gives the same run)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(*parts) -> int:
    """A 63-bit seed derived from the run seed and an identity (e.g. generation, individual key).

    Evaluations seed themselves with ``derive_seed(run_seed, identity...)`` so their result does
    not depend on which worker runs them.
    """
    text = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def rng_state() -> dict:
    """Snapshot of python, numpy (legacy global) and torch CPU RNG states, safe for checkpoints."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
