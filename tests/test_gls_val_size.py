"""``deapnn gls --val-size``: the validation split of a GLS comparison, recorded in the run's
configuration and result rows and shown by ``deapnn report``. ``--val-size 0`` is the paper's
protocol (Ding & Spector 2022, §4: train on the whole training set, report the final parent's
test accuracy only)."""
import json

import pytest
import torch

from deapnn.cli import main


@pytest.fixture
def run_cli(monkeypatch):
    import deapnn.runtime as runtime
    monkeypatch.setattr(runtime, "_DEVICE", None)
    monkeypatch.setattr(runtime, "_REQUESTED", None)
    monkeypatch.setenv("DEAPNN_DEVICE", "cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield lambda *args: main(list(args))
    torch.set_num_threads(before)


def _run(run_cli, out, *extra):
    code = run_cli("gls", "--dataset", "digits", "--model", "mlp", "--population-size", "2",
                   "--epochs", "1", "--compare", "sgd", "--quiet", "--out", str(out), *extra)
    assert code == 0
    rows = json.loads((out / "results.json").read_text())["results"]
    config = json.loads((out / "config.json").read_text())["config"]
    return rows, config


def test_val_size_zero_is_the_paper_protocol_and_is_reported(run_cli, tmp_path):
    rows, config = _run(run_cli, tmp_path / "paper", "--val-size", "0")
    assert config["val_size"] == 0
    assert {r["arm"] for r in rows} == {"gls", "sgd"}
    for r in rows:
        assert r["val_size"] == 0 and r["val_acc"] is None and 0 < r["test_acc"] <= 1
    for arm in ("gls", "sgd"):
        job = tmp_path / "paper" / arm / "seed0"
        assert not (job / "best_model.pt").exists()           # nothing selected on val
        header = (job / "logbook.csv").read_text().splitlines()[0].split(",")
        assert "val_acc" not in header and "test_acc" not in header   # test read at the end only
    assert "no validation split" in (tmp_path / "paper" / "summary.txt").read_text()
    assert run_cli("report", str(tmp_path / "paper")) == 0
    report = (tmp_path / "paper" / "report.md").read_text()
    assert "No validation split (`val_size` 0, the paper's protocol)" in report


def test_default_keeps_the_usual_split_and_records_its_size(run_cli, tmp_path):
    rows, config = _run(run_cli, tmp_path / "usual")
    assert config["val_size"] is None
    for r in rows:
        assert r["val_size"] == 359 and 0 < r["val_acc"] <= 1     # digits: 20 % of 1,797
    assert run_cli("report", str(tmp_path / "usual")) == 0
    report = (tmp_path / "usual" / "report.md").read_text()
    assert "Validation: 359 examples (the dataset's usual split) held out" in report
    rows, _ = _run(run_cli, tmp_path / "n", "--val-size", "100")
    assert all(r["val_size"] == 100 for r in rows)
