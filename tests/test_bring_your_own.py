"""Bring your own data and model (issue 24, items 1 and 2): ``--dataset PATH.npz`` or
``package.module:function`` and ``--model package.module:function``, written here as a user
writes them, run end to end with every command; each bad input is one line naming the flag, the
file and the array (exit 2, nothing written); a GLS run killed with SIGKILL and resumed equals an
uninterrupted ``--workers 2`` (SCOOP) run; ``--resume`` refuses a changed data file."""
import csv
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from deapnn.checkpoint import CheckpointError, load_checkpoint


#: the user's module: a model factory (slowed by BYO_SLOW, so a run can be killed mid-way), the
#: factories every bad-model case needs, and a data function returning tensors
USER_MODULE = '''
import os, time
import numpy as np
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        width = 1
        for s in input_shape:
            width *= s
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(width, 16), nn.ReLU(),
                                  nn.Linear(16, num_classes))

    def forward(self, x):
        if os.environ.get("BYO_SLOW"):
            time.sleep(float(os.environ["BYO_SLOW"]))
        return self.body(x)


def build(input_shape, num_classes):
    return Net(input_shape, num_classes)


def wrong_width(input_shape, num_classes):
    return nn.Linear(input_shape[-1], num_classes + 1)


def not_a_module(input_shape, num_classes):
    return [input_shape, num_classes]


def raises(input_shape, num_classes):
    raise RuntimeError("no such layer")


def make_data():
    d = np.load("data.npz")
    return {k: torch.from_numpy(d[k]) for k in d.files}
'''


def arrays(n_train=60, n_test=24, seed=0):
    """A small 3-class table (6 features) as the user's ``numpy.savez`` arguments."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + n_test, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:],
            "y_test": y[n_train:]}


@pytest.fixture
def user(tmp_path, monkeypatch):
    """A fresh current directory holding the user's module ``byo_<n>`` (unique per test: every
    import-string cache starts empty), ``data.npz`` (classification) and ``reg.npz``
    (regression, float targets)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"byo_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    np.savez(tmp_path / "data.npz", **arrays())
    a = arrays(seed=1)
    w = np.arange(1, 7, dtype=np.float32)
    np.savez(tmp_path / "reg.npz", x_train=a["x_train"], y_train=a["x_train"] @ w,
             x_test=a["x_test"], y_test=a["x_test"] @ w)
    yield name
    sys.modules.pop(name, None)


def one_error_line(code, out, err, *fragments):
    assert code == 2, (out, err)
    assert err.startswith("deapnn: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# --- bad input ------------------------------------------------------------------------------

def _bad(**change):
    """The training arrays with ``change`` applied (a value None drops the array)."""
    a = {**arrays(), **change}
    return {k: v for k, v in a.items() if v is not None}


_X = arrays()["x_train"]
_NAN = _X.copy()
_NAN[3, 1] = np.nan
BAD_DATA = {
    "pickled object array": (_bad(classes=np.array(["a", 1, None], dtype=object)),
                             ["classes is an object array", "allow_pickle=False"]),
    "missing y_test": (_bad(y_test=None), ["no array y_test"]),
    "length mismatch": (_bad(y_train=arrays()["y_train"][:-1]),
                        ["x_train has 60 examples, y_train 59"]),
    "float labels": (_bad(y_train=arrays()["y_train"].astype(np.float64),
                          task=np.array("classification")),
                     ["y_train holds float64 labels", "integer class indices"]),
    "label out of range": (_bad(y_test=arrays()["y_test"] + 3,
                                classes=np.array(["low", "mid", "high"])),
                           ["y_test holds label 5, outside 0..2"]),
    "negative label": (_bad(y_train=arrays()["y_train"] - 1), ["y_train holds label -1"]),
    "1-D x": (_bad(x_train=_X[:, 0], x_test=arrays()["x_test"][:, 0]), ["x_train is 1-D"]),
    "NaN in x": (_bad(x_train=_NAN), ["x_train holds NaN", "row 3"]),
    "empty split": (_bad(x_test=_X[:0], y_test=arrays()["y_test"][:0]), ["x_test is empty"]),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_a_bad_data_file_is_one_line_naming_the_array(cli, user, tmp_path, case):
    data, fragments = BAD_DATA[case]
    np.savez(tmp_path / "bad.npz", **data)
    one_error_line(*cli("train", "--dataset", "bad.npz", "--model", "mlp", "--out", "run"),
                   f"--dataset: {tmp_path / 'bad.npz'}: ", *fragments)
    assert not (tmp_path / "run").exists()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3))
    return buffer.getvalue()


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.mkdir(), "is a directory, not an .npz file"),
    (lambda p: p.symlink_to("/dev/zero"), "is a symbolic link (to /dev/zero)"),
    (lambda p: p.write_bytes(b"not a zip"), "is not an .npz archive"),
    (lambda p: p.write_bytes(b"PK\x03\x04 cut short"), "is not a readable .npz archive"),
    (lambda p: p.write_bytes(_npy()), "holds one array, not an .npz archive"),
    (lambda p: None, "does not exist"),
])
def test_a_path_that_is_no_data_file_is_one_line(cli, user, tmp_path, make, fragment):
    make(tmp_path / "odd.npz")
    one_error_line(*cli("gls", "--dataset", "odd.npz", "--model", "mlp", "--out", "run"),
                   "--dataset: ", "odd.npz", fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model, fragment", [
    ("os:system", "--model: os:system is a built-in"),
    ("nosuch:thing", "--model: no module named 'nosuch'"),
    ("{}:raises", "raised RuntimeError: no such layer"),
    ("{}:not_a_module", "returned a list, not a torch.nn.Module"),
    ("{}:wrong_width", "gives outputs of shape (2, 4) for a batch of two inputs of shape (6,); "
                       "the data needs (2, 3)"),
    ("{}", "--model must be one of"),         # an import string without its colon
])
def test_a_bad_model_factory_is_one_line(cli, user, tmp_path, model, fragment):
    one_error_line(*cli("train", "--dataset", "data.npz", "--model", model.format(user),
                        "--out", "run"), fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["nlfs", "evomal"])
def test_the_searches_check_the_model_and_final_model_too(cli, user, command):
    one_error_line(*cli(command, "--dataset", "data.npz", "--model", f"{user}:wrong_width",
                        "--out", "run"), "--model: ", "gives outputs of shape (2, 4)")
    one_error_line(*cli(command, "--dataset", "data.npz", "--model", f"{user}:build",
                        "--final-model", f"{user}:raises", "--out", "run"),
                   "--final-model: ", "raised RuntimeError")


def test_dataset_import_strings_are_checked_like_files(cli, user):
    one_error_line(*cli("train", "--dataset", "nosuch_data_mod:make", "--out", "run"),
                   "--dataset: no module named 'nosuch_data_mod'")
    one_error_line(*cli("train", "--dataset", f"{user}:build", "--out", "run"),
                   f"--dataset: {user}:build: the function raised TypeError")
    one_error_line(*cli("train", "--dataset", f"{user}.make_data", "--out", "run"),
                   "--dataset must be one of digits")


def test_a_module_missing_on_a_worker_says_it_must_be_importable_there(monkeypatch):
    import scoop

    from deapnn.imports import ImportStringError, resolve
    monkeypatch.setattr(scoop, "IS_RUNNING", True, raising=False)
    monkeypatch.setattr(scoop, "IS_ORIGIN", False, raising=False)
    with pytest.raises(ImportStringError) as info:
        resolve("byo_nowhere_xyz:build", "model")
    assert "on SCOOP worker" in str(info.value)
    assert "importable on every worker" in str(info.value) and "\n" not in str(info.value)


# --- what the user's data and model become ----------------------------------------------------

def test_the_users_arrays_load_as_a_dataset(user, tmp_path):
    from deapnn.data import dataset_info, load_dataset
    info = dataset_info("data.npz")
    assert (info.input_shape, info.num_classes, info.task, info.source) == \
        ((6,), 3, "classification", "user")
    a, b = load_dataset("data.npz", seed=0), load_dataset("data.npz", seed=0)
    assert (len(a.train), len(a.val), len(a.test)) == (48, 12, 24)   # 20 % for validation
    assert torch.equal(a.val.x, b.val.x) and not torch.equal(
        a.val.x, load_dataset("data.npz", seed=1).val.x)              # drawn from the seed
    assert torch.allclose(a.train.x.mean(0), torch.zeros(6), atol=1e-5)  # training statistics
    assert a.train.y.dtype == torch.int64 and set(a.val.y.tolist()) == {0, 1, 2}  # stratified
    fn = load_dataset(f"{user}:make_data", seed=0)           # the same arrays as tensors
    assert torch.equal(fn.train.x, a.train.x) and torch.equal(fn.test.y, a.test.y)

    np.savez(tmp_path / "own_val.npz", **arrays(), x_val=_X[:5], y_val=arrays()["y_train"][:5],
             classes=np.array(["a", "b", "c"]))
    own = load_dataset("own_val.npz", seed=0)
    assert (len(own.train), len(own.val), own.classes) == (60, 5, ["a", "b", "c"])
    with pytest.raises(ValueError, match="val_size must be left out"):
        load_dataset("own_val.npz", val_size=3)
    reg = load_dataset("reg.npz", seed=0)
    assert reg.task == "regression" and reg.num_classes == 1 and reg.train.y.shape == (48, 1)
    assert abs(float(reg.train.y.mean())) < 1e-5 and reg.target_std > 1


def test_the_model_check_runs_once_and_leaves_the_random_streams_alone(user):
    from deapnn.config import network_parameters
    from deapnn.models import build_model
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    assert network_parameters(f"{user}:build", (6,), 3) == 6 * 16 + 16 + 16 * 3 + 3
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2])
    assert build_model(f"{user}:build", (6,), 3)(torch.zeros(4, 6)).shape == (4, 3)


# --- end to end ---------------------------------------------------------------------------------

SEARCH = {
    "nlfs": ["--dataset", "data.npz", "--population-size", "3", "--pool", "4", "--cycles", "2",
             "--sample-size", "2", "--budget", "12", "--seeds", "0-1", "--final-steps", "12",
             "--top", "1", "--lr-grid", "1,2", "--batch-size", "16"],
    "evomal": ["--dataset", "reg.npz", "--population-size", "2", "--generations", "1",
               "--meta-steps", "2", "--fitness-steps", "10", "--rejection-steps", "10",
               "--final-steps", "12", "--seeds", "0-1", "--lr-grid", "1,2"],
    "train": ["--dataset", "data.npz", "--epochs", "2", "--batch-size", "16"],
}


@pytest.mark.parametrize("command", sorted(SEARCH))
def test_a_users_npz_and_model_run_end_to_end_and_report(cli, user, tmp_path, command):
    out = tmp_path / "run"
    code, stdout, err = cli(command, *SEARCH[command], "--model", f"{user}:build", "--quiet",
                            "--device", "cpu", "--out", out)
    assert code == 0, err
    stored = json.loads((out / "config.json").read_text())
    data = tmp_path / SEARCH[command][1]
    assert stored["config"]["dataset"] == str(data)
    assert stored["config"]["model"] == f"{user}:build"
    assert stored["dataset_file"] == {"path": str(data), "bytes": data.stat().st_size,
                                      "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    results = json.loads((out / "results.json").read_text())
    if command != "train":          # the tuned final comparison ran, on the user's model
        assert results["tuned"] and f"{user}:build" in stdout
    else:
        assert 0 <= results["test_accuracy"] <= 1
    code, _, err = cli("report", out)
    assert code == 0, err
    assert data.name in (out / "report.md").read_text()


# --- resume ---------------------------------------------------------------------------------------

def _logbook(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if not k.endswith(("_time", "seconds"))}
                for r in csv.DictReader(fh)]


def _generation(path):
    try:
        return load_checkpoint(path)["generation"]
    except (CheckpointError, KeyError, FileNotFoundError, OSError):
        return 0


def _start(argv, cwd, env):
    return subprocess.Popen([sys.executable, "-m", "deapnn", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_gls_killed_and_resumed_equals_an_uninterrupted_scoop_run(cli, user, tmp_path):
    """SIGKILL mid-run, a refused resume while the data file is changed, the resume once it is
    restored: every arm's logbook and weights equal those of an uninterrupted run of the same
    seed on two SCOOP workers (which import the user's module from the run's directory)."""
    from test_scale import scoop_env
    argv = ["gls", "--dataset", "data.npz", "--model", f"{user}:build", "--population-size",
            "2", "--epochs", "3", "--batch-size", "16", "--compare", "sgd", "--seeds", "0",
            "--device", "cpu", "--quiet"]
    env = scoop_env(tmp_path)     # PYTHONPATH: this checkout, then the current directory
    full = _start([*argv, "--workers", "2", "--out", "full"], tmp_path, env)
    killed = tmp_path / "killed"
    proc = _start([*argv, "--out", "killed"], tmp_path, {**env, "BYO_SLOW": "0.01"})
    try:
        ckpt = killed / "gls" / "seed0" / "checkpoint.pt"
        deadline = time.time() + 240
        while _generation(ckpt) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert 2 <= _generation(ckpt) < 9
        out, err = full.communicate(timeout=300)     # it reads data.npz, changed below
        assert full.returncode == 0, err[-3000:]

        original = (tmp_path / "data.npz").read_bytes()
        np.savez(tmp_path / "data.npz", **arrays(seed=3))
        one_error_line(*cli("gls", "--resume", killed), f"--resume {killed}: the data file "
                       f"{tmp_path / 'data.npz'} changed since the run started")
        (tmp_path / "data.npz").write_bytes(original)
        code, stdout, err = cli("gls", "--resume", killed, "--quiet")
        assert code == 0, err
    finally:
        for p in (proc, full):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
    for arm in ("gls", "sgd"):
        a, b = tmp_path / "full" / arm / "seed0", killed / arm / "seed0"
        assert _logbook(a / "logbook.csv") == _logbook(b / "logbook.csv")
        for weights in ("model.pt", "best_model.pt"):
            wa = torch.load(a / weights, weights_only=True)
            wb = torch.load(b / weights, weights_only=True)
            assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len(_logbook(tmp_path / "full" / "gls" / "seed0" / "logbook.csv")) == 9
