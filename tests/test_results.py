"""Typed run results with a version (deapnn.results): every command's summary round-trips its
``results.json``, old run directories (tests/fixtures/rundirs, tiny real runs of deapnn before
version 1) go through the one migration table for ``--resume``, ``deapnn report`` and
``deapnn compare`` (the exit codes computed from the summaries: tests/test_exit_codes.py)."""
import dataclasses
import json
import math
import os
import shutil

import pytest

from deapnn.cli import main
from deapnn.commands.common import EXIT_OK
from deapnn.results import (CONFIG_FILE, EARLIER_BEHAVIOUR, EARLIER_BEHAVIOUR_2,
                            LEGACY_RESULTS_FILE, MIGRATIONS, RENAMED_SETTINGS, SEED_LISTS,
                            RESULTS_FILE, SCHEMA_VERSION, Summary, job_row, migrate, read_run,
                            read_summary, stored_version, training_failures, tuned_trainings,
                            without_version)
from deapnn.rundir import RunDir, RunDirError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "rundirs")
#: fixture → (command, its results file before migration)
OLD = {"train_v0": ("train", "result.json"), "gls_v0": ("gls", "results.json"),
       "nlfs_v0": ("nlfs", "results.json"), "evomal_v0": ("evomal", "result.json"),
       "evomal_flat": ("evomal", "result.json")}


def _copy(name, tmp_path):
    target = tmp_path / name
    shutil.copytree(os.path.join(FIXTURES, name), target)
    return target


def _json(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _summary(name):
    return read_summary(os.path.join(FIXTURES, name))


# --- the summaries -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OLD))
def test_every_summary_round_trips_its_dict_and_renders(name):
    summary = _summary(name)
    assert isinstance(summary, Summary)
    data = summary.to_dict()
    assert data["schema_version"] == SCHEMA_VERSION
    again = type(summary).from_dict(json.loads(json.dumps(data)))
    assert again.to_dict() == json.loads(json.dumps(data))
    assert again.render() == summary.render() and again.render().strip()
    assert type(summary).from_dict(data) == summary
    assert summary.failures == [] and summary.jobs >= 1


@pytest.mark.parametrize("name", ["train_v0", "gls_v0", "nlfs_v0", "evomal_v0"])
def test_the_summaries_render_what_the_old_commands_printed(name):
    """``stdout.txt``: what the command printed when it made the fixture (README.md there)."""
    with open(os.path.join(FIXTURES, name, "stdout.txt"), encoding="utf-8") as fh:
        printed = fh.read()
    text = _summary(name).render()
    if name == "train_v0":        # version 0 did not store the device (the migration: null)
        assert text == "test accuracy: 0.7333  (1.5 s on None)"
        text = text.replace("on None", "on cpu")
    assert text.strip() and text + "\n" in printed


def test_jobs_of_the_loss_searches():
    assert _summary("nlfs_v0").jobs == 1 + 2 * 2        # the search + 2 losses × 2 seeds
    assert _summary("evomal_v0").jobs == 1 + 2 * 2
    assert _summary("gls_v0").jobs == 3 * 2             # arms × seeds


def test_train_summary_fields_and_failure():
    from deapnn.baseline import TrainSummary
    ok = TrainSummary("mse", 0.25, 3.0, False, None, "cpu")
    assert ok.to_dict() == {"schema_version": SCHEMA_VERSION, "test_mse": 0.25, "seconds": 3.0,
                            "diverged": False, "reason": None, "device": "cpu"}
    assert TrainSummary.from_dict(ok.to_dict()) == ok and ok.failures == [] and ok.jobs == 1
    bad = dataclasses.replace(ok, diverged=True, reason="non-finite loss at epoch 2")
    assert bad.failures == ["training: non-finite loss at epoch 2"]
    assert bad.render() == ("training diverged: non-finite loss at epoch 2\n"
                            "test mse: 0.2500  (3.0 s on cpu)")


def test_final_trainings_of_a_tuned_record_are_jobs():
    row = {"loss": "CE", "lr": 0.1, "tuned": {"test": [0.5, 0.6]}, "untuned": {"test": [0.5, 0.6]}}
    moved = {"loss": "found", "lr": 0.2, "tuned": {"test": [math.inf, 0.4]},
             "untuned": {"test": [0.3, float("nan")]}}
    jobs = tuned_trainings({"lr": 0.1, "seeds": [0, 1], "losses": [row, moved]})
    # the baseline's chosen lr is the configured one: its untuned trainings are the tuned ones
    assert [j for j, _ in jobs] == ["final CE tuned seed 0", "final CE tuned seed 1",
                                    "final found tuned seed 0", "final found tuned seed 1",
                                    "final found untuned seed 0", "final found untuned seed 1"]
    assert [f.split(":")[0] for f in training_failures(jobs)] == \
        ["final found tuned seed 0", "final found untuned seed 1"]


# --- the migration table ------------------------------------------------------------------------
def test_the_table_lists_version_steps_in_order():
    assert MIGRATIONS and all(isinstance(v, int) and isinstance(d, str) and d and callable(f)
                              for v, d, f in MIGRATIONS)
    assert [v for v, _, _ in MIGRATIONS] == sorted(v for v, _, _ in MIGRATIONS)
    assert max(v for v, _, _ in MIGRATIONS) < SCHEMA_VERSION


@pytest.mark.parametrize("name", list(OLD))
def test_every_old_layout_migrates_to_the_current_one(name):
    command, stored_name = OLD[name]
    raw = _json(os.path.join(FIXTURES, name, CONFIG_FILE))
    assert stored_version(raw) == 0
    files = read_run(os.path.join(FIXTURES, name))
    config, results = files[CONFIG_FILE], files[RESULTS_FILE]
    assert set(files) == {CONFIG_FILE, RESULTS_FILE}
    assert config["schema_version"] == results["schema_version"] == SCHEMA_VERSION
    assert config["command"] == command and isinstance(config["config"], dict)
    added = {"gls": {"config": config["config"]}, "train": {"device": None}}.get(command, {})
    expected = {**_json(os.path.join(FIXTURES, name, stored_name)), **added}
    renamed = RENAMED_SETTINGS.get(command, {})          # the names version 1 unified
    if command == "gls":
        expected["results"] = [job_row(r) for r in expected["results"]]
        assert all("pop" not in r and r["population_size"] for r in results["results"])
    expected["config"] = {renamed.get(k, k): list(range(v)) if k in SEED_LISTS
                          and isinstance(v, int) else v
                          for k, v in expected.get("config", {}).items()}   # counts: lists
    assert not set(renamed) & set(config["config"]) and set(renamed.values()) <= \
        set(config["config"])
    assert without_version(results) == {k: v for k, v in expected.items() if v != {}
                                        or k != "config"}
    assert migrate(files) == files                          # the current layout stays as it is


def test_the_flat_layouts_split_settings_from_the_invocation():
    flat = _json(os.path.join(FIXTURES, "evomal_flat", CONFIG_FILE))
    config = migrate({CONFIG_FILE: flat})[CONFIG_FILE]
    assert config["device"] == "auto" and config["workers"] == 1 and config["out"] == "runs/evomal"
    assert "device" not in config["config"] and config["config"]["population_size"] == 3
    train = {"command": "train", "dataset": "iris", "no_augment": True, "quiet": True}
    config = migrate({CONFIG_FILE: train})[CONFIG_FILE]
    assert config == {"command": "train", "config": {"dataset": "iris", "augment": False},
                      "quiet": True, "schema_version": SCHEMA_VERSION}
    named = {"command": "nlfs", "nlfs": {"population": 4}, "device": "cpu"}
    assert migrate({CONFIG_FILE: named})[CONFIG_FILE] == {
        "command": "nlfs", "config": {**EARLIER_BEHAVIOUR["nlfs"],
                                      **EARLIER_BEHAVIOUR_2["nlfs"], "population_size": 4},
        "device": "cpu",
        "schema_version": SCHEMA_VERSION}


def test_a_version_1_evomal_run_keeps_the_networks_and_archive_it_had():
    """Version 2 made the reference's Xavier initialisation, 1000x1000 MLP and exact-tree
    archive EvoMAL's defaults; a version-1 config.json lacks those settings and means the
    behaviour of its run."""
    from deapnn.evomal.config import EvoMALRunConfig
    v1 = {"command": "evomal", "schema_version": 1,
          "config": {"dataset": "diabetes", "model": "mlp", "hidden": None, "seeds": [0]}}
    config = migrate({CONFIG_FILE: v1})[CONFIG_FILE]
    block = config["config"]
    assert config["schema_version"] == SCHEMA_VERSION == 2
    assert (block["init"], block["archive_key"], block["hidden"]) == \
        ("pytorch", "fingerprint", [256, 256])
    cfg = EvoMALRunConfig(**block)
    assert cfg.hidden_of_model() == (256, 256) and cfg.init == "pytorch"
    sized = migrate({CONFIG_FILE: {**v1, "config": {**v1["config"], "hidden": [8]}}})
    assert sized[CONFIG_FILE]["config"]["hidden"] == [8]
    cnn = migrate({CONFIG_FILE: {**v1, "config": {**v1["config"], "model": "cnn"}}})
    assert cnn[CONFIG_FILE]["config"]["hidden"] is None
    # a version-2 configuration is read as written
    fresh = EvoMALRunConfig(dataset="diabetes").to_dict()
    now = migrate({CONFIG_FILE: {"command": "evomal", "schema_version": 2, "config": fresh}})
    assert now[CONFIG_FILE]["config"] == fresh and fresh["hidden"] == [1000, 1000]


def test_a_results_json_a_resumed_old_run_wrote_wins_over_result_json():
    config = {"command": "train", "config": {}}
    new = {"schema_version": SCHEMA_VERSION, "test_accuracy": 0.9, "seconds": 1.0,
           "diverged": False, "reason": None, "device": "cpu"}
    files = migrate({CONFIG_FILE: config, LEGACY_RESULTS_FILE: {"test_accuracy": 0.1},
                     RESULTS_FILE: new})
    assert files[RESULTS_FILE] == new and LEGACY_RESULTS_FILE not in files


@pytest.mark.parametrize("version,words", [(SCHEMA_VERSION + 1, "newer than this deapnn's"),
                                           ("1", "not a version number"),
                                           (True, "not a version number")])
def test_an_unknown_version_is_one_line_naming_the_file(tmp_path, capsys, version, words):
    run = _copy("train_v0", tmp_path)
    config = _json(run / CONFIG_FILE)
    (run / CONFIG_FILE).write_text(json.dumps({**config, "schema_version": version}))
    with pytest.raises(RunDirError, match=words):
        RunDir.resume(run)
    for argv in (["train", "--resume", str(run), "--quiet"], ["report", str(run)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "config.json" in err[0] and str(run) in err[0]


# --- every reader goes through it ----------------------------------------------------------------
@pytest.mark.parametrize("name", list(OLD))
def test_report_renders_an_old_run_as_its_migrated_copy(name, tmp_path, capsys):
    from deapnn.report import render_report
    old = _copy(name, tmp_path / "old")
    text = render_report(str(old)).text()
    assert "- status: complete" in text and "## Results" in text
    # the same run directory written in the current layout reports the same
    new = _copy(name, tmp_path / "new")
    files = read_run(str(new))
    for f in (CONFIG_FILE, RESULTS_FILE):
        (new / f).write_text(json.dumps(files[f]))
    if (new / LEGACY_RESULTS_FILE).exists():
        os.remove(new / LEGACY_RESULTS_FILE)

    def same(t, d):
        return [line.replace(str(d), "DIR") for line in t.splitlines()
                if "config.json to newest file" not in line]
    assert same(text, old) == same(render_report(str(new)).text(), new)
    assert main(["report", str(old)]) == 0


def test_resume_reads_every_old_configuration():
    from deapnn.baseline import TrainRunConfig
    from deapnn.evomal.config import EvoMALRunConfig
    from deapnn.gls import GLSConfig
    from deapnn.nlfs.config import NLFSConfig
    classes = {"train": TrainRunConfig, "gls": GLSConfig, "nlfs": NLFSConfig,
               "evomal": EvoMALRunConfig}
    for name, (command, _) in OLD.items():
        rundir = RunDir.resume(os.path.join(FIXTURES, name))
        assert rundir.version == 0 and rundir.config["schema_version"] == SCHEMA_VERSION
        cfg = rundir.stored(command, classes[command])
        assert cfg.dataset == {"train": "iris", "gls": "iris", "nlfs": "iris"}.get(command,
                                                                                  "diabetes")
    flat = RunDir.resume(os.path.join(FIXTURES, "evomal_flat")).stored("evomal", EvoMALRunConfig)
    # before the rejection setting: the earlier behaviour, generations counted after the first
    assert (flat.rejection, flat.fitness_seed, flat.generations, flat.tune) == \
        ("before", "per_tree", 2, False)
    one = RunDir.resume(os.path.join(FIXTURES, "evomal_v0")).stored("evomal", EvoMALRunConfig)
    assert (one.rejection, one.generations, one.hidden) == ("reference", 2, (8,))


def test_a_resumed_old_train_run_finishes_in_the_current_layout(tmp_path, capsys):
    run = _copy("train_v0", tmp_path)
    migrated = read_run(str(run))[CONFIG_FILE]
    os.remove(run / LEGACY_RESULTS_FILE)    # unfinished (a finished run resumed is a no-op)
    assert main(["train", "--resume", str(run), "--quiet", "--device", "cpu"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("test accuracy: ")
    assert not (run / LEGACY_RESULTS_FILE).exists()
    assert _json(run / CONFIG_FILE) == migrated
    assert _json(run / RESULTS_FILE)["device"] == "cpu"
    assert main(["report", str(run)]) == 0


def test_a_resumed_old_gls_run_reads_its_jobs_back(tmp_path, capsys):
    run = _copy("gls_v0", tmp_path)
    table = _summary("gls_v0").render()
    os.remove(run / RESULTS_FILE)           # unfinished (a finished run resumed is a no-op)
    assert main(["gls", "--resume", str(run), "--quiet"]) == EXIT_OK   # every job finished
    assert capsys.readouterr().out == f"{table}\nrun directory: {run}\n"
    assert _json(run / CONFIG_FILE)["schema_version"] == SCHEMA_VERSION
    from deapnn.gls import GLSConfig
    assert GLSConfig.from_dict(_json(run / RESULTS_FILE)["config"]) == \
        RunDir.resume(run).stored("gls", GLSConfig)


@pytest.mark.parametrize("name", ["nlfs_v0", "evomal_v0", "evomal_flat"])
def test_compare_reads_an_old_run(name, tmp_path):
    from deapnn.cli import build_parser
    from deapnn.commands.compare import load_run
    run = _copy(name, tmp_path)
    _, kind, cfg, found = load_run(build_parser().parse_args(["compare", str(run)]))
    assert kind == OLD[name][0] and found and cfg.tune
