"""A run directory says what it ran on (issue 24, item 3): ``environment.json`` in every command's
run directory, the versions and settings recorded equal this process's, ``--resume`` on a
machine whose numerics differ continues with one warning line naming what differs, ``deapnn
report`` shows it, and a missing, corrupt or hostile ``environment.json`` is handled like the
run's other files (one error line naming it, never a traceback or a hang)."""
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import types
from argparse import Namespace
from importlib import metadata

import numpy
import pytest
import torch

import deapnn
from deapnn import environment
from deapnn.cli import main
from deapnn.environment import ENVIRONMENT_FILE, RELEVANT, collect, git_commit, record
from deapnn.results import SCHEMA_VERSION

TRAIN = ["train", "--dataset", "iris", "--model", "mlp", "--epochs", "1", "--quiet"]
RUNS = {
    "train": TRAIN,
    "gls": ["gls", "--dataset", "iris", "--model", "mlp", "--population-size", "2", "--epochs",
            "1", "--compare", "none", "--seeds", "0", "--quiet"],
    "nlfs": ["nlfs", "--dataset", "iris", "--model", "mlp", "--population-size", "2", "--cycles",
             "1", "--sample-size", "2", "--pool", "3", "--budget", "10", "--seeds", "0-0",
             "--final-steps", "10", "--top", "1", "--quiet"],
    "evomal": ["evomal", "--dataset", "diabetes", "--population-size", "2", "--generations", "1",
               "--meta-steps", "1", "--fitness-steps", "10", "--rejection-steps", "20",
               "--seeds", "0-0", "--final-steps", "10", "--quiet"],
}
COMPARE = ["--seeds", "0-0", "--tune-seeds", "0-0", "--lr-grid", "1", "--quiet"]
FIFO_TIMEOUT = 30


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``runs(kind)``: a finished tiny run of ``kind`` made by the command line (once)."""
    root = tmp_path_factory.mktemp("env")

    def get(kind):
        run = root / kind
        if not (run / "config.json").exists():
            assert main([*RUNS[kind], "--device", "cpu", "--out", str(run)]) == 0
        return run
    return get


def _stored(run):
    return json.loads((run / ENVIRONMENT_FILE).read_text())


def _unfinished_train(runs, tmp_path, edit=None):
    """A copy of the train run without its results (``--resume`` runs it to its end), its
    ``environment.json`` changed by ``edit(data)``."""
    run = tmp_path / "run"
    shutil.copytree(runs("train"), run)
    (run / "results.json").unlink()
    if edit:
        data = _stored(run)
        edit(data)
        (run / ENVIRONMENT_FILE).write_text(json.dumps(data))
    return run


def _warnings(err):
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("deapnn: warning:")]


# --- what is recorded ----------------------------------------------------------------------------
def test_the_recorded_versions_and_settings_are_this_process(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        env = collect(torch.device("cpu"), hosts=["node1", "node2"], workers=4)
    finally:
        torch.set_num_threads(threads)
    assert env == json.loads(json.dumps(env))                 # plain JSON
    assert (env["torch"], env["numpy"], env["deapnn"]) == (torch.__version__, numpy.__version__,
                                                           deapnn.__version__)
    assert env["python"] == platform.python_version()
    for package in ("torchvision", "deap", "scoop"):
        assert env[package] == metadata.version(package)
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["threads"] == 3 and env["cudnn_benchmark"] is True
    assert env["deterministic_algorithms"] is torch.are_deterministic_algorithms_enabled()
    assert env["cudnn_deterministic"] is False
    assert env["device"] == "cpu" and env["gpu"] is None and env["cuda"] is None
    assert env["hostname"] == socket.gethostname() and env["hosts"] == ["node1", "node2"]
    assert env["workers"] == 4 and env["schema_version"] == SCHEMA_VERSION
    if os.path.exists("/proc/cpuinfo"):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")]
        assert env["cpu"] == (names[0] if names else env["cpu"])
    assert set(RELEVANT) <= set(env)


def test_deterministic_algorithms_are_recorded():
    torch.use_deterministic_algorithms(True)
    try:
        assert collect(torch.device("cpu"))["deterministic_algorithms"] is True
    finally:
        torch.use_deterministic_algorithms(False)


def test_a_cpu_run_never_probes_cuda(monkeypatch):
    def touched(*args):
        raise AssertionError("CUDA probed for a CPU run")
    monkeypatch.setattr(torch.cuda, "get_device_properties", touched)
    monkeypatch.setattr(torch.backends.cudnn, "version", touched)
    assert collect(torch.device("cpu"))["gpu"] is None
    code = ("import torch; from deapnn.environment import collect; collect(); "
            "print(torch.cuda.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "DEAPNN_DEVICE": "cpu",
                                           "PYTHONPATH": os.getcwd()})
    assert out.stdout.strip() == "False", out.stderr


def test_a_cuda_run_records_its_gpu(monkeypatch):
    props = types.SimpleNamespace(name="Fake H100", major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(environment, "_nvidia_driver", lambda: "550.54.15")
    env = collect(torch.device("cuda", 0))
    assert (env["device"], env["gpu"], env["gpu_capability"]) == ("cuda:0", "Fake H100", "9.0")
    assert (env["cuda"], env["cudnn"], env["gpu_driver"]) == (torch.version.cuda, 90100,
                                                              "550.54.15")

    def absent(device):
        raise RuntimeError("no CUDA GPUs are available")
    monkeypatch.setattr(torch.cuda, "get_device_properties", absent)
    assert collect(torch.device("cuda", 0))["gpu"] == "unknown (RuntimeError)"


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("layout", ["branch", "packed", "detached", "worktree", "none",
                                    "garbage"])
def test_the_git_commit_is_read_from_a_checkout(tmp_path, layout):
    git = tmp_path / ".git"
    if layout != "none":
        (git / "refs/heads").mkdir(parents=True)
    if layout in ("branch", "packed", "worktree"):
        (git / "HEAD").write_text("ref: refs/heads/main\n")
    if layout == "branch":
        (git / "refs/heads/main").write_text(SHA + "\n")
    elif layout in ("packed", "worktree"):
        (git / "packed-refs").write_text(f"# pack-refs\n{'f' * 40} refs/heads/other\n"
                                         f"{SHA} refs/heads/main\n")
    elif layout == "detached":
        (git / "HEAD").write_text(SHA + "\n")
    elif layout == "garbage":
        (git / "HEAD").write_text("ref: refs/heads/nothing-here\n")
    root = tmp_path
    if layout == "worktree":          # .git a file naming the worktree's git dir
        wt = git / "worktrees/wt"
        wt.mkdir(parents=True)
        (wt / "HEAD").write_text("ref: refs/heads/main\n")
        (wt / "commondir").write_text("../..\n")
        root = tmp_path / "wt"
        root.mkdir()
        (root / ".git").write_text(f"gitdir: {wt}\n")
    assert git_commit(str(root)) == (None if layout in ("none", "garbage") else SHA)


def test_the_git_commit_of_this_checkout():
    root = os.path.dirname(os.path.dirname(os.path.abspath(deapnn.__file__)))
    if shutil.which("git") is None or not os.path.exists(os.path.join(root, ".git")):
        pytest.skip("deapnn is not imported from a git checkout here")
    head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert git_commit() == head


# --- every command's run directory ---------------------------------------------------------------
@pytest.mark.parametrize("kind", list(RUNS))
def test_every_command_records_its_environment_and_the_report_shows_it(runs, kind):
    run = runs(kind)
    env = environment.read_environment(str(run))
    assert env["recorded"] == "start" and env["torch"] == torch.__version__
    assert env["device"] == "cpu" and env["threads"] == torch.get_num_threads() == 1
    assert env["workers"] == 1 and env["hosts"] is None and "resumes" not in env
    from deapnn.report import render_report
    text = render_report(str(run), str(run.parent / f"{kind}.md")).text()
    section = text.split("## Environment\n", 1)[1].split("\n## ", 1)[0]
    assert f"torch {torch.__version__}" in section
    assert "recorded when the run started" in section and "resumed" not in section


def test_compare_records_its_environment_and_leaves_the_searchs(runs, tmp_path, capsys):
    run = tmp_path / "nlfs"
    shutil.copytree(runs("nlfs"), run)
    before = (run / ENVIRONMENT_FILE).read_bytes()
    assert main(["compare", str(run), *COMPARE]) == 0
    record_ = json.loads((run / "comparison.json").read_text())
    assert record_["environment"]["torch"] == torch.__version__
    assert record_["environment"]["device"] == "cpu"
    assert (run / ENVIRONMENT_FILE).read_bytes() == before
    assert not _warnings(capsys.readouterr().err)


def test_the_scoop_hosts_of_a_hostfile_are_recorded(tmp_path):
    from deapnn.commands.command import record_environment
    from deapnn.rundir import RunDir
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# the cluster\nnode1 4\n\nnode2   # the second\n")
    run = RunDir(tmp_path / "R", {"command": "train"})
    record_environment(run, Namespace(hostfile=str(hostfile), resume=None, workers=8))
    env = _stored(tmp_path / "R")
    assert env["hosts"] == ["node1", "node2"] and env["workers"] == 8


# --- --resume on another environment ----------------------------------------------------------
def test_resume_with_another_torch_warns_once_naming_both_and_finishes(cli, runs, tmp_path):
    run = _unfinished_train(runs, tmp_path, lambda d: d.update(torch="0.0.1-edited"))
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and out.startswith("test accuracy:"), err
    (line,) = _warnings(err)
    assert f"torch {torch.__version__} (started on 0.0.1-edited)" in line
    assert "bit-identical" in line and str(run) in line
    assert not [f for f in RELEVANT if f != "torch" and f" {f} " in line]
    assert (run / "results.json").is_file()
    env = _stored(run)
    assert env["torch"] == "0.0.1-edited"                     # the start's, kept
    assert [{k: v for k, v in e.items() if k != "resumed_at"}
            for e in env["resumes"]] == [{"torch": torch.__version__}]
    (run / "results.json").unlink()                 # resumed again on the same machine: it
    code, out, err = cli("train", "--resume", run, "--quiet")   # still differs from the start
    assert code == 0 and len(_warnings(err)) == 1
    assert len(_stored(run)["resumes"]) == 1        # but the change is recorded once


def test_resume_on_the_same_environment_says_nothing_and_changes_nothing(cli, runs, tmp_path):
    run = _unfinished_train(runs, tmp_path)
    before = (run / ENVIRONMENT_FILE).read_bytes()
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and not _warnings(err) and "warning" not in err, err
    assert (run / ENVIRONMENT_FILE).read_bytes() == before


def test_another_host_is_recorded_without_a_warning(cli, runs, tmp_path):
    run = _unfinished_train(runs, tmp_path, lambda d: d.update(hostname="elsewhere"))
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and not _warnings(err), err
    (entry,) = _stored(run)["resumes"]
    assert entry["hostname"] == socket.gethostname() and "torch" not in entry


def test_a_finished_run_resumed_compares_nothing(cli, runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs("train"), run)
    data = _stored(run)
    (run / ENVIRONMENT_FILE).write_text(json.dumps({**data, "torch": "0.0.1"}))
    before = (run / ENVIRONMENT_FILE).read_bytes()
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and not _warnings(err) and "nothing was run or changed" in err
    assert (run / ENVIRONMENT_FILE).read_bytes() == before


@pytest.mark.parametrize("field", RELEVANT)
def test_each_relevant_field_that_differs_is_one_warning(tmp_path, capsys, field):
    from deapnn.rundir import RunDir
    current = collect(torch.device("cpu"))
    run = RunDir(tmp_path / "R", {"command": "train"})
    run.write_json(ENVIRONMENT_FILE, {**current, field: "other"})
    record(run, resumed=True, current=current)
    (line,) = _warnings(capsys.readouterr().err)
    assert f"{field} {environment.short(current[field])} (started on other)" in line
    assert environment.differences({**current, "hostname": "x", "recorded_at": "y"},
                                   current) == []


def test_the_resumes_kept_are_bounded(tmp_path):
    from deapnn.rundir import RunDir
    current = collect(torch.device("cpu"))
    run = RunDir(tmp_path / "R", {"command": "train"})
    many = [{"resumed_at": str(i), "hostname": f"h{i}"} for i in range(environment.MAX_RESUMES)]
    run.write_json(ENVIRONMENT_FILE, {**current, "resumes": many})
    resumes = record(run, resumed=True, current=current)["resumes"]
    assert len(resumes) == environment.MAX_RESUMES and resumes[0]["hostname"] == "h1"
    assert resumes[-1] == {"resumed_at": current["recorded_at"]}    # back on the start's


def test_a_missing_environment_is_recorded_at_resume_without_a_warning(cli, runs, tmp_path):
    run = _unfinished_train(runs, tmp_path)
    (run / ENVIRONMENT_FILE).unlink()
    from deapnn.report import render_report
    assert "Not recorded (no `environment.json`" in render_report(str(run)).text()
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and not _warnings(err), err
    env = _stored(run)
    assert env["recorded"] == "resume" and env["torch"] == torch.__version__
    assert "recorded when the run was first resumed" in render_report(str(run)).text()


def test_hostile_values_stay_on_one_line(cli, runs, tmp_path):
    hostile = "1.0\ndeapnn: error: forged\u2028# heading" + "x" * 10000
    run = _unfinished_train(runs, tmp_path, lambda d: d.update(torch=hostile, cpu=[hostile]))
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and "forged" not in out
    (line,) = _warnings(err)
    assert len(line) < 600 and "deapnn: error" not in err.replace(line, "")
    from deapnn.report import render_report
    text = render_report(str(run)).text()
    assert not [ln for ln in text.splitlines() if ln.startswith(("deapnn:", "# heading"))]


# --- a corrupt or hostile environment.json ------------------------------------------------------
def _plant(run, kind, tmp_path):
    path = run / ENVIRONMENT_FILE
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        victim = tmp_path / "victim.json"
        victim.write_text(json.dumps({"schema_version": SCHEMA_VERSION}))
        path.symlink_to(victim)
    elif kind == "directory":
        path.mkdir()
    elif kind == "huge":
        with open(path, "wb") as fh:
            fh.truncate((16 << 20) + 1)
    else:
        path.write_text({"list": "[]", "not json": "{", "nul": '{"torch": "\x00"}',
                         "no version": '{"torch": "2.0"}',
                         "newer": json.dumps({"schema_version": SCHEMA_VERSION + 1}),
                         "resumes": json.dumps({"schema_version": SCHEMA_VERSION,
                                                "resumes": "x"})}[kind])
    return path


HOSTILE = ["list", "not json", "nul", "no version", "newer", "resumes", "huge", "fifo",
           "symlink", "directory"]


@pytest.mark.timeout(FIFO_TIMEOUT)
@pytest.mark.parametrize("command", ["resume", "report"])
@pytest.mark.parametrize("kind", HOSTILE)
def test_a_corrupt_environment_is_one_error_line(cli, runs, tmp_path, kind, command):
    run = _unfinished_train(runs, tmp_path)
    path = _plant(run, kind, tmp_path)
    argv = ["train", "--resume", run, "--quiet"] if command == "resume" else ["report", run]
    code, out, err = cli(*argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("deapnn: error:"), err
    assert "Traceback" not in out + err
    assert ENVIRONMENT_FILE in lines[0] and str(run) in lines[0]
    if kind == "symlink":
        assert "symbolic link" in lines[0] and path.is_symlink()
    assert os.path.lexists(path) and not (run / "results.json").exists()
    assert not (run / "report.md").exists()
