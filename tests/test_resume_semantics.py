"""Resuming is safe (issue 23, classes 8-10): ``--resume`` of a finished run changes nothing and
reprints its summary; a checkpoint is bound to its run (a copy from another run is refused);
one process at a time runs in a run directory (every command, ``deapnn compare`` too); a
hostile NLFS checkpoint or comparison state is one line naming the file; the resume hint is
given only where there is a run to resume. The runs are the tiny version-0 fixtures
(tests/fixtures/rundirs) and tiny fresh ones."""
import errno
import fcntl
import json
import os
import shutil
import socket

import pytest

from deapnn.results import read_summary

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "rundirs")
OLD = {"train": "train_v0", "gls": "gls_v0", "nlfs": "nlfs_v0", "evomal": "evomal_v0"}
COMPARE = ["--seeds", "0-0", "--tune-seeds", "0-0", "--lr-grid", "1", "--quiet"]


def _copy(name, tmp_path):
    target = tmp_path / name
    shutil.copytree(os.path.join(FIXTURES, name), target)
    return target


def _files(run):
    """Every file of ``run`` (but the lock) with its bytes."""
    out = {}
    for root, _, names in os.walk(run):
        for name in names:
            if name != ".lock":
                path = os.path.join(root, name)
                out[os.path.relpath(path, run)] = open(path, "rb").read()
    return out


def one_line(code, out, err, expected=2):
    lines = err.strip("\n").splitlines()
    assert code == expected, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("deapnn: error:"), err
    return lines[0]


# --- 8: a finished run resumed is a no-op that reprints its summary ------------------------------

@pytest.mark.parametrize("command", list(OLD))
def test_a_finished_run_resumed_changes_nothing_and_reprints_its_summary(cli, tmp_path, command):
    run = _copy(OLD[command], tmp_path)
    before, summary = _files(run), read_summary(str(run))
    code, out, err = cli(command, "--resume", run, "--quiet", "--device", "cpu")
    assert code == 0, err
    assert out.startswith(summary.render()) and "nothing was run or changed" in err
    assert _files(run) == before


def test_a_finished_train_run_resumed_keeps_its_results(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "--dataset", "iris", "--model", "mlp", "--epochs", "1", "--quiet",
               "--out", run)[0] == 0
    before = _files(run)
    code, out, err = cli("train", "--resume", run, "--quiet")
    assert code == 0 and out.startswith("test accuracy: ") and _files(run) == before


def test_a_finished_evomal_run_refuses_a_final_eval_every_that_would_change_it(cli, tmp_path):
    run = _copy("evomal_v0", tmp_path)
    before = _files(run)
    line = one_line(*cli("evomal", "--resume", run, "--quiet", "--final-eval-every", "5"))
    assert "--final-eval-every" in line and "finished" in line and _files(run) == before
    assert cli("evomal", "--resume", run, "--quiet", "--final-eval-every", "0")[0] == 0


def test_compare_run_again_with_the_same_settings_trains_nothing(cli, tmp_path, monkeypatch):
    import deapnn.nlfs.compare as nc
    run = _copy("nlfs_v0", tmp_path)
    assert cli("compare", run, *COMPARE)[0] == 0
    stored = (run / "comparison.json").read_bytes()
    os.remove(run / "comparison.state.json")          # its trainings are gone: not retrained

    def no_training(*args):
        raise AssertionError("a finished comparison was trained again")
    monkeypatch.setattr(nc, "tuned_job", no_training)
    code, out, err = cli("compare", run, *COMPARE)
    assert code == 0, err
    assert "tuned comparison" in out and (run / "comparison.json").read_bytes() == stored


# --- 9: a checkpoint is bound to its run ----------------------------------------------------------

def _configs(command):
    """Two configurations of ``command`` that define different runs."""
    if command == "nlfs":
        from deapnn.nlfs import NLFSConfig
        tiny = dict(pool=6, cycles=2, sample_size=2, budget=5, seeds=[], top=1)
        return (NLFSConfig(dataset="wine", population_size=6, **tiny),
                NLFSConfig(dataset="iris", population_size=4, **tiny))
    if command == "evomal":
        from deapnn.evomal.config import EvoMALRunConfig
        return (EvoMALRunConfig(dataset="diabetes", population_size=3, generations=1),
                EvoMALRunConfig(dataset="diabetes", population_size=2, generations=1))
    from deapnn.baseline import TrainRunConfig
    return (TrainRunConfig(dataset="iris", model="mlp", epochs=1, seed=0),
            TrainRunConfig(dataset="iris", model="mlp", epochs=1, seed=1))


@pytest.mark.parametrize("command", ["nlfs", "evomal", "train"])
def test_a_checkpoint_copied_from_another_run_is_refused(cli, tmp_path, command):
    from deapnn.rundir import RunDir
    mine, theirs = _configs(command)
    other = RunDir.create(tmp_path / "other", command, mine, device="cpu")
    other.save_checkpoint({"phase": "pool"} if command == "nlfs" else {"epoch": 1})
    run = tmp_path / "run"
    RunDir.create(run, command, theirs, device="cpu")
    shutil.copy(other.file("checkpoint.pt"), run / "checkpoint.pt")
    copied = (run / "checkpoint.pt").read_bytes()
    line = one_line(*cli(command, "--resume", run, "--quiet"))
    assert str(run / "checkpoint.pt") in line and "belongs to another run" in line
    assert (run / "checkpoint.pt").read_bytes() == copied


def test_a_gls_job_checkpoint_copied_from_another_run_is_refused(cli, tmp_path):
    gls = ["gls", "--dataset", "iris", "--model", "mlp", "--population-size", "2", "--compare",
           "none", "--seeds", "0", "--quiet"]
    assert cli(*gls, "--epochs", "1", "--out", tmp_path / "other")[0] == 0
    from deapnn.gls import GLSConfig
    from deapnn.rundir import RunDir
    run = tmp_path / "run"
    RunDir.create(run, "gls", GLSConfig(dataset="iris", model="mlp", population_size=2,
                                        arms=[], seeds=[0], epochs=2))
    (run / "gls" / "seed0").mkdir(parents=True)
    shutil.copy(tmp_path / "other" / "gls" / "seed0" / "checkpoint.pt",
                run / "gls" / "seed0" / "checkpoint.pt")
    line = one_line(*cli("gls", "--resume", run, "--quiet"))
    assert str(run / "gls" / "seed0" / "checkpoint.pt") in line and "another run" in line


@pytest.mark.parametrize("command", ["train", "gls", "nlfs", "evomal"])
def test_a_run_resumed_has_the_identity_its_checkpoints_were_bound_to(tmp_path, command):
    from deapnn.checkpoint import config_hash
    from deapnn.results import config_class
    from deapnn.rundir import RunDir
    cfg = config_class(command)()
    fresh = RunDir.create(tmp_path / command, command, cfg, device="cpu")
    resumed = RunDir.resume(tmp_path / command)
    assert fresh.identity() == resumed.identity() is not None
    stored = resumed.stored(command, config_class(command))
    assert config_hash(command, cfg.to_dict(), "gls/seed0") == \
        config_hash(command, stored.to_dict(), "gls/seed0")
    if command == "evomal":        # an invocation's setting is not part of the run
        assert config_hash(command, stored.for_invocation(final_eval_every=7).to_dict()) == \
            fresh.identity()


def test_a_checkpoint_written_before_the_binding_still_resumes(cli, tmp_path):
    from deapnn.checkpoint import load_checkpoint, save_checkpoint
    run = tmp_path / "run"
    assert cli("train", "--dataset", "iris", "--model", "mlp", "--epochs", "1", "--quiet",
               "--out", run)[0] == 0
    accuracy = json.loads((run / "results.json").read_text())["test_accuracy"]
    save_checkpoint(run / "checkpoint.pt", load_checkpoint(run / "checkpoint.pt"))   # no hash
    os.remove(run / "results.json")
    assert cli("train", "--resume", run, "--quiet")[0] == 0
    assert json.loads((run / "results.json").read_text())["test_accuracy"] == accuracy


# --- 10: one process at a time in a run directory -------------------------------------------------

@pytest.fixture
def held(tmp_path):
    """``held(run)``: the run directory's lock taken as another deapnn process holds it."""
    files = []

    def hold(run):
        fh = open(run / ".lock", "a+")
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write(f"{os.getpid()} {socket.gethostname()}\n")
        fh.flush()
        files.append(fh)
        return fh
    yield hold
    for fh in files:
        fh.close()


@pytest.mark.parametrize("command", list(OLD) + ["compare"])
def test_a_second_process_in_a_run_directory_is_refused(cli, tmp_path, held, command):
    run = _copy(OLD.get(command, "nlfs_v0"), tmp_path)
    before = _files(run)
    lock = held(run)
    argv = ["compare", run, *COMPARE] if command == "compare" else \
        [command, "--resume", run, "--quiet"]
    line = one_line(*cli(*argv))
    assert f"run directory {run} is in use by pid {os.getpid()}" in line
    assert _files(run) == before
    lock.close()                              # the holder ended: the run directory is free
    assert cli(*argv)[0] == 0


def test_the_lock_is_released_when_the_command_ends(cli, tmp_path):
    run = _copy("train_v0", tmp_path)
    assert cli("train", "--resume", run, "--quiet")[0] == 0
    with open(run / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)      # free again


# --- hostile states: one line naming the file, exit 2 ------------------------------------------

def _nlfs_run(path):
    from deapnn.nlfs import NLFSConfig
    from deapnn.rundir import RunDir
    cfg = NLFSConfig(dataset="iris", population_size=3, pool=4, cycles=2, sample_size=2,
                     budget=5, seeds=[], top=1)
    return RunDir.create(path, "nlfs", cfg, device="cpu")


def _genomes(n):
    from deapnn.nlfs.run import random_pool
    return random_pool(0, n)["genomes"]


@pytest.mark.parametrize("state", [
    [1, 2], {"bogus": 1}, {"pool": [1]}, {"pool": {"genomes": 3}}, {"evo": [1]},
    {"mutation": 5}, {"evo": {"format": "x"}}, {"elim": {"round": "one"}},
    {"tuned": {"ident": 1, "results": {"k": 5}}}, {"final": {"jobs": [], "results": 1}},
    {"pool": {"genomes": ["not a graph"], "fitness": [], "info": []}},
    "pool of another size"],
    ids=["a list", "unknown part", "pool list", "pool of a number", "evo list", "mutation number",
         "evo of another format", "elim round text", "tuned results", "final results",
         "bad genome", "pool size"])
def test_nlfs_resume_of_a_checkpoint_with_wrong_contents_is_one_line(cli, tmp_path, state):
    rundir = _nlfs_run(tmp_path / "run")
    if state == "pool of another size":
        state = {"pool": {"genomes": _genomes(5), "fitness": [], "info": []}}
    if state == {"evo": {"format": "x"}}:
        state = {"pool": {"genomes": _genomes(4), "fitness": [0.5] * 4, "info": [{}] * 4},
                 **state}
    rundir.save_checkpoint(state)
    line = one_line(*cli("nlfs", "--resume", rundir.path, "--quiet"))
    assert rundir.file("checkpoint.pt") in line and "does not hold this run's state" in line


@pytest.mark.parametrize("text", ["[1, 2]", '{"ident": 1', '{"ident": 1, "results": {"k": 5}}',
                                  '{"ident": 1, "results": [1]}', "\x00\xff"],
                         ids=["a list", "truncated", "results without metric", "results list",
                              "binary"])
def test_compare_with_a_hostile_state_file_is_one_line(cli, tmp_path, text):
    run = _copy("nlfs_v0", tmp_path)
    (run / "comparison.state.json").write_text(text, encoding="latin-1")
    line = one_line(*cli("compare", run, *COMPARE))
    assert str(run / "comparison.state.json") in line
    assert (run / "comparison.state.json").read_text(encoding="latin-1") == text
    assert not (run / "comparison.json").exists()


# --- hints that point where they should -----------------------------------------------------------

def test_no_resume_hint_for_a_run_directory_whose_start_failed(cli, tmp_path, monkeypatch):
    from deapnn.rundir import RunDir

    def full(self, name, obj):
        raise OSError(errno.ENOSPC, "No space left on device", self.file(name))
    monkeypatch.setattr(RunDir, "write_json", full)
    run = tmp_path / "run"
    code, out, err = cli("train", "--dataset", "iris", "--model", "mlp", "--epochs", "1",
                         "--quiet", "--out", run)
    assert code == 1 and "No space left on device" in err and "--resume" not in err, err


@pytest.mark.parametrize("where", ["a directory", "no such directory"])
def test_compare_out_is_checked_before_any_training(cli, tmp_path, monkeypatch, where):
    import deapnn.nlfs.compare as nc
    run = _copy("nlfs_v0", tmp_path)
    out = tmp_path / "x.json" if where == "a directory" else tmp_path / "nowhere" / "x.json"
    if where == "a directory":
        out.mkdir()

    def no_training(*args):
        raise AssertionError("trained before the output was checked")
    monkeypatch.setattr(nc, "tuned_job", no_training)
    line = one_line(*cli("compare", run, *COMPARE, "--out", out))
    assert "--out" in line and "--resume" not in line


def test_a_stopped_compare_hints_to_run_it_again(tmp_path):
    from argparse import Namespace

    from deapnn.commands.common import resume_hint
    state = tmp_path / "comparison.state.json"
    args = Namespace(command="compare", run_dir=str(tmp_path), out=None, state_file=str(state))
    assert resume_hint(args) == ""
    state.write_text("{}")
    assert "deapnn compare again" in resume_hint(args) and "--resume" not in resume_hint(args)
    run = Namespace(command="train", resume=None, out=str(tmp_path))
    assert resume_hint(run) == ""
    (tmp_path / "config.json").write_text("{}")
    assert resume_hint(run) == f", resume with --resume {tmp_path}"
