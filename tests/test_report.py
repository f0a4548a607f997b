"""``deapnn report RUN_DIR`` on real run directories of every type (train, gls, nlfs, evomal),
made by tiny real runs of the commands; finished, killed (files missing) and foreign dirs."""
import json
import os
import re
import shutil

import pytest

from deapnn import cli
from deapnn.report.document import seconds as fmt_seconds
from deapnn.commands import report as report_command

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_is_a_deapnn_command():
    assert report_command in cli.COMMANDS


def _deapnn(*argv):
    code = cli.main([str(a) for a in argv])
    assert code == 0, f"deapnn {' '.join(map(str, argv))} exited {code}"


_COMMANDS = {
    "train": ["train", "--dataset", "iris", "--model", "mlp", "--epochs", 2],
    "gls": ["gls", "--dataset", "iris", "--model", "mlp", "--population-size", 2, "--epochs", 1,
            "--compare", "sgd", "--seeds", "0,1"],
    "nlfs": ["nlfs", "--dataset", "iris", "--model", "mlp", "--population-size", 3, "--cycles", 3,
             "--sample-size", 2, "--pool", 4, "--budget", 20, "--seeds", "0-1", "--final-steps", 20,
             "--top", 2, "--no-tune"],
    "evomal": ["evomal", "--dataset", "diabetes", "--population-size", 4, "--generations", 1,
               "--meta-steps", 2, "--fitness-steps", 30, "--rejection-steps", 100, "--seeds", "0-1",
               "--final-steps", 40, "--no-tune"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``runs(kind)``: the directory of one tiny real run of that command (made once, a few
    seconds each on one thread)."""
    root = tmp_path_factory.mktemp("runs")

    def get(kind):
        if not (root / kind / "config.json").exists():
            _deapnn(*_COMMANDS[kind], "--quiet", "--out", root / kind)
        return root / kind
    return get


def _report(run_dir, capsys, *extra):
    """Run `deapnn report`; return (printed path, Markdown text)."""
    capsys.readouterr()
    _deapnn("report", run_dir, *extra)
    path = capsys.readouterr().out.strip().splitlines()[-1]
    with open(path, encoding="utf-8") as fh:
        return path, fh.read()


def _images(path, text):
    """Every PNG the report references exists and is a real PNG; their paths."""
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert refs, "the report shows no plot"
    files = [os.path.join(os.path.dirname(path), r) for r in refs]
    for f in files:
        assert os.path.isfile(f), f"{f} referenced but missing"
        with open(f, "rb") as fh:
            assert fh.read(8) == PNG_MAGIC, f"{f} is not a PNG"
        assert os.path.getsize(f) > 5000            # a drawn figure, not an empty canvas
    return [os.path.basename(f) for f in files]


def _sections(text, *names):
    for name in ("Configuration",) + names:
        assert f"\n## {name}\n" in text, f"section {name!r} missing"


def _json(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def test_train_report(runs, capsys):
    run = runs("train")
    path, text = _report(run, capsys)
    assert path == str(run / "report.md")
    _sections(text, "Results", "Curves", "Timings", "Failures")
    result = _json(run / "results.json")
    assert "status: complete" in text
    assert f"| test accuracy | {result['test_accuracy']:.4f} |" in text
    assert "| `dataset` | iris |" in text and "| `epochs` | 2 |" in text
    assert "| `weight_decay` | 0.0005 |" in text            # config values as given
    assert "2 of 2" in text and fmt_seconds(result['seconds']) in text
    assert sorted(_images(path, text)) == ["loss.png", "val_accuracy.png"]
    assert "No failures recorded" in text


def test_gls_report(runs, capsys):
    run = runs("gls")
    path, text = _report(run, capsys)
    _sections(text, "Results", "Curves", "Timings", "Failures")
    summary = _json(run / "results.json")["summary"]
    for arm in ("gls", "sgd"):
        s = summary[arm]
        assert f"| {s['mean']:.4f} ± {s['std']:.4f} | {s['n']} |" in text, arm
    pair = summary["sgd"]["gls_minus_arm"]
    assert f"{pair['mean']:+.4f} ± {pair['std']:.4f} ({pair['wins']}W/{pair['ties']}T/" in text
    for arm in ("gls", "sgd"):                     # one row per job, numbers from its result.json
        for seed in (0, 1):
            r = _json(run / arm / f"seed{seed}" / "result.json")
            assert f"| `{arm}` | {seed} | {r['test_acc']:.4f} | {r['val_acc']:.4f} |" in text
            assert r["device"] == "cpu" and f"| {r['host']} cpu | done |" in text
    assert "selection total" in text and "selection / gen" in text      # GLS selection time
    images = _images(path, text)
    assert {"accuracy.png", "loss.png", "report_gls_times.png"} <= set(images)


def test_nlfs_report(runs, capsys):
    run = runs("nlfs")
    path, text = _report(run, capsys)
    _sections(text, "Results", "Best formulas", "Curves", "Timings", "Failures")
    results = _json(run / "results.json")
    for row in results["comparison"]:
        assert f"| `{row['loss']}` | {row['mean']:.4f} ± {row['std']:.4f} |" in text
    for b in results["best"]:
        assert f"`{b['name']}` | {b['fitness']:.4f} | `{b['expression']}`" in text
    assert {"probe_curves.png", "report_fitness.png"} <= set(_images(path, text))
    # failures are read from the checkpoint's pool records (safe loader), counted by kind
    from deapnn.checkpoint import load_checkpoint
    from deapnn.report.document import count_reasons
    info = load_checkpoint(run / "checkpoint.pt")["pool"]["info"]
    counted = count_reasons(i["reason"] for i in info)
    for kind, n, _ in counted:
        assert f"| checkpoint: pool ({len(info)} evaluated) | `{kind}` | {n} |" in text
    if not counted:
        assert "No failures recorded" in text


def test_evomal_report(runs, capsys):
    run = runs("evomal")
    path, text = _report(run, capsys)
    _sections(text, "Results", "Best formulas", "Curves", "Timings", "Failures")
    result = _json(run / "results.json")
    for name, r in result["final"].items():
        assert f"| `{name}` | {r['mean']:.4f} ± {r['std']:.4f} |" in text
    assert f"`{result['best'][0]['tree']}`" in text
    assert f"{result['archive_size']} distinct losses evaluated, {result['rejected']} rejected" \
        in text
    assert {"learning_curve.png", "report_fitness.png"} <= set(_images(path, text))
    if result["rejected"]:   # the archive's rejection reasons are counted, numbers masked
        assert re.search(r"\| `rejected: [^`]*` \| \d+ \|", text)


def test_killed_gls_run_is_reported_and_missing_plots_drawn(runs, capsys, tmp_path):
    run = tmp_path / "killed"
    shutil.copytree(runs("gls"), run, ignore=shutil.ignore_patterns("report*"))
    for f in ("results.json", "accuracy.png", "loss.png"):
        if (run / f).exists():
            os.remove(run / f)
    os.remove(run / "sgd" / "seed1" / "result.json")
    path, text = _report(run, capsys)
    assert "incomplete (3 of 4 jobs done" in text
    assert "| `sgd` | 1 | — | — | — | — | — | started |" in text
    done = _json(run / "sgd" / "seed0" / "result.json")["test_acc"]
    assert f"| {done:.4f} ± 0.0000 | 1 |" in text            # summary of the finished jobs
    images = _images(path, text)
    assert {"report_val_acc.png", "report_train_loss.png"} <= set(images)


def test_out_elsewhere_and_missing_train_plot(runs, capsys, tmp_path):
    run = tmp_path / "train"
    shutil.copytree(runs("train"), run, ignore=shutil.ignore_patterns("report*"))
    os.remove(run / "loss.png")
    out = tmp_path / "elsewhere" / "summary.md"
    path, text = _report(run, capsys, "--out", out)
    assert path == str(out)
    images = _images(path, text)                               # paths relative to the report
    assert "summary_loss.png" in images and "val_accuracy.png" in images
    assert not (run / "report.md").exists()


@pytest.mark.parametrize("make", ["missing", "no_config", "bad_config"])
def test_bad_run_dir_is_one_line_exit_2(tmp_path, capsys, make):
    target = tmp_path / "run"
    if make != "missing":
        target.mkdir()
        (target / "logbook.csv").write_text("gen,max\n0,1\n")
    if make == "bad_config":
        (target / "config.json").write_text("{not json")
    capsys.readouterr()
    assert cli.main(["report", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("deapnn: error:")
    assert str(target) in err


def test_failures_in_logbook_are_counted_by_kind(runs, capsys, tmp_path):
    """The failsafe's logbook ``errors`` (``"<individual>: <reason>"``) and a diverged result."""
    from deapnn.rundir import RunDir, read_logbook
    run = tmp_path / "failing"
    shutil.copytree(runs("train"), run, ignore=shutil.ignore_patterns("report*"))
    rows = read_logbook(run / "logbook.csv")
    rows[0]["failed"], rows[0]["errors"] = 2, ["3: EvaluationTimeout: over 60 s",
                                               "7: EvaluationTimeout: over 61 s"]
    rows[1]["failed"], rows[1]["errors"] = 1, ["add(x, y): CUDA out of memory"]
    rd = RunDir.open(run)
    rd.write_logbook(rows)
    result = _json(run / "results.json")
    rd.write_json("results.json", dict(result, diverged=True, reason="non-finite loss at step 12"))
    path, text = _report(run, capsys)
    assert "status: diverged" in text
    assert "| logbook.csv | `EvaluationTimeout: over # s` | 2 | `EvaluationTimeout: over 60 s` |" \
        in text
    assert "| logbook.csv | `CUDA out of memory` | 1 |" in text
    assert "| results.json | `non-finite loss at step #` | 1 |" in text
    assert "Logbook `failed` column: 3 failed evaluations over 2 epochs." in text
