"""The ``deapnn`` command: help, dataset listing, one-line errors for bad arguments, a real run."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


REPO = Path(__file__).resolve().parents[1]


def _command():
    script = shutil.which("deapnn", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "deapnn"]


def _subprocess(*args, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run(_command() + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def _assert_one_line_error(code, out, err):
    assert code == 2, (code, out, err)
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deapnn") and "error" in lines[0]
    assert "Traceback" not in err + out


# --- real subprocesses ---------------------------------------------------------------------

def test_help_subprocess():
    proc = _subprocess("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: deapnn")
    for command in ("datasets", "train"):
        assert command in proc.stdout


def test_bad_argument_subprocess(tmp_path):
    out_dir = tmp_path / "x"
    proc = _subprocess("train", "--dataset", "digits", "--epochs", "-3", "--out", str(out_dir))
    _assert_one_line_error(proc.returncode, proc.stdout, proc.stderr)
    assert "--epochs" in proc.stderr and "-3" in proc.stderr
    assert not out_dir.exists()


def test_non_integer_epochs_subprocess(tmp_path):
    out_dir = tmp_path / "x"
    proc = _subprocess("train", "--epochs", "2.5", "--out", str(out_dir))
    _assert_one_line_error(proc.returncode, proc.stdout, proc.stderr)
    assert "2.5" in proc.stderr
    assert not out_dir.exists()


# --- in-process ----------------------------------------------------------------------------

def test_help_lists_train_options(cli):
    code, out, _ = cli("train", "--help")
    assert code == 0
    for flag in ("--dataset", "--model", "--epochs", "--lr", "--batch-size", "--seed", "--out",
                 "--device", "--resume", "--quiet"):
        assert flag in out


def test_datasets_lists_shapes(cli):
    code, out, err = cli("datasets")
    assert code == 0 and err == ""
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert {"digits", "iris", "diabetes", "wine", "breast_cancer", "mnist1d", "mnist",
            "fashion_mnist", "cifar10", "cifar100", "svhn"} <= set(rows)
    assert re.search(r"\b1×8×8\b", rows["digits"]) and re.search(r"\b10\b", rows["digits"])
    assert "1×40" in rows["mnist1d"]
    assert "3×32×32" in rows["cifar10"] and "100" in rows["cifar100"]
    assert "regression" in rows["diabetes"]


BAD = [
    (["--dataset", "imagenet"], "imagenet"),
    (["--model", "transformer"], "transformer"),
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "two"], "two"),
    (["--epochs", "1.5"], "1.5"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "fast"], "fast"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-8"], "--batch-size"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--momentum", "1.0"], "--momentum"),
    (["--schedule", "linear"], "linear"),
    (["--device", "tpu"], "tpu"),
    (["--workers", "0"], "--workers"),
    (["--model", "cnn", "--dataset", "iris"], "cnn"),          # conv-net on tabular data
    (["--model", "vgg19_bn", "--dataset", "mnist"], "vgg19_bn"),  # 28×28 < VGG's 32×32
    (["--no-such-flag"], "--no-such-flag"),
]


GLS_BAD = [
    (["--population-size", "1"], "--population-size"),
    (["--chunk-size", "0"], "--chunk-size"),
    (["--max-cases", "0"], "--max-cases"),
    (["--compare", "sgd,annealing"], "annealing"),
    (["--momentum-mode", "keep"], "keep"),
    (["--semantics", "loose"], "loose"),
    (["--val-size", "-1"], "--val-size"),
    (["--val-size", "many"], "many"),
    (["--val-size", "119"], "--val-size must be < 119"),     # iris: 119 examples besides test
]


REJECTED = [("train", a, w) for a, w in BAD] + [("gls", a, w) for a, w in GLS_BAD]


@pytest.mark.parametrize("command,args,word", REJECTED,
                         ids=[" ".join([c, *a]) for c, a, _ in REJECTED])
def test_bad_arguments_are_one_line_exit_2_and_create_nothing(cli, tmp_path, command, args, word):
    out_dir = tmp_path / "x"
    code, out, err = cli(command, "--dataset", "iris", "--model", "mlp", "--epochs", "1",
                         "--quiet", "--out", str(out_dir), *args)
    _assert_one_line_error(code, out, err)
    assert word in err
    assert not out_dir.exists()
    assert out == ""                                   # nothing trained, nothing printed


def test_gls_resume_of_a_directory_without_a_run_is_one_line(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("kept")
    _assert_one_line_error(*cli("gls", "--resume", str(tmp_path)))
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_unknown_names_list_the_valid_ones(cli):
    _, _, err = cli("train", "--dataset", "imagenet")
    assert "digits" in err and "cifar10" in err
    _, _, err = cli("train", "--model", "transformer")
    assert all(name in err for name in ("mlp", "cnn", "vgg19_bn", "resnet18", "mobilenetv2"))


def test_missing_command_is_one_line_error(cli):
    _assert_one_line_error(*cli())


def test_resume_missing_directory(cli, tmp_path):
    missing = tmp_path / "never_ran"
    code, out, err = cli("train", "--resume", str(missing))
    _assert_one_line_error(code, out, err)
    assert "never_ran" in err
    assert not missing.exists()


def test_real_short_training_run(cli, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = cli("train", "--dataset", "iris", "--model", "mlp", "--epochs", "3",
                         "--seed", "0", "--device", "cpu", "--out", str(out_dir), "--quiet")
    assert code == 0, err
    assert "Traceback" not in err
    match = re.search(r"test accuracy: (\d\.\d{4})", out)
    assert match, out
    printed = float(match.group(1))
    assert printed > 0.5                                     # chance on iris is 1/3

    for name in ("config.json", "logbook.csv", "model.pt"):
        assert (out_dir / name).is_file(), name
    config = json.loads((out_dir / "config.json").read_text())["config"]
    assert config["dataset"] == "iris" and config["model"] == "mlp" and config["epochs"] == 3

    from deapnn.rundir import read_logbook
    rows = read_logbook(out_dir / "logbook.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(0 <= r["val_accuracy"] <= 1 and r["train_loss"] > 0 for r in rows)

    # Oracle: the saved weights reproduce the printed test accuracy.
    from deapnn.data import load_dataset
    from deapnn.models import build_model
    from deapnn.training import evaluate
    data = load_dataset("iris", seed=0)
    model = build_model("mlp", data.input_shape, data.num_classes)
    model.load_state_dict(torch.load(out_dir / "model.pt", weights_only=True))
    assert evaluate(model, data.test.x, data.test.y) == pytest.approx(printed, abs=5e-5)

    # Same seed, same CPU: a second run writes bit-identical weights.
    code, out2, err = cli("train", "--dataset", "iris", "--model", "mlp", "--epochs", "3",
                          "--seed", "0", "--device", "cpu", "--out", str(tmp_path / "run2"),
                          "--quiet")
    assert code == 0, err
    a = torch.load(out_dir / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "run2" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert out2.split("(")[0] == out.split("(")[0]
