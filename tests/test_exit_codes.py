"""A failed run never reports success (issue 14 class 4; README "Exit codes")."""
import pytest

from deapnn.cli import main
from deapnn.commands.common import EXIT_FAILED, EXIT_PARTIAL

GLS = ["gls", "--dataset", "iris", "--model", "mlp", "--pop", "2", "--epochs", "1",
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
