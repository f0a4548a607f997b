"""Nothing lost (issue 7 item 4).

* A process writing large checkpoints in a loop is SIGKILLed many times, at random moments and,
  every other time, just after a write began: every time, the checkpoint loads as a complete
  old-or-new state, a restarted writer continues from it, and the temporary files a killed write
  leaves never break the next load or write.
* ``deapnn gls|nlfs|evomal --resume`` on a truncated, garbage or tampered (code-carrying)
  checkpoint: one-line error, exit 2, the code never runs.
* NLFS end to end: a ``--workers 2`` SCOOP run (launcher, origin, workers) is SIGKILLed mid-search
  and resumed with ``--workers 2``; the result equals an uninterrupted *serial* run with the same
  seed and batch (W = 2), which is also the worker-independence acceptance test for NLFS.
  (GLS and EvoMAL kill + resume: tests/test_gls_resume.py, tests/test_evomal_cli.py.)
"""
import glob
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import pytest
import torch

from deapnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from deapnn.cli import main

from test_scale import REPO, run_group, scoop_env
from test_supervised import _session

N_KILLS = 16
SIZE = 1_500_000               # float32s per tensor: ~12 MB a checkpoint, a write takes a while


def _writer(path, ready):
    """Child process: resume from ``path`` (if any), set ``ready``, keep writing step+1, …"""
    try:
        step = load_checkpoint(path)["step"]
    except CheckpointError:
        step = 0
    ready.set()
    while True:
        step += 1
        save_checkpoint(path, {"step": step, "a": torch.full((SIZE,), float(step)),
                               "b": [torch.full((SIZE // 4,), -float(step)), {"step": step}]})


def test_sigkill_during_checkpoint_writes_leaves_old_or_new_state(tmp_path):
    path = str(tmp_path / "checkpoint.pt")
    rng = random.Random(7)
    last, mid_write = 0, 0
    # spawned, not forked: this process has torch's threads, and fork() with threads can deadlock
    ctx = multiprocessing.get_context("spawn")
    for i in range(N_KILLS):
        before = set(glob.glob(str(tmp_path / ".ckpt-*")))
        ready = ctx.Event()
        writer = ctx.Process(target=_writer, args=(path, ready), daemon=True)
        writer.start()
        assert ready.wait(60), "the writer did not start"
        deadline = time.monotonic() + 30
        if i % 2 == 0:                                     # at a random moment (after the
            while not os.path.exists(path) and time.monotonic() < deadline:   # first write)
                time.sleep(0.001)
            time.sleep(rng.uniform(0.05, 0.6))
        else:                                              # once a write has begun
            while (set(glob.glob(str(tmp_path / ".ckpt-*"))) <= before
                   and time.monotonic() < deadline):
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.005))
        writer.kill()
        writer.join(10)
        debris = set(glob.glob(str(tmp_path / ".ckpt-*"))) - before
        mid_write += bool(debris)                          # killed inside save_checkpoint
        state = load_checkpoint(path)                      # complete, never torn
        step = state["step"]
        assert step >= last                                # never goes back
        assert torch.equal(state["a"], torch.full((SIZE,), float(step)))
        assert torch.equal(state["b"][0], torch.full((SIZE // 4,), -float(step)))
        assert state["b"][1] == {"step": step}
        last = step
    assert last > 0
    assert mid_write >= N_KILLS // 4, f"only {mid_write} kills landed inside a write"
    # the leftover temporary files do not get in the way of a fresh write and load
    save_checkpoint(path, {"step": -1})
    assert load_checkpoint(path) == {"step": -1}
    print(f"\n{N_KILLS} SIGKILLs, {mid_write} inside a checkpoint write, last step {last}")


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {_Evil.marker}",))


def _bad_checkpoints(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"step": 3, "w": torch.randn(1000)})
    blob = good.read_bytes()
    _Evil.marker = str(tmp_path / "PWNED")
    evil = tmp_path / "evil.pt"
    torch.save({"format": "deapnn-checkpoint-1", "state": {"x": _Evil()}}, evil)
    return {"truncated": blob[: len(blob) // 2], "garbage": os.urandom(4096),
            "tampered": evil.read_bytes()}


def _make_run(kind, out):
    from deapnn.rundir import RunDir
    if kind == "gls":
        from deapnn.gls import GLSConfig
        cfg = GLSConfig(dataset="iris", model="mlp", epochs=1, population_size=2, arms=[],
                        seeds=[0])
        RunDir(out, {"command": "gls", "gls": asdict(cfg)})
        return out / "gls" / "seed0" / "checkpoint.pt"
    if kind == "nlfs":
        from deapnn.nlfs import NLFSConfig
        cfg = NLFSConfig(dataset="iris", population_size=3, pool=4, cycles=2, sample_size=2,
                         budget=5, seeds=[], top=1)
        RunDir.create(out, "nlfs", cfg, device="cpu")
        return out / "checkpoint.pt"
    from deapnn.evomal.config import EvoMALRunConfig
    RunDir.create(out, "evomal", EvoMALRunConfig(dataset="iris", population_size=2, generations=1),
                  device="cpu")
    return out / "checkpoint.pt"


@pytest.mark.parametrize("kind", ["gls", "nlfs", "evomal"])
def test_resume_from_bad_checkpoint_is_one_line_exit_2(kind, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEAPNN_DEVICE", "cpu")
    for name, data in _bad_checkpoints(tmp_path).items():
        out = tmp_path / f"{kind}-{name}"
        ckpt = _make_run(kind, out)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_bytes(data)
        code = main([kind, "--resume", str(out), "--quiet", "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert len(err.splitlines()) == 1 and err.startswith("deapnn: error: checkpoint"), err
        assert "corrupt or unsafe" in err, err
        assert ckpt.read_bytes() == data, "the bad checkpoint was overwritten"
        assert not os.path.exists(_Evil.marker), "code in a checkpoint was executed"


NLFS = ["nlfs", "--dataset", "iris", "--population-size", "3", "--pool", "4", "--cycles", "8",
        "--sample-size", "2", "--budget", "30", "--seeds", "none", "--top", "1", "--device", "cpu",
        "--seed", "3", "--quiet"]


def _nlfs_cycle(path):
    try:
        state = load_checkpoint(path)
    except CheckpointError:
        return -1
    return state["evo"]["cycle"] if state.get("phase") == "evolve" else -1


def test_nlfs_scoop_run_killed_then_resumed_equals_serial(tmp_path):
    env = scoop_env(tmp_path)
    serial, killed = tmp_path / "serial", tmp_path / "killed"
    rc, out, err = run_group([sys.executable, "-m", "deapnn", *NLFS, "--batch", "2",
                              "--out", str(serial)], env)
    assert rc == 0, err[-3000:]

    cmd = [sys.executable, "-m", "deapnn", *NLFS, "--workers", "2", "--out", str(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 150
    while (_nlfs_cycle(killed / "checkpoint.pt") < 2 and proc.poll() is None
           and time.time() < deadline):
        time.sleep(0.02)
    alive = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)              # deapnn, launcher, origin, workers, broker
    for pid in _session(proc.pid):                   # at once, as a crash of the machine would
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    stopped = _nlfs_cycle(killed / "checkpoint.pt")
    assert alive and 2 <= stopped < 8, f"not killed mid-search (cycle {stopped})"
    assert not (killed / "results.json").exists()

    rc, out, err = run_group([sys.executable, "-m", "deapnn", "nlfs", "--resume", str(killed),
                              "--workers", "2", "--quiet"], env)
    assert rc == 0, err[-3000:]
    assert "nlfs_1" in out                          # the origin's stdout reaches the caller
    a = json.loads((serial / "results.json").read_text())
    b = json.loads((killed / "results.json").read_text())
    assert b["config"]["batch"] == a["config"]["batch"] == 2
    assert b["best"] == a["best"]                   # same best loss, same fitness, exactly
    assert (killed / "logbook.csv").read_text() == (serial / "logbook.csv").read_text()


def test_exit_code_and_error_line_come_back_through_scoop(tmp_path):
    """SCOOP's launcher exits 0 whatever its program returns; ``--workers`` still gives the
    command's own exit code (here 2: a corrupt checkpoint found inside the SCOOP origin)."""
    out = tmp_path / "run"
    _make_run("nlfs", out).write_bytes(b"PK\x03\x04 not a checkpoint")
    rc, stdout, err = run_group([sys.executable, "-m", "deapnn", "nlfs", "--resume", str(out),
                                 "--workers", "2", "--quiet", "--device", "cpu"],
                                scoop_env(tmp_path))
    assert rc == 2, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("deapnn: error:")]
    assert len(lines) == 1 and "corrupt or unsafe" in lines[0], err[-3000:]
    assert "Traceback" not in err
    assert not list(tmp_path.glob(".deapnn-exit-*")) and not list(REPO.glob(".deapnn-exit-*"))


@pytest.mark.parametrize("command,section,bad", [
    ("gls", "gls", {"epochs": "many"}), ("gls", "gls", {"no_such_field": 1}),
    ("nlfs", "nlfs", {"population_size": -3}), ("gls", "nlfs", {}),
])
def test_resume_with_an_invalid_stored_config_is_one_line_exit_2(tmp_path, capsys, command,
                                                                  section, bad):
    import json

    from deapnn.cli import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"command": section, section: bad}))
    assert main([command, "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deapnn: error: cannot resume")


@pytest.mark.parametrize("command", ["gls", "nlfs", "evomal", "train"])
@pytest.mark.parametrize("text", ['{"command": "gls", "gls": {', "[1, 2]", "\x00\xff",
                                  '{"a": ' + "[" * 100_000])
def test_resume_with_an_unreadable_config_json_is_one_line_exit_2(tmp_path, capsys, command,
                                                                  text):
    from deapnn.cli import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(text, encoding="latin-1")
    assert main([command, "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deapnn: error: cannot resume"), err
    assert (run / "config.json").read_text(encoding="latin-1") == text   # left as it was
