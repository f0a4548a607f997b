"""SIGTERM and SIGHUP end a command in one line, whenever they come (issue 23, item 11;
``deapnn.signals``).

* during start-up, while torch is being imported: ``deapnn: terminated`` and exit 143 (SIGHUP:
  ``deapnn: terminated (SIGHUP)``, 129), never a silent death by the signal;
* repeated: a second SIGTERM 0.2 s after the first, or five 20 ms apart, in the middle of a run
  — one line, exit 143, no traceback, ``--resume`` hinted;
* ``main()`` called inside another program puts its signal handlers back.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_scale import REPO

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
NLFS = ["nlfs", "--dataset", "iris", "--population-size", "3", "--pool", "4", "--cycles", "200",
        "--sample-size", "2", "--budget", "30", "--seeds", "none", "--top", "1", "--device", "cpu",
        "--seed", "3", "--quiet"]


def _start(tmp_path, *argv):
    env = dict(os.environ, OMP_NUM_THREADS="1", DEAPNN_DEVICE="cpu", PYTHONPATH=str(REPO))
    err = open(tmp_path / "err", "w")
    return subprocess.Popen([sys.executable, "-m", "deapnn", *argv], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def _lines(tmp_path):
    text = (tmp_path / "err").read_text()
    assert "Traceback" not in text, text[-3000:]
    return [line for line in text.splitlines() if line.strip()]


def _end(proc):
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="watches the import through /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_start_up_is_one_line(tmp_path, signum):
    proc = _start(tmp_path, *NLFS, "--out", str(tmp_path / "run"))
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if "torch" in maps.read_text():       # torch is being imported: start-up
                break
        except OSError:
            pass
        time.sleep(0.005)
    os.kill(proc.pid, signum)
    assert _end(proc) == 128 + signum, _lines(tmp_path)
    name = "" if signum == signal.SIGTERM else " (SIGHUP)"
    assert _lines(tmp_path) == [f"deapnn: terminated{name}"]


@pytest.mark.parametrize("count,gap", [(2, 0.2), (5, 0.02)])
def test_repeated_sigterm_in_a_run_is_one_line(tmp_path, count, gap):
    run = tmp_path / "run"
    proc = _start(tmp_path, *NLFS, "--out", str(run))
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)                           # the search is under way
    assert proc.poll() is None, _lines(tmp_path)
    for _ in range(count):
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(gap)
    assert _end(proc) == 143, _lines(tmp_path)
    assert _lines(tmp_path) == [f"deapnn: terminated, resume with --resume {run}"]


def test_main_in_another_program_puts_its_handlers_back(capsys):
    from deapnn.cli import main
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    assert main(["defaults"]) == 0
    capsys.readouterr()
    assert {s: signal.getsignal(s) for s in before} == before
