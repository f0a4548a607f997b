"""Run directories against a hostile file system (issue 23, classes 1-5 and 13): links planted
*during* a run, a symlinked run directory, the worker-slot lock directory, file modes under the
umask, FIFOs and other non-regular files, oversized files, a NUL byte in a logbook and a path
that is not UTF-8. Each case: nothing written or read through a link, one ``deapnn: error:``
line naming the file (exit 2), never a hang or a traceback (:mod:`deapnn.safefs`)."""
import json
import os
import shutil
import stat

import pytest

from deapnn.cli import main

from test_run_safety import GLS, _one_error_line

TRAIN = ["train", "--dataset", "iris", "--model", "mlp", "--epochs", "2", "--quiet"]
#: a FIFO test that blocks fails here instead of hanging the suite
FIFO_TIMEOUT = 30


@pytest.fixture(scope="module")
def gls_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("fs") / "gls"
    assert main(GLS + ["--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("fs") / "train"
    assert main(TRAIN + ["--out", str(run)]) == 0
    return run


def _copy(run, tmp_path, name="run"):
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


def _victim(tmp_path):
    """A directory outside the run holding a (fake) job result: nothing may touch or read it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "result.json").write_text(json.dumps(
        {"arm": "gls", "seed": 1, "test_acc": 1.0, "val_acc": 1.0, "seconds": 1.0}))
    return victim, {p.name: p.read_bytes() for p in victim.iterdir()}


# --- 1. a link planted during a fresh run ------------------------------------------------------
@pytest.mark.parametrize("arms, seeds, planted", [(("gls",), (0, 1), "gls/seed1"),
                                                  (("gls", "sgd"), (0,), "sgd")],
                         ids=["job directory", "arm directory"])
def test_a_link_planted_mid_run_where_a_job_directory_will_be_is_refused(tmp_path, arms, seeds,
                                                                        planted):
    from deapnn.gls import GLSConfig, run_gls
    from deapnn.rundir import RunDir, RunDirError
    victim, before = _victim(tmp_path)
    run = tmp_path / "R"
    cfg = GLSConfig(dataset="iris", model="mlp", population_size=2, epochs=1, arms=arms,
                    seeds=seeds)
    rundir = RunDir.create(run, "gls", cfg)

    def planting_map(fn, jobs):       # the first job done, a link appears where the next goes
        for i, job in enumerate(jobs):
            if i == 1:
                (run / planted).symlink_to(victim)
            yield fn(job)

    with pytest.raises(RunDirError, match="symbolic link") as refused:
        run_gls(cfg, rundir, map_fn=planting_map)
    assert str(run / planted) in str(refused.value)
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before   # nothing written
    assert (run / "gls" / "seed0" / "result.json").is_file()      # the first job's own files


def test_writes_and_reads_below_a_run_directory_never_follow_a_link_swapped_in(tmp_path):
    """A directory of the run replaced by a link after it was created and checked: every later
    write and read is refused, not only the ones at the start of a job."""
    from deapnn.checkpoint import load_checkpoint, save_checkpoint
    from deapnn.rundir import RunDir, RunDirError, read_json_object, read_logbook
    victim = tmp_path / "victim"
    (victim / "b").mkdir(parents=True)
    for name in ("checkpoint.pt", "x.json", "logbook.csv"):
        (victim / "b" / name).write_text("{}")
    run = RunDir(tmp_path / "R", {"command": "train"})
    part = RunDir.open(run.file("a/b"))
    save_checkpoint(part.file("checkpoint.pt"), {"step": 1})
    os.rename(run.file("a"), run.file("a.old"))
    os.symlink(victim, run.file("a"))
    for action in (lambda: part.write_json("x.json", {"planted": False}),
                   lambda: save_checkpoint(part.file("checkpoint.pt"), {"step": 2}),
                   lambda: load_checkpoint(part.file("checkpoint.pt")),
                   lambda: read_json_object(part.file("x.json")),
                   lambda: read_logbook(part.file("logbook.csv")),
                   lambda: RunDir.open(run.file("a/b/c"))):
        with pytest.raises(RunDirError, match=f"{run.file('a')} is a symbolic link"):
            action()
    assert sorted(p.name for p in (victim / "b").iterdir()) == ["checkpoint.pt", "logbook.csv",
                                                                 "x.json"]
    assert all(p.read_text() == "{}" for p in (victim / "b").iterdir())


# --- 2. the worker-slot lock directory ---------------------------------------------------------
@pytest.fixture
def no_slot(monkeypatch, tmp_path):
    from deapnn import runtime
    monkeypatch.setenv("DEAPNN_SLOT_DIR", str(tmp_path / "slots"))
    monkeypatch.setenv("DEAPNN_SLOT_KEY", "host")
    runtime.release_slot()
    yield runtime
    runtime.release_slot()


@pytest.mark.timeout(FIFO_TIMEOUT)
@pytest.mark.parametrize("planted", ["link", "fifo"])
def test_a_planted_slot_lock_file_is_refused_and_its_target_untouched(no_slot, tmp_path,
                                                                      planted):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    directory = tmp_path / "locks"
    directory.mkdir(mode=0o700)
    lock = directory / "slot0.lock"
    lock.symlink_to(victim) if planted == "link" else os.mkfifo(lock)
    with pytest.raises(PermissionError) as refused:
        no_slot.claim_slot(str(directory))
    assert refused.value.filename == str(lock) and "slot lock file" in str(refused.value)
    assert victim.read_text() == "precious"


def test_the_slot_lock_directory_is_private(no_slot, tmp_path):
    directory = no_slot.slot_directory()
    assert no_slot.claim_slot() == 0
    for d in (directory, os.path.dirname(directory)):          # made 0700, per user
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    no_slot.release_slot()
    os.chmod(directory, 0o777)                                 # others could plant links
    with pytest.raises(PermissionError, match="writable by others") as refused:
        no_slot.claim_slot()
    assert refused.value.filename == directory
    os.chmod(directory, 0o700)
    if os.geteuid() == 0:                                      # another user's directory
        os.chown(os.path.dirname(directory), 12345, -1)
        try:
            with pytest.raises(PermissionError, match="owned by uid 12345"):
                no_slot.claim_slot()
        finally:
            os.chown(os.path.dirname(directory), 0, -1)


# --- 3. a run directory that is itself a symbolic link -----------------------------------------
@pytest.mark.parametrize("command", ["train --out", "train --out DIR/", "gls --resume", "report"])
def test_a_symlinked_run_directory_is_refused(tmp_path, capsys, gls_run, command):
    fresh = command.startswith("train")
    real = tmp_path / "real" if fresh else _copy(gls_run, tmp_path, "real")
    real.mkdir(exist_ok=True)
    before = sorted(str(p.relative_to(real)) for p in real.rglob("*"))
    link = tmp_path / "link"
    link.symlink_to(real)
    argv = {"train --out": TRAIN + ["--out", str(link)],
            "train --out DIR/": TRAIN + ["--out", f"{link}/"],
            "gls --resume": ["gls", "--resume", str(link), "--quiet"],
            "report": ["report", str(link)]}[command]
    line = _one_error_line(capsys, main(argv))
    assert str(link) in line and "is a symbolic link" in line and str(real) in line
    assert sorted(str(p.relative_to(real)) for p in real.rglob("*")) == before


# --- 4. file modes follow the umask ------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_have_the_mode_the_umask_allows(tmp_path, umask, mode):
    import torch

    from deapnn.checkpoint import save_checkpoint
    from deapnn.rundir import RunDir
    old = os.umask(umask)
    try:
        run = RunDir(tmp_path / "R", {"command": "train"})
        run.write_text("summary.txt", "x")
        run.write_logbook([{"epoch": 1}])
        run.save_weights({"w": torch.zeros(1)})
        save_checkpoint(run.file("part/checkpoint.pt"), {"step": 1})
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "R").rglob("*") if p.is_file()]
    assert len(files) == 5
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: mode
                                                                        for p in files}


# --- 5. FIFOs and other non-regular files ------------------------------------------------------
GLS_FIFOS = [("config.json", "report"), ("config.json", "resume"), ("results.json", "report"),
             ("gls/seed0/result.json", "report"), ("gls/seed0/logbook.csv", "report"),
             ("gls/seed0/checkpoint.pt", "resume")]


@pytest.mark.timeout(FIFO_TIMEOUT)
@pytest.mark.parametrize("name, command", GLS_FIFOS, ids=[" ".join(c) for c in GLS_FIFOS])
def test_a_fifo_in_a_gls_run_is_one_line_not_a_hang(tmp_path, capsys, gls_run, name, command):
    run = _copy(gls_run, tmp_path)
    (run / name).unlink()
    os.mkfifo(run / name)
    if name.endswith("checkpoint.pt"):        # an unfinished job resumes from its checkpoint
        (run / "results.json").unlink()
        (run / "gls/seed0/result.json").unlink()
    argv = ["report", str(run)] if command == "report" else ["gls", "--resume", str(run),
                                                             "--quiet"]
    line = _one_error_line(capsys, main(argv))
    assert str(run / name) in line or f"{name} is not a regular file" in line, line
    assert "not a regular file (a FIFO)" in line
    assert stat.S_ISFIFO(os.lstat(run / name).st_mode)


@pytest.mark.timeout(FIFO_TIMEOUT)
@pytest.mark.parametrize("name, command", [("logbook.csv", "report"),
                                           ("checkpoint.pt", "resume")])
def test_a_fifo_in_a_train_run_is_one_line_not_a_hang(tmp_path, capsys, train_run, name,
                                                      command):
    run = _copy(train_run, tmp_path)
    (run / name).unlink()
    os.mkfifo(run / name)
    (run / "results.json").unlink()
    argv = ["report", str(run)] if command == "report" else ["train", "--resume", str(run),
                                                             "--quiet"]
    line = _one_error_line(capsys, main(argv))
    assert str(run / name) in line and "not a regular file (a FIFO)" in line


@pytest.mark.timeout(FIFO_TIMEOUT)
@pytest.mark.parametrize("reader", ["read_json_object", "read_logbook", "load_checkpoint",
                                    "report read_json"])
def test_every_run_directory_reader_refuses_a_fifo(tmp_path, reader):
    """``comparison.state.json`` and every other file of a run are read through these."""
    from deapnn import checkpoint, rundir
    from deapnn.report import document
    fn = {"read_json_object": rundir.read_json_object, "read_logbook": rundir.read_logbook,
          "load_checkpoint": checkpoint.load_checkpoint,
          "report read_json": document.read_json}[reader]
    fifo = tmp_path / "comparison.state.json"
    os.mkfifo(fifo)
    with pytest.raises((ValueError, checkpoint.CheckpointError), match="not a regular file"):
        fn(str(fifo))


# --- 13. size bounds; a NUL byte; a path that is not UTF-8 -------------------------------------
@pytest.mark.parametrize("name", ["config.json", "results.json", "gls/seed0/logbook.csv",
                                  "gls/seed0/result.json"])
def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, capsys, gls_run, name):
    from deapnn.safefs import MAX_JSON_BYTES, MAX_LOGBOOK_BYTES
    run = _copy(gls_run, tmp_path)
    with open(run / name, "r+b") as fh:         # sparse: no disk used, nothing worth reading
        fh.truncate(max(MAX_JSON_BYTES, MAX_LOGBOOK_BYTES) + 1)
    line = _one_error_line(capsys, main(["report", str(run)]))
    assert str(run / name) in line and "MiB deapnn reads" in line


def test_a_long_logbook_is_drawn_through_a_bounded_number_of_points():
    from deapnn.report.document import MAX_POINTS, _thinned
    n = 10 * MAX_POINTS + 7
    xs, ys = list(range(n)), [float(i) for i in range(n)]
    series, _ = _thinned({"long": (xs, ys), "short": ([0, 1], [0.0, 1.0])}, None)
    kept_x, kept_y = series["long"]
    assert len(kept_x) <= MAX_POINTS + 1 and kept_x[0] == 0 and kept_x[-1] == n - 1
    assert kept_y == [float(x) for x in kept_x] and kept_x == sorted(kept_x)
    assert series["short"] == ([0, 1], [0.0, 1.0])


@pytest.mark.parametrize("damage", ["inside a field", "appended row"])
def test_a_nul_byte_in_a_job_logbook_is_one_line_on_resume(tmp_path, capsys, gls_run, damage):
    run = _copy(gls_run, tmp_path)
    (run / "results.json").unlink()           # unfinished: the resume reads the job logbooks
    logbook = run / "gls/seed0/logbook.csv"
    data = logbook.read_bytes()
    logbook.write_bytes(data[:40] + b"\x00" + data[41:] if damage == "inside a field"
                        else data + b"1,\x00,2\n")
    line = _one_error_line(capsys, main(["gls", "--resume", str(run), "--quiet"]))
    assert str(logbook) in line and "NUL byte" in line


def test_report_of_a_directory_whose_name_is_not_utf8(tmp_path, capsys, gls_run):
    run = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"run\xff"))
    shutil.copytree(gls_run, run)
    assert main(["report", run]) == 0
    text = (tmp_path / "run\udcff" / "report.md").read_bytes().decode("utf-8")   # valid UTF-8
    assert "run\\xff" in text
    out, err = capsys.readouterr()
    assert out.strip().endswith("run\\xff/report.md") and err == ""
