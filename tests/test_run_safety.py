"""Run directories are safe to share (issue 14, severe classes 1-3): no write through a planted
symbolic link, no run-directory text that can inject lines into a report, no silent overwrite of
a user's files."""
import json
import os
import re

import pytest

from deapnn.cli import main

GLS = ["gls", "--dataset", "iris", "--model", "mlp", "--population-size", "2", "--epochs", "1",
       "--compare", "none", "--seeds", "0", "--quiet"]


def _one_error_line(capsys, code, expected_code=2):
    """The one ``deapnn: error:`` line of a command that exited ``expected_code`` (no
    traceback on either stream)."""
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == expected_code and len(lines) == 1, (code, out, err)
    assert lines[0].startswith("deapnn: error:") and "Traceback" not in out + err, err
    return lines[0]


@pytest.fixture(scope="module")
def gls_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("safety") / "gls"
    assert main(GLS + ["--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("planted", ["report.md.tmp", "report_fitness.png", "report.md",
                                     "gls/seed0/.lock", "summary.txt", "accuracy.png"])
@pytest.mark.parametrize("command", ["report", "resume"])
def test_a_planted_link_is_refused_and_its_target_untouched(tmp_path, capsys, gls_run, planted,
                                                           command):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(gls_run, run)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = run / planted
    if link.exists():
        link.unlink()
    link.symlink_to(victim)
    argv = ["report", str(run)] if command == "report" else ["gls", "--resume", str(run),
                                                              "--quiet"]
    line = _one_error_line(capsys, main(argv))
    assert "symbolic link" in line and planted.split("/")[-1] in line
    assert victim.read_text() == "precious" and link.is_symlink()


def test_lock_file_is_never_opened_through_a_link(tmp_path):
    from deapnn.rundir import RunDirError, open_lock
    victim = tmp_path / "victim"
    victim.write_text("x")
    (tmp_path / ".lock").symlink_to(victim)
    with pytest.raises(RunDirError, match="symbolic link"):
        open_lock(tmp_path / ".lock")
    assert victim.read_text() == "x"
    fd = open_lock(tmp_path / "real.lock")
    os.close(fd)
    assert (tmp_path / "real.lock").is_file()


def test_atomic_writes_replace_a_link_instead_of_following_it(tmp_path):
    from deapnn.plots import plot_curves
    from deapnn.rundir import atomic_write
    victim = tmp_path / "victim"
    victim.write_text("precious")
    for name in ("a.json", "b.png"):
        (tmp_path / name).symlink_to(victim)
    atomic_write(str(tmp_path / "a.json"), lambda fh: fh.write("{}"), mode="w")
    plot_curves({"x": ([0, 1], [0, 1])}, tmp_path / "b.png", "x", "y")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "a.json").is_symlink() and not (tmp_path / "b.png").is_symlink()


INJECTED = ["$ rm -rf ~", "<script>alert(1)</script>", "# owned", "![x](http://evil)"]


def test_report_fields_cannot_inject_lines(tmp_path, capsys, gls_run):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(gls_run, run)
    payload = "\n".join([""] + INJECTED + [""])
    config = json.loads((run / "config.json").read_text())
    config["command"] = "gls" + payload          # an unknown kind: the generic section
    config["note"] = payload
    config["config"]["model"] = "mlp" + payload
    (run / "config.json").write_text(json.dumps(config))
    assert main(["report", str(run)]) == 0
    text = (run / "report.md").read_text()
    _assert_inert(text)
    # a loss search's formulas (results.json best[].latex / expression) and settings
    nlfs = tmp_path / "nlfs"
    nlfs.mkdir()
    (nlfs / "config.json").write_text(json.dumps(
        {"command": "nlfs", "config": {"dataset": "digits" + payload, "seeds": 2}}))
    (nlfs / "results.json").write_text(json.dumps(
        {"config": {"dataset": "digits", "seeds": 2}, "mutation": {},
         "best": [{"name": "nlfs_1" + payload, "fitness": 0.5, "expression": "y" + payload,
                   "latex": "y$$" + payload}],
         "comparison": [{"loss": "ce" + payload, "mean": 0.5, "std": 0.0, "test": [0.5]}]}))
    assert main(["report", str(nlfs)]) == 0
    _assert_inert((nlfs / "report.md").read_text())


def _assert_inert(text):
    for line in text.splitlines():
        outside = re.sub(r"(`+)(?:(?!\1).)*?\1", "", line)      # drop code spans
        for bad in INJECTED:
            assert not line.startswith(bad), line
        assert not re.search(r"(?<!\\)<script", outside), line           # tags escaped
        assert not re.search(r"(?<!\\)\]\(http://evil", outside), line   # links escaped
        assert not re.search(r"(?<!\\)\$\$", outside.replace("$$y", "")), line


def test_train_refuses_a_non_empty_directory_that_is_not_its_run(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    files = {"logbook.csv": "epoch\n1\n", "model.pt": "weights", "result.json": "{}"}
    for name, text in files.items():
        (user / name).write_text(text)
    argv = ["train", "--dataset", "iris", "--model", "mlp", "--epochs", "1", "--quiet"]
    line = _one_error_line(capsys, main(argv + ["--out", str(user)]))
    assert "not empty" in line
    assert {p.name: p.read_text() for p in user.iterdir()} == files
    _one_error_line(capsys, main(argv + ["--out", ""]))
    assert not list(tmp_path.glob("*.pt"))
