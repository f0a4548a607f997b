"""What a run ran on: ``environment.json`` in every run directory (issue 24;
``docs/concepts/rundirs.rst``, "Environment").

Every command that runs in a run directory records there, holding its lock, what the run's
numbers depend on (:func:`collect`: versions, git commit, CPU model and the instruction set
torch uses, GPU, threads, deterministic settings, hosts). ``--resume`` on a machine whose
:data:`RELEVANT` fields differ from the run's start says so in one ``deapnn: warning:`` line
naming each with both values, and goes on (its results are then not bit-identical to an
uninterrupted run's); the file keeps the start's environment and one entry per change under
``"resumes"``. ``deapnn report`` shows it. ``schema_version`` is the run directory's
(:data:`deapnn.results.SCHEMA_VERSION`: a layout change is a step of
:data:`deapnn.results.MIGRATIONS`). Collecting takes milliseconds (no subprocess) and touches
CUDA only when the run's device is a CUDA device.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .results import SCHEMA_VERSION

#: the run directory's file (written atomically, read through :mod:`deapnn.safefs`)
ENVIRONMENT_FILE = "environment.json"
#: the fields that change a run's numbers (a resume where one differs from the start warns);
#: hosts, the checkout's commit, deap / scoop / torchvision, workers and times do not
RELEVANT = ("deapnn", "python", "torch", "numpy", "cpu", "cpu_capability", "threads", "gpu",
            "cuda", "cudnn", "deterministic_algorithms", "cudnn_deterministic",
            "cudnn_benchmark")
#: fields that describe the record, not the machine (never compared)
_BOOKKEEPING = ("schema_version", "recorded", "recorded_at", "resumes")
#: the most ``"resumes"`` entries kept (the latest)
MAX_RESUMES = 100


def _first(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read(4096).strip()


def git_commit(root: str | None = None) -> str | None:
    """The commit checked out at ``root`` (default: the directory holding the ``deapnn``
    package) when it is a git checkout, read from ``.git`` directly; None otherwise."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        git = os.path.join(root, ".git")
        if os.path.isfile(git):                       # a worktree: "gitdir: PATH"
            git = os.path.join(root, _first(git).removeprefix("gitdir:").strip())
        head, common = _first(os.path.join(git, "HEAD")), git
        if os.path.isfile(os.path.join(git, "commondir")):
            common = os.path.join(git, _first(os.path.join(git, "commondir")))
        if head.startswith("ref:"):
            ref = head[4:].strip()
            found = [p for p in (os.path.join(git, ref), os.path.join(common, ref))
                     if os.path.isfile(p)]
            if found:
                head = _first(found[0])
            else:
                with open(os.path.join(common, "packed-refs"), encoding="utf-8") as fh:
                    head = next((line.split()[0] for line in fh
                                 if line.rstrip().endswith(" " + ref)), "")
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return head if re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", head) else None


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip() or None
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine() or None


def _version(package: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _nvidia_driver() -> str | None:
    """The NVIDIA kernel driver's version (Linux, ``/proc/driver/nvidia/version``), or None."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as fh:
            found = re.search(r"Kernel Module\s+(\S+)", fh.read(4096))
    except OSError:
        return None
    return found.group(1) if found else None


def _gpu(device: Any) -> dict:
    """The GPU fields of ``device`` (a CUDA device: probed now; anything else: None each)."""
    gpu: dict[str, Any] = {"gpu": None, "gpu_capability": None, "cuda": None, "cudnn": None,
                           "gpu_driver": None}
    if getattr(device, "type", None) != "cuda":
        return gpu
    import torch
    try:
        props = torch.cuda.get_device_properties(device)
        gpu.update(gpu=props.name, gpu_capability=f"{props.major}.{props.minor}",
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   gpu_driver=_nvidia_driver())
    except (RuntimeError, AssertionError, ValueError) as exc:   # no such device here
        gpu["gpu"] = f"unknown ({type(exc).__name__})"
    return gpu


def run_device() -> Any:
    """The device this process evaluates on (:func:`deapnn.runtime.get_device`); the device
    asked for (a string) when it cannot be had here (the runner then says why)."""
    from .runtime import _REQUESTED, _env_device, get_device
    try:
        return get_device()
    except (RuntimeError, ValueError):
        return _REQUESTED or _env_device() or "auto"


def collect(device: Any = None, *, hosts: list[str] | None = None,
            workers: int | None = None) -> dict:
    """The environment of this process: ``device`` (default :func:`run_device`), ``hosts``
    (the SCOOP hosts of ``--hostfile``), ``workers`` (``--workers``)."""
    import numpy
    import torch
    import deapnn
    device = run_device() if device is None else device
    uname = os.uname() if hasattr(os, "uname") else None
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return {
        "schema_version": SCHEMA_VERSION, "recorded": "start",
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "deapnn": deapnn.__version__, "git_commit": git_commit(),
        "python": ".".join(map(str, sys.version_info[:3])), "torch": torch.__version__,
        "torchvision": _version("torchvision"), "numpy": numpy.__version__,
        "deap": _version("deap"), "scoop": _version("scoop"),
        "os": f"{uname.sysname} {uname.release} {uname.machine}" if uname else sys.platform,
        "cpu": cpu_model(), "cpu_capability": capability() if capability else None,
        "threads": torch.get_num_threads(), "device": str(device), **_gpu(device),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "hostname": socket.gethostname(), "hosts": hosts, "workers": workers,
    }


def check_record(data: dict) -> dict:
    """``data`` if it is an environment record this deapnn reads (its ``schema_version`` a
    version up to :data:`~deapnn.results.SCHEMA_VERSION`, ``resumes`` a list of objects);
    else ``ValueError`` saying what does not fit."""
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"without a schema_version (found {short(version)}): not a file "
                         "deapnn writes")
    if version > SCHEMA_VERSION:
        raise ValueError(f"of schema version {version}, newer than this deapnn's "
                         f"{SCHEMA_VERSION}: a newer deapnn wrote it")
    resumes = data.get("resumes", [])
    if not isinstance(resumes, list) or not all(isinstance(r, dict) for r in resumes):
        raise ValueError("holding resumes that are not a list of objects")
    return data


def read_environment(run_dir: str) -> dict | None:
    """The ``environment.json`` of ``run_dir`` (None when it has none); ``ValueError`` saying
    why a file that is there cannot be used (not a regular file, too large, not JSON, not an
    object, :func:`check_record`)."""
    from .rundir import read_json_object
    path = os.path.join(run_dir, ENVIRONMENT_FILE)
    if not os.path.lexists(path):
        return None
    return check_record(read_json_object(path))


def differences(stored: dict, current: dict,
                fields: Sequence[str] = RELEVANT) -> list[tuple[str, Any, Any]]:
    """``(field, stored value, current value)`` of each of ``fields`` whose values differ."""
    return [(f, stored.get(f), current.get(f)) for f in fields
            if stored.get(f) != current.get(f)]


def short(value: Any, limit: int | None = 60) -> str:
    """A value of a record on one line of at most ``limit`` characters (a tampered file cannot
    break the line, nor a path that is not UTF-8 the stream)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", "?", text)
    text = text if limit is None or len(text) <= limit else text[:limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def record(rundir: Any, *, resumed: bool, current: dict | None = None) -> dict:
    """Record ``current`` (default :func:`collect`'s) in ``rundir`` (a
    :class:`~deapnn.rundir.RunDir` whose lock this process holds), as a fresh run or, when
    ``resumed``, compared with the stored record: :data:`RELEVANT` fields that differ are one
    warning line on stderr, a change of any other field but the bookkeeping ones an entry under
    ``"resumes"``; written when the run has none. An unusable stored file is a
    :class:`~deapnn.rundir.RunDirError`. Returns what the file holds."""
    from .rundir import RunDirError
    current = collect() if current is None else current
    try:
        stored = read_environment(rundir.path) if resumed else None
    except ValueError as exc:
        raise RunDirError(f"cannot resume {rundir.path}: {ENVIRONMENT_FILE} is {exc}; move it "
                          "away to resume (this machine's environment is recorded then)") from None
    if stored is None:
        data = {**current, "recorded": "resume" if resumed else "start"}
        rundir.write_json(ENVIRONMENT_FILE, data)
        return data
    changed = differences(stored, current, RELEVANT)
    if changed:
        shown = ", ".join(f"{f} {short(b)} (started on {short(a)})" for f, a, b in changed)
        print(f"deapnn: warning: {short(rundir.path, None)} continues on another environment "
              f"than it started on: {shown}; its results will not be bit-identical to an "
              "uninterrupted run's", file=sys.stderr, flush=True)
    fields = [k for k in current if k not in _BOOKKEEPING]
    entry = {k: current[k] for k, _, _ in differences(stored, current, fields)}
    resumes = stored.get("resumes", [])
    last = {**stored, **(resumes[-1] if resumes else {})}
    if differences(last, current, fields):     # entry {}: back on the start's environment
        resumes = [*resumes, {"resumed_at": current["recorded_at"], **entry}][-MAX_RESUMES:]
        stored = {**stored, "resumes": resumes}
        rundir.write_json(ENVIRONMENT_FILE, stored)
    return stored


__all__ = ["ENVIRONMENT_FILE", "RELEVANT", "collect", "record", "read_environment",
           "check_record", "differences", "git_commit", "cpu_model", "run_device", "short"]
