"""A failed run never reports success (issue 14 class 4; README "Exit codes"): every command
exits 1 when all the jobs of its summary failed and 3 when some did (deapnn.results)."""
import dataclasses
import json
import math

import pytest

from deapnn.cli import main
from deapnn.commands.common import EXIT_FAILED, EXIT_PARTIAL
from deapnn.results import RESULTS_FILE

GLS = ["gls", "--dataset", "iris", "--model", "mlp", "--population-size", "2", "--epochs", "1",
       "--compare", "sgd", "--seeds", "0,1", "--quiet"]


@pytest.mark.parametrize("failing,code", [(lambda job: True, EXIT_FAILED),
                                          (lambda job: job["seed"] == 1, EXIT_PARTIAL)])
def test_gls_jobs_that_fail_give_a_non_zero_exit_and_counted_reasons(monkeypatch, tmp_path,
                                                                     capsys, failing, code):
    from deapnn.gls import job as job_module
    real = job_module._run_job

    def maybe_fail(job):
        if failing(job):
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64")
        return real(job)
    monkeypatch.setattr(job_module, "_run_job", maybe_fail)
    assert main(GLS + ["--out", str(tmp_path / "run")]) == code
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    n = 4 if code == EXIT_FAILED else 2
    assert f"{n}× RuntimeError: [enforce fail" in last
    if code == EXIT_FAILED:
        assert last.startswith("deapnn: error: all 4 jobs failed")
    else:
        assert last.startswith("deapnn: 2 of 4 jobs failed") and "--resume" in last
    # the failed jobs left no result, so --resume retries exactly them and then succeeds
    monkeypatch.setattr(job_module, "_run_job", real)
    assert main(["gls", "--resume", str(tmp_path / "run"), "--quiet"]) == 0


def _last_err(capsys):
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_train_exit_1_when_the_training_diverged(tmp_path, monkeypatch, capsys):
    from deapnn import training
    real = training.train

    def diverging(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), diverged=True,
                                   reason="non-finite loss at epoch 1")
    monkeypatch.setattr(training, "train", diverging)
    argv = ["train", "--dataset", "iris", "--model", "mlp", "--epochs", "1", "--quiet"]
    assert main(argv) == EXIT_FAILED
    out = capsys.readouterr()
    assert out.out.startswith("training diverged: non-finite loss at epoch 1\ntest accuracy")
    assert out.err.strip() == "deapnn: error: all 1 jobs failed (1× non-finite loss at epoch 1)"


NLFS = ["nlfs", "--dataset", "iris", "--population-size", "3", "--pool", "4", "--cycles", "2",
        "--sample-size", "2", "--budget", "10", "--seeds", "0-1", "--final-steps", "10",
        "--top", "1", "--no-tune", "--quiet"]


def test_nlfs_exit_3_when_a_final_training_failed(tmp_path, monkeypatch, capsys):
    from deapnn.nlfs import compare
    real, calls = compare._final_job, []

    def one_fails(job):
        calls.append(job)
        res = real(job)
        return {**res, "test_acc": float("nan")} if len(calls) == 2 else res
    monkeypatch.setattr(compare, "_final_job", one_fails)
    assert main(NLFS + ["--out", str(tmp_path / "run")]) == EXIT_PARTIAL
    assert _last_err(capsys) == ("deapnn: 1 of 5 jobs failed (1× no finite test value (the "
                                 "training failed or diverged)); the results above cover the "
                                 "other 4")


def test_nlfs_exit_1_when_the_search_found_no_loss(tmp_path, monkeypatch, capsys):
    from deapnn.nlfs import run
    real = run.evolve

    def nothing_found(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), halloffame=[])
    monkeypatch.setattr(run, "evolve", nothing_found)
    assert main(NLFS + ["--out", str(tmp_path / "run")]) == EXIT_FAILED
    out = capsys.readouterr()
    assert out.out.rstrip().endswith("no loss found")
    assert out.err.strip() == "deapnn: error: all 1 jobs failed (1× no loss found)"


EVOMAL = ["evomal", "--dataset", "diabetes", "--population-size", "3", "--generations", "1",
          "--meta-steps", "2", "--fitness-steps", "10", "--rejection-steps", "10",
          "--final-steps", "10", "--hidden", "4", "--seeds", "0-1", "--no-tune", "--quiet"]


def test_evomal_exit_3_when_a_final_training_diverged(tmp_path, monkeypatch, capsys):
    from deapnn.evomal import compare
    real, calls = compare.train_with_loss, []

    def one_diverges(*args, **kwargs):
        calls.append(1)
        res = real(*args, **kwargs)
        return dataclasses.replace(res, reason="non-finite loss") if len(calls) == 1 else res
    monkeypatch.setattr(compare, "train_with_loss", one_diverges)
    assert main(EVOMAL + ["--out", str(tmp_path / "run")]) == EXIT_PARTIAL
    assert _last_err(capsys).startswith("deapnn: 1 of 5 jobs failed (1× no finite test value")
    results = json.loads((tmp_path / "run" / RESULTS_FILE).read_text())
    assert results["final"]["EvoMAL"]["test"][0] == math.inf


def test_evomal_exit_1_when_no_candidate_passed(tmp_path, monkeypatch, capsys):
    from deapnn.evomal import run
    real = run.best_formulas

    def all_rejected(*args, **kwargs):
        return [{**row, "fitness": math.inf} for row in real(*args, **kwargs)]
    monkeypatch.setattr(run, "best_formulas", all_rejected)
    assert main(EVOMAL + ["--out", str(tmp_path / "run")]) == EXIT_FAILED
    out = capsys.readouterr()
    assert out.out.rstrip().endswith("no candidate loss passed the rejection protocol; no final "
                                     "comparison")
    assert out.err.strip().splitlines()[-1] == ("deapnn: error: all 1 jobs failed (1× no "
                                                "candidate loss passed the rejection protocol)")
