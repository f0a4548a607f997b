"""Every way out of a ``--workers N`` run takes its SCOOP processes down, and a dead worker is
known in seconds (issue 23, items 6 and 7; ``deapnn.heartbeat``).

* the real command line, ``deapnn nlfs --workers 2`` with default settings: a SIGKILLed worker
  ends the run within seconds (not ``--worker-timeout``'s hour) with the serial results and one
  line naming it; SIGTERM or SIGKILL of the deapnn process of a ``--hostfile`` run leaves no
  process and no ``.deapnn-exit-*`` file behind;
* a torch-free stand-in (``tests/supervised_script.py``: the same supervisor, launcher and
  ``ScoopMap``, started in about a second) for every other way out: SIGTERM, SIGHUP and repeated
  SIGTERMs to the deapnn process, SIGKILL of it or of SCOOP's launcher, a worker SIGKILLed —
  each ends with one line and leaves no process of its session alive.

Processes are found by session (each run is started in a session of its own): no process this
test did not start is ever signalled.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_scale import REPO, scoop_env

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds processes in /proc")
HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "supervised_script.py"


def _session(sid):
    """{pid: argv} of the live (not zombie) processes of session ``sid`` (Linux; else none)."""
    found = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not name.isdigit():
            continue
        try:
            if os.getsid(int(name)) != sid:
                continue
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            argv = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if state != b"Z":
            found[int(name)] = argv
    return found


def _left_behind(sid, within):
    """What of session ``sid`` is still alive ``within`` seconds from now (then SIGKILLed)."""
    deadline = time.monotonic() + within
    while _session(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _session(sid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


class _Run:
    """``cmd`` in a session of its own, its output in files (an orphan holding a pipe must not
    hang the test)."""

    def __init__(self, cmd, env, tmp_path, name, cwd=REPO):
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err,
                                         start_new_session=True)
        self.sid = self.proc.pid

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def processes(self, marker):
        return [p for p, argv in _session(self.sid).items() if marker(argv)]

    def stderr(self):
        return self.err.read_text()


def _is_worker(argv):
    return "scoop.bootstrap" in argv and "--origin" not in argv


def _is_launcher(argv):
    return "deapnn.commands.scoop_launch" in argv


# --- the stand-in --------------------------------------------------------------------------

def _stand_in(tmp_path, name, maps=60, items=4):
    piddir = tmp_path / f"{name}-pids"
    piddir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), LOSS_PIDDIR=str(piddir), OMP_NUM_THREADS="1")
    env.pop("DEAPNN_WORKER_TIMEOUT", None)                       # default settings
    run = _Run([sys.executable, str(SCRIPT), "top", str(maps), str(items)], env, tmp_path, name)
    deadline = time.monotonic() + 60
    while not os.listdir(piddir) and run.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)                                          # a worker is evaluating
    assert os.listdir(piddir), f"no worker evaluated\n{run.stderr()[-2000:]}"
    return run, [int(p) for p in os.listdir(piddir)]


def _one_line(err, start):
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith(start), err[-3000:]
    return lines[0]


def test_a_killed_worker_is_known_in_seconds(tmp_path):
    run, workers = _stand_in(tmp_path, "kill-worker", maps=24)
    os.kill(workers[0], signal.SIGKILL)
    killed = time.monotonic()
    rc = run.wait(30)
    seconds = time.monotonic() - killed
    left = _left_behind(run.sid, 10)
    assert rc == 0, run.stderr()[-3000:]
    res = json.loads(run.out.read_text().splitlines()[-1])
    assert res["results"] == [[x * x for x in range(g * 100, g * 100 + 4)] for g in range(24)]
    assert res["lost"] is True
    _one_line(run.stderr(), f"deapnn: warning: SCOOP worker {workers[0]} on ")
    assert seconds < 15 and not left, (seconds, left)


@pytest.mark.parametrize("how", ["TERM", "HUP", "TERMx5", "KILL", "KILL launcher"])
def test_every_way_out_ends_every_process(tmp_path, how):
    run, _ = _stand_in(tmp_path, how.replace(" ", "-"))
    if how == "KILL launcher":
        launcher = run.processes(_is_launcher)
        assert launcher
        os.kill(launcher[0], signal.SIGKILL)
    elif how == "TERMx5":
        for _ in range(5):
            os.kill(run.proc.pid, signal.SIGTERM)
            time.sleep(0.02)
    else:
        os.kill(run.proc.pid, getattr(signal, "SIG" + how))
    rc = run.wait(40)
    left = _left_behind(run.sid, 15)
    err = run.stderr()
    assert not left, f"{how}: left behind {left}\n{err[-2000:]}"
    if how == "KILL":              # the origin, losing its deapnn process, stops the run
        assert rc == -signal.SIGKILL
        _one_line(err, "deapnn: error: the deapnn process that started this SCOOP run")
    elif how == "KILL launcher":
        assert rc == 1, err[-2000:]
        assert "was killed by SIGKILL" in _one_line(err, "deapnn: error: the SCOOP launcher (pid")
    else:
        name = "SIGHUP" if how == "HUP" else "SIGTERM"
        assert rc == 128 + getattr(signal, name), err[-2000:]
        _one_line(err, f"deapnn: terminated ({name})")     # the origin's line, once


def _client(sup, hello):
    import socket
    sock = socket.create_connection(("127.0.0.1", sup.port), timeout=5)
    sock.sendall(hello.encode() + b"\n")
    return sock


def _lines_from(sock, until, seconds=10):
    got, deadline = b"", time.monotonic() + seconds
    while until not in got and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got.decode().splitlines()


def test_supervisor_tells_the_origin_of_a_worker_gone_or_silent():
    from deapnn.heartbeat import Supervisor
    sup = Supervisor(silent_after=1.5)
    try:
        stranger = _client(sup, "hello wrong-token worker 1 h")
        assert _lines_from(stranger, b"beat", 5) == []              # dropped, never answered
        origin = _client(sup, f"hello {sup.token} origin 10 here")
        gone = _client(sup, f"hello {sup.token} worker 11 there")
        quiet = _client(sup, f"hello {sup.token} worker 12 far")    # says nothing more
        _lines_from(origin, b"beat")
        gone.close()                                                # its process ended
        assert "lost SCOOP worker 11 on there exited" in _lines_from(origin, b"11 on")
        said = _lines_from(origin, b"12 on", 6)                      # silent for 1.5 s
        assert "lost SCOOP worker 12 on far stopped answering for 1.5 s (its host " \
               "unreachable?)" in said
        origin.sendall(b"exit 3\n")
        assert sup.wait(5) and sup.exit_code == 3
        quiet.close()
    finally:
        sup.close()


def test_the_map_gives_the_pool_up_as_soon_as_a_worker_is_gone(monkeypatch):
    from deapnn import heartbeat
    from deapnn.parallel import ScoopMap
    from test_worker_loss import _fake
    said = []
    m = ScoopMap(timeout=3600, log=said.append)
    _fake(monkeypatch, m, remote=1, answers=False)                 # its futures never come back
    monkeypatch.setitem(heartbeat._WATCH, "lost", "SCOOP worker 7 on h exited")
    monkeypatch.setitem(heartbeat._WATCH, "said", False)
    started = time.monotonic()
    assert m(lambda x: x + 1, [1, 2, 3, 4]) == [2, 3, 4, 5]
    assert time.monotonic() - started < 2 and m.lost
    assert len(said) == 1 and said[0].startswith(
        "deapnn: warning: SCOOP worker 7 on h exited: evaluating the rest of this run"), said
    assert heartbeat._WATCH["said"]                                 # nothing more at the end


def test_the_brokers_host_unreachable_is_no_traceback(capsys):
    import zmq

    from deapnn.commands.scoop_launch import _broker_died

    def args(exc):
        return threading.ExceptHookArgs((type(exc), exc, None, None))
    _broker_died(args(zmq.ZMQError(errno.EHOSTUNREACH)))
    assert capsys.readouterr().err == ""                          # the origin says what happened
    _broker_died(args(zmq.ZMQError(errno.EINVAL)))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("deapnn: warning: SCOOP's broker stopped:")


@pytest.mark.parametrize("var,value,argv", [
    ("DEAPNN_WORKER_TIMEOUT", "abc", ["nlfs", "--workers", "2"]),
    ("DEAPNN_WORKER_TIMEOUT", "-1", ["gls", "--workers", "2"]),
    ("DEAPNN_THREADS", "abc", ["train", "--dataset", "iris", "--model", "mlp", "--epochs", "1"]),
    ("DEAPNN_THREADS", "0", ["nlfs", "--dataset", "iris"]),
    ("DEAPNN_EVAL_TIMEOUT", "abc", ["gls", "--dataset", "iris", "--model", "mlp", "--epochs", "1",
                                    "--population-size", "2", "--compare", "none"]),
    ("DEAPNN_WORKER_SLOT", "x", ["evomal", "--workers", "2"]),
])
def test_a_bad_environment_variable_is_one_line_exit_2(tmp_path, monkeypatch, capsys, var,
                                                       value, argv):
    from deapnn.cli import main
    monkeypatch.setenv(var, value)
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"deapnn: error: environment variable {var}={value!r}: expected "), err
    assert os.listdir(tmp_path) == []                         # refused before any work


# --- the real command line -------------------------------------------------------------------

NLFS = ["nlfs", "--dataset", "iris", "--population-size", "3", "--pool", "4", "--cycles", "30",
        "--sample-size", "2", "--budget", "30", "--seeds", "none", "--top", "1", "--device", "cpu",
        "--seed", "3", "--quiet", "--workers", "2"]


def _cli(tmp_path, name, *extra, cwd=REPO):
    env = scoop_env(tmp_path)
    env.pop("DEAPNN_WORKER_TIMEOUT", None)                        # default settings
    out = tmp_path / name
    run = _Run([sys.executable, "-m", "deapnn", *NLFS, *extra, "--out", str(out)], env,
               tmp_path, name, cwd=cwd)
    deadline = time.monotonic() + 180
    while not (out / "checkpoint.pt").exists() and run.proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)                                          # the search is under way
    assert run.proc.poll() is None, f"ended early\n{run.stderr()[-3000:]}"
    return run


def test_cli_worker_sigkilled_with_default_settings_ends_within_seconds(tmp_path):
    run = _cli(tmp_path, "killed")
    workers = run.processes(_is_worker)
    assert workers, "no worker to kill"
    os.kill(workers[0], signal.SIGKILL)
    killed = time.monotonic()
    rc = run.wait(60)
    seconds = time.monotonic() - killed
    left = _left_behind(run.sid, 10)
    err = run.stderr()
    assert rc == 0, f"rc {rc} {seconds:.0f} s after the kill\n{err[-3000:]}"
    _one_line(err, f"deapnn: warning: SCOOP worker {workers[0]} on ")
    assert not left, left
    assert json.loads((tmp_path / "killed" / "results.json").read_text())["best"]


@pytest.mark.parametrize("how", ["TERM", "KILL"])
def test_cli_signal_to_a_hostfile_run_leaves_nothing_behind(tmp_path, how):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("127.0.0.1 2\n")
    work = tmp_path / "cwd"
    work.mkdir()
    run = _cli(tmp_path, how, "--cycles", "300", "--hostfile", str(hostfile), cwd=work)
    assert run.processes(_is_worker)
    os.kill(run.proc.pid, getattr(signal, "SIG" + how))
    rc = run.wait(40)
    left = _left_behind(run.sid, 10)
    err = run.stderr()
    assert not left, f"{how}: left behind {left}\n{err[-2000:]}"
    assert not [p.name for p in work.iterdir() if p.name.startswith(".deapnn")]
    if how == "TERM":
        assert rc == 143
        _one_line(err, f"deapnn: terminated, resume with --resume {tmp_path / how}")
