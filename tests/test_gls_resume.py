"""Kill a real ``deapnn gls`` process with SIGKILL mid-run — or pre-empt it with SIGTERM, as
SLURM and PBS do, which must end it with exit 143 and a resume hint — resume it, and compare with
an uninterrupted run of the same seed on CPU: logbooks, weights and results must be identical."""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from deapnn.checkpoint import CheckpointError, load_checkpoint

ARGS = ["gls", "--dataset", "digits", "--model", "cnn", "--population-size", "2", "--epochs", "3",
        "--compare", "sgd", "--seeds", "0", "--device", "cpu", "--quiet", "--batch-size", "32"]
ENV = {**os.environ, "DEAPNN_THREADS": "1", "PYTHONHASHSEED": "0"}


def deapnn(*args, **kw):
    return [sys.executable, "-m", "deapnn", *args]


def logbook(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if not k.endswith("_time")}
                for row in csv.DictReader(fh)]


def generation(path):
    try:
        return load_checkpoint(path)["generation"]
    except (CheckpointError, KeyError, FileNotFoundError):
        return 0


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """One uninterrupted run, the reference of every kill below."""
    out = tmp_path_factory.mktemp("uninterrupted") / "full"
    subprocess.run(deapnn(*ARGS, "--out", str(out)), check=True, env=ENV, timeout=300,
                   capture_output=True)
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_kill_then_resume_equals_uninterrupted(tmp_path, full, sig):
    killed = tmp_path / "killed"

    proc = subprocess.Popen(deapnn(*ARGS, "--out", str(killed)), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = killed / "gls" / "seed0" / "checkpoint.pt"
    deadline = time.time() + 240
    while generation(ckpt) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be killed"
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    if sig == signal.SIGTERM:      # handled: the write in progress finished or abandoned
        assert proc.returncode == 143, err
        assert err.strip().splitlines()[-1] == f"deapnn: terminated, resume with --resume {killed}"
        assert not [p for p in os.listdir(ckpt.parent) if p.startswith(".")
                    and p not in (".lock",)], "a temporary file was left behind"
    else:
        assert proc.returncode == -signal.SIGKILL
    stopped_at = generation(ckpt)
    assert 2 <= stopped_at < 9
    assert not (killed / "gls" / "seed0" / "result.json").exists()

    out = subprocess.run(deapnn("gls", "--resume", str(killed), "--quiet"), env=ENV,
                         timeout=300, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "GLS" in out.stdout and "SGD" in out.stdout

    for arm in ("gls", "sgd"):
        a, b = full / arm / "seed0", killed / arm / "seed0"
        assert logbook(a / "logbook.csv") == logbook(b / "logbook.csv")
        wa = torch.load(a / "model.pt", weights_only=True)
        wb = torch.load(b / "model.pt", weights_only=True)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
        ba = torch.load(a / "best_model.pt", weights_only=True)
        bb = torch.load(b / "best_model.pt", weights_only=True)
        assert all(torch.equal(ba[k], bb[k]) for k in ba)
    assert len(logbook(full / "gls" / "seed0" / "logbook.csv")) == 9


def test_a_duplicated_job_waits_for_the_first_and_reuses_its_result(tmp_path, monkeypatch):
    """SCOOP can resend a long-running future; both copies must give one run, not two."""
    import threading
    from dataclasses import asdict

    import deapnn.gls.job
    from deapnn.gls import GLSConfig, run_job
    runs = []
    real = deapnn.gls.job.eaGradientLexicase

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(deapnn.gls.job, "eaGradientLexicase", counting)
    cfg = GLSConfig(dataset="iris", model="mlp", epochs=1, population_size=2, batch_size=16,
                    arms=[])
    job = {"arm": "gls", "seed": 0, "dir": str(tmp_path / "gls" / "seed0"), "config": asdict(cfg)}
    results = [None, None]

    def go(i):
        results[i] = run_job(job)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == results[1] and results[0].info["test_acc"] is not None
    assert len(runs) == 1
    assert not [p for p in os.listdir(job["dir"]) if p.endswith(".tmp") or p.startswith(".ckpt")]
