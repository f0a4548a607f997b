"""Suite-wide settings: one torch thread (CI has 2 cores and tiny models oversubscribe badly)."""
import os
import signal
import sys

import pytest
import torch

# A suite started under nohup would hand its ignored SIGHUP to every deapnn it starts, and deapnn
# keeps a signal it was started ignoring (deapnn.signals): the signal tests need the default.
if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
os.environ.setdefault("DEAPNN_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*argv)`` → (exit code, stdout, stderr) of ``deapnn.cli.main`` in this process, with
    the device choice and the per-evaluation time limit it may export kept local to the test."""
    import deapnn.runtime as runtime
    from deapnn.cli import main
    monkeypatch.setattr(runtime, "_DEVICE", None)
    monkeypatch.setattr(runtime, "_REQUESTED", None)
    monkeypatch.setenv("DEAPNN_DEVICE", "cpu")
    monkeypatch.delenv("DEAPNN_EVAL_TIMEOUT", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)

    def run(*argv):
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small trainings compared figure for figure), the
    thread count restored after."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# The modules that take longest (tens of seconds each, mostly subprocess runs) go first, so that
# with `make test`'s two processes (--dist loadfile) none of them starts last and runs alone.
LONGEST_FIRST = ("test_multihost.py", "test_worker_loss.py", "test_kill_resume.py",
                 "test_examples_toolbox.py", "test_scale_equality.py", "test_supervised.py",
                 "test_shadowing.py", "test_examples.py", "test_gls_resume.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))    # stable: order kept
