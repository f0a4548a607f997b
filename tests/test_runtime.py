"""deapnn.runtime: toolbox map, device choice, GPU assignment, threads, seeding and RNG state."""
import random

import numpy as np
import pytest
import torch

import deapnn.runtime as runtime
from deapnn.checkpoint import load_checkpoint, save_checkpoint
from deapnn.runtime import (assign_gpu, configure_worker_threads, derive_seed, get_device,
                            get_map, rng_state, running_under_scoop, seed_everything,
                            set_device, set_rng_state, worker_slot)

ENV = ("DEAPNN_DEVICE", "DEAPNN_FAKE_GPUS", "DEAPNN_WORKER_SLOT", "SCOOP_WORKER_SLOT",
       "DEAPNN_THREADS")


@pytest.fixture(autouse=True)
def _clean_runtime(monkeypatch):
    """Each test starts with no device chosen and none of the runtime's variables set, and
    leaves the process (os.environ included: set_device exports DEAPNN_DEVICE) as it found it."""
    import os
    saved = {var: os.environ.get(var) for var in ENV}
    for var in ENV:
        os.environ.pop(var, None)
    monkeypatch.setattr(runtime, "_DEVICE", None)
    monkeypatch.setattr(runtime, "_REQUESTED", None)
    yield
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


# --- map --------------------------------------------------------------------------------------

def test_get_map_is_builtin_map_outside_scoop():
    assert not running_under_scoop()
    assert get_map() is map
    assert list(get_map()(lambda v: v * 2, [1, 2, 3])) == [2, 4, 6]


def test_get_map_is_the_guarded_scoop_map_when_scoop_runs(monkeypatch):
    scoop = pytest.importorskip("scoop")
    from deapnn.parallel import ScoopMap
    monkeypatch.setattr(scoop, "IS_RUNNING", True, raising=False)
    assert running_under_scoop()
    assert isinstance(get_map(), ScoopMap) and get_map() is get_map()


# --- device -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["tpu", "gpu", "CUDA", "", "mps:0"])
def test_set_device_rejects_unknown_names(bad):
    with pytest.raises(ValueError) as err:
        set_device(bad)
    msg = str(err.value)
    assert repr(bad) in msg and "cpu" in msg and "cuda" in msg


def test_forced_cpu_device_is_used_and_exported():
    import os
    set_device("cpu")
    assert get_device() == torch.device("cpu")
    assert os.environ["DEAPNN_DEVICE"] == "cpu"          # inherited by SCOOP workers


def test_device_from_environment(monkeypatch):
    monkeypatch.setenv("DEAPNN_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_device_is_chosen_once_and_reset_by_set_device():
    set_device("cpu")
    first = get_device()
    assert get_device() is first
    set_device("auto")
    assert runtime._DEVICE is None


def test_auto_device_follows_cuda_availability():
    set_device("auto")
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a host without CUDA")
def test_cuda_request_without_cuda_is_a_clear_error():
    set_device("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device()


def test_auto_device_claims_gpu_slot_mod_count(monkeypatch):
    # Simulated host with 4 GPUs; worker slot 6 claims GPU 6 mod 4 = 2 (no CUDA call is made).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("DEAPNN_FAKE_GPUS", "4")
    monkeypatch.setenv("DEAPNN_WORKER_SLOT", "6")
    set_device("auto")
    assert get_device() == torch.device("cuda", 2)


@pytest.mark.parametrize("slot,gpus,expected", [
    (0, 1, 0), (3, 1, 0), (0, 4, 0), (5, 4, 1), (7, 4, 3), (8, 4, 0), (2, 0, None), (9, -1, None)])
def test_assign_gpu_is_slot_mod_count(slot, gpus, expected):
    assert assign_gpu(slot, gpus) == expected


def test_distinct_slots_on_a_host_get_distinct_gpus():
    assert sorted(assign_gpu(s, 4) for s in range(4)) == [0, 1, 2, 3]


def test_worker_slot_from_environment(monkeypatch):
    assert worker_slot() == 0
    monkeypatch.setenv("SCOOP_WORKER_SLOT", "3")
    assert worker_slot() == 3
    monkeypatch.setenv("DEAPNN_WORKER_SLOT", "5")          # deapnn's own variable wins
    assert worker_slot() == 5


# --- threads ----------------------------------------------------------------------------------

def test_configure_worker_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_worker_threads(1) == 1 == torch.get_num_threads()
        monkeypatch.setenv("DEAPNN_THREADS", "2")
        assert configure_worker_threads() == 2 == torch.get_num_threads()
        monkeypatch.delenv("DEAPNN_THREADS")
        torch.set_num_threads(1)
        assert configure_worker_threads() == 1           # outside SCOOP: leave the count alone
    finally:
        torch.set_num_threads(before)


# --- seeds ------------------------------------------------------------------------------------

def test_derive_seed_is_stable_across_versions_and_processes():
    # sha256-based, so independent of PYTHONHASHSEED; these values must never change or old
    # runs stop being reproducible.
    assert derive_seed(0, "ind", 3) == 138834533234661940
    assert derive_seed(12345) == 1515602963654232620


def test_derive_seed_is_distinct_and_in_range():
    seeds = {derive_seed(run, gen, ind)
             for run in range(3) for gen in range(10) for ind in range(50)}
    assert len(seeds) == 3 * 10 * 50
    assert all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(1, 2) != derive_seed(2, 1)
    torch.manual_seed(max(seeds))                         # usable as a torch seed


def test_seed_everything_reproduces_all_three_rngs():
    def draw():
        return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()

    seed_everything(derive_seed(7, "x"))                  # a 63-bit seed is fine for numpy too
    a = draw()
    seed_everything(derive_seed(7, "x"))
    assert draw() == a
    seed_everything(derive_seed(8, "x"))
    assert draw() != a


def _draws():
    return (random.random(), random.gauss(0, 1), np.random.rand(4).tolist(),
            np.random.randint(0, 1000, 3).tolist(), torch.rand(4).tolist(), torch.randn(2).tolist())


def test_rng_state_round_trip():
    seed_everything(11)
    random.gauss(0, 1)          # leaves a cached gauss value in python's state
    state = rng_state()
    first = _draws()
    set_rng_state(state)
    assert _draws() == first


def test_rng_state_survives_a_checkpoint(tmp_path):
    seed_everything(12)
    np.random.rand(5)
    state = rng_state()
    first = _draws()
    save_checkpoint(tmp_path / "ck.pt", {"rng": state, "generation": 4})
    _draws()                    # move every generator on
    loaded = load_checkpoint(tmp_path / "ck.pt")
    assert loaded["generation"] == 4
    set_rng_state(loaded["rng"])
    assert _draws() == first
