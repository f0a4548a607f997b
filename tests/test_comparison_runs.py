"""The tuned comparison inside ``deapnn nlfs`` / ``deapnn evomal`` and ``deapnn compare RUN_DIR``
(issue 16): the untuned rows are the protocol before tuning, bit for bit; the transfer check;
resumable per training; one-line errors; the report shows it."""
import json

import pytest
import torch

from deapnn.cli import main as _main
from deapnn.nlfs import NLFSConfig


def main(argv):
    """``deapnn`` in-process; argparse's own errors exit through SystemExit."""
    try:
        return _main(argv)
    except SystemExit as exc:
        return exc.code


CE = "-(y * log(yhat))"


def _genome(expr):
    from deapnn.losses.graph import LossGraph
    return LossGraph.from_expression(expr).to_json()


def test_nlfs_untuned_rows_are_the_untuned_protocol_and_transfer_changes_the_model():
    from deapnn.nlfs.compare import compare_final, compare_tuned
    torch.set_num_threads(1)
    cfg = NLFSConfig(seeds=[0, 1], final_steps=20, lr_grid=[1.0, 2.0], population_size=4, pool=6,
                     sample_size=2)
    found = [("nlfs_1", _genome("-(log(yhat) - y / yhat)"))]
    old, _ = compare_final(cfg, found, map)
    new = compare_tuned(cfg, found, map)
    rows = {r["loss"]: r for r in new["losses"]}
    assert [r["loss"] for r in new["losses"]] == ["cross-entropy", "label-smoothed CE", "nlfs_1"]
    for row in old:
        assert rows[row["loss"]]["untuned"]["test"] == row["test"]
    assert all(r["lr"] in (0.05, 0.1) for r in new["losses"]) and new["model"] == "mlp"
    cnn = compare_tuned(NLFSConfig(**{**cfg.to_dict(), "final_model": "cnn", "seeds": [0],
                                      "lr_grid": [1.0]}), found, map)
    assert cnn["model"] == "cnn"
    assert cnn["losses"][0]["untuned"]["test"] != rows["cross-entropy"]["untuned"]["test"][:1]


EVO = dict(dataset="diabetes", population_size=4, generations=2, meta_steps=2, fitness_steps=10,
           rejection_steps=5, hidden=(8,), seeds=[0, 1], final_steps=30, lr_grid=[0.5, 1.0])


def test_evomal_untuned_rows_are_the_untuned_protocol():
    from deapnn.data import load_dataset
    from deapnn.evomal.config import EvoMALRunConfig
    from deapnn.evomal.compare import compare_tuned, train_final
    torch.set_num_threads(1)
    cfg = EvoMALRunConfig(**EVO).validate()
    data = load_dataset(cfg.dataset, seed=cfg.seed)
    best = {"tree": "square(sub(y, fx))", "weights": [0.9, 1.1, 1.2],
            "evaluated": "square(sub(y, fx))"}
    old = train_final(best, data, cfg, cfg.seeds, cfg.final_steps, cfg.eval_every(), "cpu")
    new = compare_tuned(best, cfg, data.task)
    rows = {r["loss"]: r for r in new["losses"]}
    assert list(rows) == ["MSE", "MSE (early stopping)", "EvoMAL"]
    assert rows["MSE"]["untuned"]["test"] == [r["test"] for r in old["MSE"]["runs"]]
    assert rows["EvoMAL"]["untuned"]["test"] == [r["test"] for r in old["EvoMAL"]["runs"]]
    assert rows["MSE (early stopping)"]["untuned"]["test"] == \
        [r["test_es"] for r in old["MSE"]["runs"]]
    assert not new["higher_is_better"] and new["metric"] == "test MSE"


def test_old_config_json_reads_as_untuned():
    from deapnn.evomal.config import EvoMALRunConfig
    d = NLFSConfig().to_dict()
    for key in ("tune", "lr_grid", "tune_seeds", "baselines"):
        d.pop(key)
    from deapnn.results import CONFIG_FILE, migrate

    def read_back(command, block):          # as a resumed run reads it: the migration table
        return migrate({CONFIG_FILE: {"command": command, "config": block}})[CONFIG_FILE]["config"]
    assert NLFSConfig.from_dict(read_back("nlfs", d)).tune is False and NLFSConfig().tune is True
    e = EvoMALRunConfig().to_dict()
    e.pop("tune")
    assert EvoMALRunConfig.from_dict(read_back("evomal", e)).tune is False


@pytest.mark.parametrize("argv,flag", [
    (["nlfs", "--lr-grid", "1,-2"], "--lr-grid"), (["nlfs", "--baselines", "nope"], "--baselines"),
    (["nlfs", "--tune-seeds", "0"], "--tune-seeds"),
    (["evomal", "--baselines", "focal"], "--baselines"),
    (["evomal", "--final-model", "nope"], "--final-model")])
def test_bad_tuning_flags_are_one_line_usage_errors(argv, flag, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def nlfs_run(tmp_path_factory):
    """A finished tiny NLFS run without a final comparison."""
    from deapnn.nlfs.run import run_nlfs
    from deapnn.rundir import RunDir
    torch.set_num_threads(1)
    cfg = NLFSConfig(population_size=3, pool=4, cycles=2, sample_size=2, budget=20, seeds=[],
                     final_steps=20, top=1)
    path = tmp_path_factory.mktemp("n") / "run"
    run_nlfs(cfg, RunDir.create(path, "nlfs", cfg))
    return path


def test_compare_a_finished_run_resumes_per_training(nlfs_run, monkeypatch, capsys):
    import deapnn.nlfs.compare as nr
    real, calls = nr.tuned_job, []

    def counted(*a):
        calls.append(a[1:])
        if len(calls) == 5 and kill:
            raise KeyboardInterrupt
        return real(*a)
    monkeypatch.setattr(nr, "tuned_job", counted)
    argv = ["compare", str(nlfs_run), "--lr-grid", "1,2", "--seeds", "0-1", "--quiet"]
    kill = True
    assert main(argv) == 130                      # interrupted after 4 finished trainings
    assert not (nlfs_run / "comparison.json").exists()
    first = [c for c in calls[:4]]
    kill, calls[:] = False, []
    assert main(argv) == 0
    record = json.loads((nlfs_run / "comparison.json").read_text())
    # 3 losses × 2 grid points (tuning) + 2 final seeds at the chosen lr (and at lr 0.05 too
    # when another was chosen); the 4 finished before the kill are not redone
    finals = sum(2 * (1 if r["lr"] == 0.05 else 2) for r in record["losses"])
    assert len(calls) == 3 * 2 + finals - 4 and not set(first) & set(calls)
    assert (record["command"] == "nlfs" and record["seeds"] == [0, 1]
            and record["grid"] == [1.0, 2.0])
    assert [r["loss"] for r in record["losses"]] == ["cross-entropy", "label-smoothed CE", "nlfs_1"]
    assert "nlfs_1" in record["scale"]
    out = capsys.readouterr().out
    assert "tuned comparison" in out and "written:" in out
    calls[:] = []
    assert main(argv) == 0 and calls == []        # everything stored: nothing retrained
    assert json.loads((nlfs_run / "comparison.json").read_text()) == record
    from deapnn.report import render_report
    text = render_report(str(nlfs_run)).text()
    assert "`deapnn compare`" in text and "chosen lr" in text and "Scale report" in text


def test_compare_refuses_what_it_cannot_compare(tmp_path, nlfs_run, capsys):
    cases = [[str(tmp_path / "nothing")], [str(nlfs_run), "--lr-grid", "x"],
             [str(nlfs_run), "--final-model", "nope"], [str(nlfs_run), "--out", "a.txt"]]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps({"command": "nlfs",
                                                        "config": NLFSConfig().to_dict()}))
    cases.append([str(unfinished)])
    for argv in cases:
        assert main(["compare", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "error" in err, (argv, err)


@pytest.mark.parametrize("argv, flag", [
    (["--device", "cuda"], "--device cuda: CUDA is not available"),
    (["--device", "cuda:abc"], "--device: unknown device 'cuda:abc'"),
    (["--device", "cuda:0"], "--device cuda:0: CUDA is not available"),
    (["--lr-grid", "1e400"], "--lr-grid"), (["--lr-grid", "1,1e40"], "--lr-grid"),
    (["--seeds", "0-1000000000000000000"], "--seeds")])
def test_compare_refuses_a_device_or_value_that_cannot_work(nlfs_run, monkeypatch, capsys,
                                                            argv, flag):
    """Issue 23: a traceback (RuntimeError, torch's device error, OverflowError) or trainings
    that all fail, before; one line naming the flag now, nothing written."""
    monkeypatch.setenv("DEAPNN_FAKE_GPUS", "0")         # a CPU host, whatever this one has
    before = sorted(p.name for p in nlfs_run.iterdir())
    assert main(["compare", str(nlfs_run), *argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err, err
    assert sorted(p.name for p in nlfs_run.iterdir()) == before


def test_evomal_run_is_tuned_by_default_and_reported(tmp_path, capsys):
    run = tmp_path / "evo"
    assert main(["evomal", "--dataset", "diabetes", "--population-size", "4", "--generations", "1",
                 "--meta-steps", "2", "--fitness-steps", "10", "--rejection-steps", "5",
                 "--hidden", "8", "--seeds", "0-1", "--final-steps", "20", "--lr-grid", "1,2",
                 "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "tuned comparison: test MSE (lower is better)" in out and "MSE (early stopping)" in out
    result = json.loads((run / "results.json").read_text())
    assert "final" not in result and result["tuned"]["seeds"] == [0, 1]
    assert [r["loss"] for r in result["tuned"]["losses"]] == ["MSE", "MSE (early stopping)",
                                                              "EvoMAL"]
    assert "EvoMAL" in result["scale"] and (run / "tuned_runs.json").exists()
    from deapnn.report import render_report
    text = render_report(str(run)).text()
    for r in result["tuned"]["losses"]:
        assert f"| `{r['loss']}` | {r['lr']:.4f} |" in text
    assert "Scale report" in text
