"""EvoMAL's runner shape: the run configuration (constraints declared once, CLI defaults from it,
legacy config.json), ``run_evomal`` as a library call (summary, phases, resume) and the archive's
one hits/misses bookkeeping (Raymond et al. 2023 §4.6 archive, §5 protocol)."""
import dataclasses
import json
import pathlib

import pytest

from deapnn.config import ConfigError
from deapnn.evomal.config import EvoMALConfig, EvoMALRunConfig
from deapnn.rundir import RunDir

TINY = dict(dataset="diabetes", population_size=3, generations=2, meta_steps=2, fitness_steps=10,
            rejection_steps=20, final_steps=20, seeds=[0, 1], hidden=(4,))


@pytest.mark.parametrize("field,value", [
    ("population_size", 1), ("generations", -1), ("cxpb", 1.5), ("elitism", 3), ("tournament", 0),
    ("max_height", 0), ("seeds", []), ("final_steps", -1), ("final_eval_every", -2),
    ("inner_steps", 0), ("meta_lr", 0.0), ("hidden", (0,)), ("fitness_steps", 1.5),
    ("momentum", 1.0), ("rejection_steps", 0),
])
def test_run_config_constraints_name_the_field(field, value):
    cfg = EvoMALRunConfig(population_size=3)
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(cfg, **{field: value}).validate()
    assert info.value.field == field and field in str(info.value)


def test_variation_rates_rule_is_shared_with_the_loop():
    with pytest.raises(ConfigError, match="cxpb \\+ mutpb <= 1") as info:
        EvoMALRunConfig(cxpb=0.8, mutpb=0.5).validate()
    assert info.value.field == "cxpb"
    with pytest.raises(ConfigError, match="nesterov"):
        EvoMALConfig(momentum=0.0, nesterov=True).validate()


def test_run_config_round_trip_legacy_and_invocation_settings():
    cfg = EvoMALRunConfig(**TINY, device="cpu").validate()
    stored = cfg.to_dict()
    assert "device" not in stored and stored["hidden"] == [4]
    back = EvoMALRunConfig.from_dict(json.loads(json.dumps(stored)))
    # the stored configuration is the resolved one: the same run, each reference default explicit
    assert back.to_dict() == stored and back.hidden == (4,)
    assert back.sgd() == cfg.sgd() and back.momentum == 0.9
    ev = cfg.evaluation()
    assert type(ev) is EvoMALConfig and ev.device == "cpu" and ev.fitness_steps == 10
    assert cfg.eval_every() == 1 and dataclasses.replace(cfg, final_eval_every=7).eval_every() == 7
    again = back.for_invocation(device="cpu", final_eval_every=5)
    assert again.final_eval_every == 5 and again.device == "cpu"
    with pytest.raises(ConfigError, match="invocation"):
        back.for_invocation(population_size=9)
    legacy = {"command": "evomal", **stored, "device": "auto", "quiet": True, "workers": 1,
              "resume": None, "out": "x", "final_eval_every": 3}
    from deapnn.results import migrate
    migrated = migrate({"config.json": legacy})["config.json"]     # the flat layout's step
    old = EvoMALRunConfig.from_dict(migrated["config"])
    assert old.population_size == 3 and old.hidden == (4,) and old.final_eval_every == 0
    assert migrated["device"] == "auto" and migrated["final_eval_every"] == 3
    with pytest.raises(ConfigError, match="unknown"):
        EvoMALRunConfig.from_dict({**stored, "bogus": 1})


def _parse(argv):
    from deapnn.cli import build_parser
    return build_parser().parse_args(["evomal", *argv])


def test_cli_defaults_are_the_config_defaults_and_errors_name_the_flag():
    from deapnn.commands import evomal
    from deapnn.commands.common import UsageError
    args = _parse([])
    assert evomal.COMMAND.configure(args)[1] == EvoMALRunConfig(device="auto")
    for argv, flag in ((["--elitism", "30"], "--elitism"), (["--meta-lr", "0"], "--meta-lr"),
                       (["--max-height", "0"], "--max-height")):
        with pytest.raises(UsageError, match=flag):
            evomal.COMMAND.configure(_parse(argv))


def test_cli_resumes_a_legacy_flat_run_directory(tmp_path):
    from deapnn.commands import evomal
    args = _parse(["--population-size", "5", "--hidden", "6", "--out", str(tmp_path / "old")])
    RunDir(tmp_path / "old", {"command": "evomal", **{k: v for k, v in vars(args).items()
                                                     if not callable(v)}})
    rundir, cfg = evomal.COMMAND.configure(_parse(["--resume", str(tmp_path / "old"),
                                           "--final-eval-every", "4"]))
    assert rundir.path == str(tmp_path / "old")
    assert cfg.population_size == 5 and cfg.hidden == (6,) and cfg.final_eval_every == 4


def test_archive_hits_and_misses_have_one_meaning():
    from deapnn.algorithms.evomal import eaEvoMAL
    from deapnn.evaluation import Evaluation
    from deapnn.evomal.toolbox import make_toolbox
    from deapnn.losses.archive import LossArchive
    calls = []

    def evaluate(text):
        calls.append(text)
        return Evaluation((float(len(text)),), {"reason": None})
    tb = make_toolbox(evaluate, map_fn=map)
    # equivalent trees inside one generation: one evaluation, the others wait for it
    pop = [tb.parse(t) for t in ("add(y, fx)", "add(fx, y)", "mul(y, fx)", "add(y, fx)")]
    archive = LossArchive(by="fingerprint")
    pop, log = eaEvoMAL(pop, tb, 3, archive=archive)
    assert archive.misses == len(calls) == sum(r["nevals"] for r in log)
    assert archive.hits == sum(r["cached"] for r in log)
    assert log[0]["nevals"] == 2 and log[0]["cached"] == 0
    assert all(ind.info["tree"] for ind in pop)          # assign() keeps the record as info
    assert archive.get("add(fx, y)")["fitness"] == len("add(y, fx)")


def summary_rows(run):
    import csv
    with open(run / "logbook.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_run_evomal_library_call_and_resume(tmp_path, capsys):
    from deapnn.evomal.run import EvoMALSummary, run_evomal
    # the untuned final comparison (the tuned one is resumed in test_comparison_runs)
    cfg = EvoMALRunConfig(**TINY, tune=False, device="cpu").validate()
    rundir = RunDir.create(tmp_path / "run", "evomal", cfg, device="cpu")
    lines = []
    summary = run_evomal(cfg, rundir, log=lines.append)
    assert capsys.readouterr().out == ""                     # the library prints nothing
    assert isinstance(summary, EvoMALSummary)
    text = "\n".join(lines)
    assert "best learned losses" in text
    # --generations 2 = two populations, the initial one included, and the lines say so
    assert "generation   1/2" in text and "generation   2/2" in text and "/3" not in text
    assert len(summary_rows(tmp_path / "run")) == 2
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert result == json.loads(json.dumps(summary.to_dict()))
    assert result["evaluations"] >= 1 and len(result["best"]) >= 1
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["command"] == "evomal" and stored["config"] == cfg.to_dict()
    assert RunDir.resume(tmp_path / "run").stored("evomal", EvoMALRunConfig).to_dict() == \
        cfg.to_dict()
    assert summary.tuned is None and summary.final is not None
    assert set(summary.final) == {"EvoMAL", "MSE"} and summary.paired["n"] == 2
    # resumed: nothing retrained, the same result
    lines.clear()
    again = run_evomal(cfg, RunDir.resume(tmp_path / "run"), log=lines.append)
    text = "\n".join(lines)
    assert "resuming" in text and text.count("(stored)") == 4
    strip = lambda s: {k: v for k, v in s.to_dict().items() if k != "timing"}  # noqa: E731
    assert strip(again) == strip(summary)


def test_evomal_library_modules_do_not_import_the_commands():
    root = pathlib.Path(__file__).resolve().parents[1] / "deapnn"
    files = list((root / "evomal").glob("*.py")) + [root / "algorithms" / "evomal.py",
                                                    root / "losses" / "archive.py"]
    for path in files:
        text = path.read_text()
        assert "deapnn.commands" not in text and "..commands" not in text, path


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", "\x00"])
def test_a_damaged_stored_trainings_file_is_the_runs_error_naming_it(tmp_path, text):
    from deapnn.evomal.compare import FINAL_FILE, TUNED_FILE, stored_runs
    from deapnn.rundir import RunDir, RunDirError
    rundir = RunDir.open(tmp_path)
    for name in (FINAL_FILE, TUNED_FILE):
        (tmp_path / name).write_text(text)
        assert stored_runs(rundir, name, resuming=False) is None   # a fresh run ignores it
        with pytest.raises(RunDirError, match=f"cannot resume .*{name} is "):
            stored_runs(rundir, name, resuming=True)
        (tmp_path / name).write_text('{"ident": 1, "runs": {}}')
        assert stored_runs(rundir, name, resuming=True) == {"ident": 1, "runs": {}}
