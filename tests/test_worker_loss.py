"""A dead SCOOP worker never hangs a run (issue 14 item 5).

SCOOP 0.7's broker dies with ``ZMQError: Host unreachable`` the first time it hands a task to a
worker that was SIGKILLed, and ``futures.map`` then waits forever. ``deapnn.parallel.ScoopMap``
(``get_map()`` under SCOOP) bounds that wait by ``--worker-timeout`` and evaluates what the
workers did not return in the origin.

* ``ScoopMap`` with stand-in SCOOP plumbing: input order, the origin's share, the timeout path,
  errors raised in input order;
* real ``python -m scoop -n 2``: the worker is SIGKILLed at a random moment, ≥ 10 times; every
  run finishes within the bound with exactly the serial results;
* ``deapnn nlfs --workers 2 --worker-timeout 5``: the worker killed mid-search, the run finishes
  and equals the serial run.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deapnn.parallel import ScoopMap
from test_scale import REPO, run_group, scoop_env

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import scoop_loss_script as loss  # noqa: E402


# --- ScoopMap on stand-in plumbing --------------------------------------------------------------

class _Fut:
    def __init__(self, value=None, exc=None, ends=True):
        self.resultValue, self.exceptionValue, self.ends = value, exc, ends

    def _ended(self):
        return self.ends

    def _delete(self):
        pass


def _fake(monkeypatch, m, remote=1, answers=True):
    """``m`` with ``remote`` stand-in workers: every submitted item is done at once (``answers``)
    or never (a dead worker)."""
    sent = []

    def submit(func, args):
        sent.append(args[0])
        if not answers:
            return _Fut(ends=False)
        try:
            return _Fut(value=("remote", func(*args)))
        except Exception as exc:                    # noqa: BLE001
            return _Fut(exc=exc)
    monkeypatch.setattr(m, "_remote_workers", staticmethod(lambda: remote))
    monkeypatch.setattr(m, "_submit", staticmethod(submit))
    monkeypatch.setattr(m, "_pump", staticmethod(lambda futs, ms: time.sleep(ms / 1000)))
    return sent


def test_results_in_input_order_and_the_origin_takes_its_share(monkeypatch):
    m = ScoopMap(timeout=5, log=lambda t: None)
    sent = _fake(monkeypatch, m, remote=2)
    out = m(lambda x: x * 10, range(9))
    assert [v if isinstance(v, int) else v[1] for v in out] == [x * 10 for x in range(9)]
    origin = [i for i, v in enumerate(out) if isinstance(v, int)]
    assert origin and len(sent) + len(origin) == 9 and set(sent).isdisjoint(origin)
    assert not m.lost


def test_lost_workers_bounded_by_the_timeout_then_evaluated_here(monkeypatch):
    said = []
    m = ScoopMap(timeout=0.3, log=said.append)
    sent = _fake(monkeypatch, m, remote=1, answers=False)
    started = time.monotonic()
    assert m(lambda x: x + 1, [1, 2, 3, 4, 5]) == [2, 3, 4, 5, 6]
    assert time.monotonic() - started < 3
    assert m.lost and len(said) == 1
    assert "0.3 s" in said[0] and "--worker-timeout" in said[0] and "--resume" in said[0]
    assert sent                                   # something really was out when it gave up
    # the rest of the run is evaluated here at once, no second wait
    sent.clear()
    started = time.monotonic()
    assert m(lambda x: -x, [1, 2, 3]) == [-1, -2, -3]
    assert not sent and time.monotonic() - started < 0.2 and len(said) == 1


def test_an_error_is_raised_for_the_first_failing_item_after_all_ran(monkeypatch):
    m = ScoopMap(timeout=5, log=lambda t: None)
    _fake(monkeypatch, m, remote=1)
    seen = []

    def f(x):
        seen.append(x)
        if x in (3, 5):
            raise ValueError(f"bad {x}")
        return x
    with pytest.raises(ValueError, match="bad 3"):
        m(f, range(7))
    assert sorted(seen) == list(range(7))


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "inf"])
@pytest.mark.parametrize("command", ["gls", "nlfs", "evomal"])
def test_bad_worker_timeout_is_one_line_exit_2(command, bad, capsys, monkeypatch):
    from deapnn.cli import main
    monkeypatch.delenv("DEAPNN_WORKER_TIMEOUT", raising=False)
    assert main([command, "--worker-timeout", bad, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deapnn: error: --worker-timeout"), err


def test_worker_timeout_reaches_the_map(monkeypatch):
    from deapnn.commands.common import check_common
    from deapnn.cli import build_parser
    from deapnn.parallel import worker_timeout
    monkeypatch.setenv("DEAPNN_WORKER_TIMEOUT", "")          # restored after the test
    assert worker_timeout() == 3600.0
    check_common(build_parser().parse_args(["gls", "--worker-timeout", "7.5"]))
    assert worker_timeout() == 7.5 and ScoopMap().timeout == 7.5


# --- real python -m scoop -n 2, the worker SIGKILLed --------------------------------------------

N_KILLS = 5                          # the CLI's default-settings kills: tests/test_supervised.py
MAPS, ITEMS = 25, 4                  # ~100 evaluations of 0.04 s: a couple of seconds a run
WORKER_TIMEOUT = 2.0
BOUND = 45.0                         # start-up + the work + the timeout, slack for 2 busy cores


def _kill_one_run(tmp_path, k, rng):
    piddir = tmp_path / f"pids{k}"
    piddir.mkdir()
    env = scoop_env(tmp_path, LOSS_PIDDIR=str(piddir), DEAPNN_WORKER_TIMEOUT=str(WORKER_TIMEOUT))
    cmd = [sys.executable, "-m", "scoop", "-n", "2", str(HERE / "scoop_loss_script.py"),
           str(MAPS), str(ITEMS)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    while not os.listdir(piddir) and proc.poll() is None and time.monotonic() - started < BOUND:
        time.sleep(0.01)                          # the worker is up and evaluating
    time.sleep(rng.uniform(0.0, 1.5))             # a random moment of the run
    victims = [int(p) for p in os.listdir(piddir)]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        out, err = proc.communicate(timeout=max(1.0, BOUND - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"kill {k}: hung past {BOUND} s\n{err[-3000:]}") from None
    return proc.returncode, out, err, time.monotonic() - started, victims


def test_sigkill_a_worker_at_random_moments_never_hangs(tmp_path):
    rng = random.Random(14)
    want = loss.expected(MAPS, ITEMS)
    gave_up = 0
    for k in range(N_KILLS):
        rc, out, err, seconds, victims = _kill_one_run(tmp_path, k, rng)
        assert victims, f"kill {k}: the worker never evaluated\n{err[-2000:]}"
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert rc == 0 and lines, f"kill {k}: rc {rc}\n{err[-3000:]}"
        res = json.loads(lines[-1])
        assert res["results"] == want, f"kill {k}: results differ from the serial map"
        assert seconds < BOUND
        if res["lost"]:
            gave_up += 1
            assert "deapnn: warning: no evaluation came back from the SCOOP workers for 2 s" \
                in err, err[-2000:]
    print(f"\n{N_KILLS} SIGKILLs, every run finished with the serial results; "
          f"{gave_up} hit --worker-timeout")
    assert gave_up >= N_KILLS // 2, "the kills should mostly land while a future was out"


# --- the CLI: deapnn nlfs --workers 2, worker killed mid-search -----------------------------------

NLFS = ["nlfs", "--dataset", "iris", "--population-size", "3", "--pool", "4", "--cycles", "6",
        "--sample-size", "2", "--budget", "30", "--seeds", "none", "--top", "1", "--device", "cpu",
        "--seed", "3", "--quiet"]


def _worker_pids(session):
    """Non-origin SCOOP workers of the process session ``session`` (Linux /proc)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.getsid(int(p)) != session:
                continue
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"scoop.bootstrap.__main__" in argv and b"--origin" not in argv:
            pids.append(int(p))
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker through /proc")
def test_nlfs_workers_2_with_the_worker_killed_finishes_like_serial(tmp_path):
    env = scoop_env(tmp_path)
    serial, killed = tmp_path / "serial", tmp_path / "killed"
    rc, _, err = run_group([sys.executable, "-m", "deapnn", *NLFS, "--batch", "2",
                            "--out", str(serial)], env)
    assert rc == 0, err[-3000:]
    cmd = [sys.executable, "-m", "deapnn", *NLFS, "--workers", "2", "--worker-timeout", "5",
           "--out", str(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)                          # the search is under way
    victims = _worker_pids(proc.pid)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"hung after the worker was killed\n{err[-3000:]}") from None
    assert victims, "no worker found to kill"
    assert proc.returncode == 0, err[-3000:]
    a = json.loads((serial / "results.json").read_text())
    b = json.loads((killed / "results.json").read_text())
    assert b["best"] == a["best"]
    assert (killed / "logbook.csv").read_text() == (serial / "logbook.csv").read_text()
