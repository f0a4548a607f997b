"""GPU assignment without a shared scheduler (issue 7 item 2): the processes of one host claim
distinct slots with per-host lock files; device = ``cuda:(slot mod G)``; no CUDA at import.

Real processes (spawned: this one has torch's threads, which fork() must not copy) race for
slots; one is SIGKILLed and its slot is free again at once (the kernel drops ``flock`` locks of
dead processes). The ``python -m scoop -n 2`` case is in ``tests/test_scale.py``.
"""
import multiprocessing as mp
import os
import signal
import subprocess
import sys

import pytest
import torch

from deapnn import runtime
from deapnn.runtime import (assign_gpu, claim_slot, get_device, release_slot, set_device,
                            slot_directory, worker_slot)


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    for var in ("DEAPNN_WORKER_SLOT", "SCOOP_WORKER_SLOT", "DEAPNN_DEVICE", "DEAPNN_FAKE_GPUS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DEAPNN_SLOT_DIR", str(tmp_path / "slots"))
    release_slot()
    set_device(None)
    yield
    release_slot()
    set_device(None)
    os.environ.pop("DEAPNN_DEVICE", None)


def _holder(directory, barrier, out):
    """Child process: claim a slot, report it, hold it until killed."""
    import time
    barrier.wait()                   # all children race for slots at the same moment
    out.put((os.getpid(), claim_slot(directory)))
    while True:
        time.sleep(1)


def _stop(procs):
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
        p.join(10)


def _start_holders(n, directory, ctx):
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_holder, args=(directory, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=120) for _ in range(n))
    return procs, got


def test_concurrent_processes_claim_distinct_lowest_slots(tmp_path):
    ctx = mp.get_context("spawn")
    directory = str(tmp_path / "host")
    procs, got = _start_holders(4, directory, ctx)
    try:
        assert sorted(got.values()) == [0, 1, 2, 3]
        assert sorted(assign_gpu(s, 2) for s in got.values()) == [0, 0, 1, 1]
        # SIGKILL the holder of slot 1: its claim vanishes with it, the next process gets 1
        victim = next(p for p in procs if got[p.pid] == 1)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        assert claim_slot(directory) == 1
        release_slot()
        more, got2 = _start_holders(1, directory, ctx)
        procs += more
        assert list(got2.values()) == [1]
    finally:
        _stop(procs)
    # everyone gone: slot 0 is free again
    assert claim_slot(directory) == 0


def test_claim_is_held_for_the_process_lifetime(tmp_path):
    d = str(tmp_path / "h")
    assert claim_slot(d) == 0
    assert claim_slot(d) == 0                  # idempotent: the same slot, no second claim
    out = subprocess.run([sys.executable, "-c", "from deapnn.runtime import claim_slot; "
                          f"print(claim_slot({d!r}))"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)
    assert out.stdout.strip() == "1", out.stderr
    release_slot()
    assert claim_slot(d) == 0


def test_slot_directory_is_per_user_and_host(monkeypatch, tmp_path):
    monkeypatch.delenv("DEAPNN_SLOT_DIR")
    monkeypatch.delenv("DEAPNN_SLOT_KEY", raising=False)
    import socket
    d = slot_directory()
    assert f"deapnn-slots-{os.getuid()}" in d and d.endswith(socket.gethostname().replace("/", "_"))
    monkeypatch.setenv("DEAPNN_SLOT_KEY", "run/42")
    assert slot_directory().endswith("run_42")


def test_worker_slot_claims_only_under_scoop(monkeypatch, tmp_path):
    assert worker_slot() == 0
    assert not os.path.exists(tmp_path / "slots")        # nothing claimed outside SCOOP
    monkeypatch.setattr(runtime, "running_under_scoop", lambda: True)
    assert worker_slot() == 0 and os.path.exists(tmp_path / "slots")
    monkeypatch.setenv("DEAPNN_WORKER_SLOT", "5")            # an explicit slot wins
    assert worker_slot() == 5


def test_auto_device_is_claimed_slot_mod_simulated_gpu_count(monkeypatch, tmp_path):
    ctx = mp.get_context("spawn")
    procs, got = _start_holders(3, slot_directory(), ctx)
    try:
        assert sorted(got.values()) == [0, 1, 2]
        monkeypatch.setattr(runtime, "running_under_scoop", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setenv("DEAPNN_FAKE_GPUS", "2")
        monkeypatch.setenv("DEAPNN_THREADS", "1")
        set_device("auto")
        assert get_device() == torch.device("cuda", 3 % 2)   # 4th process on the host: slot 3
        assert torch.get_num_threads() == 1
    finally:
        _stop(procs)


def test_cpu_only_host_gives_cpu_without_claiming(monkeypatch, tmp_path):
    monkeypatch.setattr(runtime, "running_under_scoop", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("DEAPNN_FAKE_GPUS", "4")
    set_device("auto")
    assert get_device() == torch.device("cpu")
    assert not os.path.exists(tmp_path / "slots")


def test_import_touches_no_cuda():
    code = ("import torch, deapnn.runtime, deapnn.failsafe, deapnn.cli, deapnn.gls, "
            "deapnn.nlfs, deapnn.evomal.run, deapnn.commands.scoop_entry; "
            "print(torch.cuda.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
