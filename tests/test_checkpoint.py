"""deapnn.checkpoint: atomic writes and loads that never execute code from the file."""
import os
import pickle
from collections import OrderedDict

import pytest
import torch

from deapnn.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint


def _state():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    return {
        "generation": 7,
        "seed": 2**62 + 5,
        "lr": 0.05,
        "name": "gls",
        "done": False,
        "missing": None,
        "population": [{"weights": torch.randn(3, 2), "fitness": (0.5, float("inf"))},
                       {"weights": torch.zeros(2, dtype=torch.float64), "fitness": (0.25, -1.0)}],
        "cases": torch.tensor([True, False, True]),
        "indices": torch.arange(5),
        "model": model.state_dict(),
        "logbook": [{"gen": 0, "max": 0.1}, {"gen": 1, "max": 0.2}],
        "nested": {"a": {"b": {"c": [1, (2, 3), torch.ones(1)]}}},
    }


def _assert_same(a, b):
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_round_trip_of_nested_state(tmp_path):
    state = _state()
    path = tmp_path / "sub" / "dir" / "checkpoint.pt"       # parent directories are created
    save_checkpoint(path, state)
    _assert_same(state, load_checkpoint(path))


def test_loaded_model_state_restores_a_model(tmp_path):
    state = _state()
    save_checkpoint(tmp_path / "c.pt", state)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model.load_state_dict(load_checkpoint(tmp_path / "c.pt")["model"])
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())


def test_overwrite_replaces_previous_state(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"generation": 1})
    save_checkpoint(path, {"generation": 2})
    assert load_checkpoint(path) == {"generation": 2}
    assert os.listdir(tmp_path) == ["c.pt"]


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("keep", [0, 1, 100, 0.5, -1])
def test_truncated_file_is_checkpoint_error(tmp_path, keep):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state())
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    assert cut < len(data)
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="c.pt"):
        load_checkpoint(path)


def test_garbage_and_foreign_files_are_checkpoint_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        load_checkpoint(garbage)
    foreign = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(2)}, foreign)                # a torch file, but not ours
    with pytest.raises(CheckpointError, match=FORMAT):
        load_checkpoint(foreign)


class _Evil:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_code_in_a_tampered_torch_file_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "c.pt"
    torch.save({"format": FORMAT, "state": {"generation": 1, "payload": _Evil(marker)}}, path)
    # Sanity check of the attack itself: a plain unsafe load *would* create the marker.
    probe = tmp_path / "probe"
    torch.save(_Evil(probe), tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert probe.exists()

    with pytest.raises(CheckpointError, match="unsafe"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_code_in_a_raw_pickle_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "c.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": FORMAT, "state": _Evil(marker)}, fh)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch, exc):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"generation": 1, "w": torch.ones(3)})
    real_save = torch.save

    def partial_save(obj, fh, *args, **kwargs):
        real_save(obj, fh, *args, **kwargs)   # write it all, then chop it and fail
        fh.flush()
        fh.truncate(max(1, fh.tell() // 2))
        raise exc

    monkeypatch.setattr(torch, "save", partial_save)
    with pytest.raises(type(exc)):
        save_checkpoint(path, {"generation": 2, "w": torch.zeros(3)})
    monkeypatch.undo()

    state = load_checkpoint(path)
    assert state["generation"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["c.pt"]                  # no temporary file left behind


def test_failure_on_first_write_leaves_nothing(tmp_path, monkeypatch):
    def failing_save(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "c.pt", {"generation": 1})
    assert os.listdir(tmp_path) == []


def test_arbitrary_objects_do_not_load_back(tmp_path):
    # torch.save pickles anything, but a checkpoint holding a non-allow-listed object must not
    # come back through load_checkpoint (it would have to be unpickled to do so).
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"thing": OrderedDict(a=_Evil(tmp_path / "pwned"))})
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_temporaries_left_by_a_killed_writer_are_cleaned_up(tmp_path):
    import os
    import time

    from deapnn.checkpoint import STALE_SECONDS, save_checkpoint
    stale = tmp_path / ".ckpt-killed"
    stale.write_bytes(b"partial")
    old = time.time() - STALE_SECONDS - 5
    os.utime(stale, (old, old))
    fresh = tmp_path / ".ckpt-inflight"        # another writer's file in progress: kept
    fresh.write_bytes(b"partial")
    save_checkpoint(tmp_path / "checkpoint.pt", {"a": 1})
    assert not stale.exists() and fresh.exists()
