"""``deapnn evomal`` end to end on diabetes (tiny settings): outputs, bad input, SIGKILL + resume
gives the identical result (Raymond et al. 2023 §5 protocol, disjoint test split)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from deapnn.cli import _Parser
from deapnn.commands import evomal
from deapnn.commands.common import UsageError

TINY = ["--dataset", "diabetes", "--population-size", "4", "--generations", "2",
        "--meta-steps", "3", "--fitness-steps", "20", "--rejection-steps", "50",
        "--final-steps", "40", "--seeds", "0-2", "--hidden", "8", "--quiet"]
ENTRY = ("import sys\nfrom deapnn.cli import _Parser\nfrom deapnn.commands import evomal\n"
         "p = _Parser(prog='deapnn'); s = p.add_subparsers(dest='command', parser_class=_Parser)\n"
         "evomal.register(s); a = p.parse_args(sys.argv[1:]); a.check(a); sys.exit(a.func(a))\n")


def _parse(argv):
    p = _Parser(prog="deapnn")
    evomal.register(p.add_subparsers(dest="command", parser_class=_Parser))
    return p.parse_args(argv)


@pytest.mark.parametrize("extra,match", [
    (["--inner-steps", "0"], "--inner-steps"), (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--population-size", "1"], "--population-size"),
    (["--cxpb", "0.9", "--mutpb", "0.5"], "cxpb"),
    (["--model", "foo"], "unknown model 'foo'"), (["--seeds", "none"], "--seeds"),
    (["--final-eval-every", "-1"], "--final-eval-every"),
    (["--rejection", "after"], "--rejection must be one of reference, before"),
    (["--fitness-seed", "tree"], "--fitness-seed must be one of common, per_tree"),
    (["--generations", "0"], "--generations must be an integer >= 1"),
])
def test_bad_arguments_fail_fast(extra, match):
    args = _parse(["evomal", *TINY, *extra])
    with pytest.raises(UsageError, match=match):
        args.check(args)


def test_faithfulness_flags_reach_the_configuration():
    cfg = evomal.COMMAND.configure(_parse(["evomal", *TINY]))[1]
    assert (cfg.rejection, cfg.fitness_seed, cfg.generations, cfg.ngen()) == \
        ("reference", "common", 2, 1)
    cfg = evomal.COMMAND.configure(_parse(["evomal", *TINY, "--rejection", "before",
                                           "--fitness-seed", "per_tree", "--generations", "3"]))[1]
    assert (cfg.rejection, cfg.fitness_seed, cfg.generations) == ("before", "per_tree", 3)
    cfg = evomal.COMMAND.configure(_parse(["evomal", "--dataset", "digits"]))[1]
    assert cfg.steps_of_rejection() == 100


def _cli(tmp_path, argv, env=None):
    script = tmp_path / "entry.py"
    script.write_text(ENTRY)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})}
    return subprocess.Popen([sys.executable, str(script), "evomal", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_run_outputs_and_sigkill_resume_identical(tmp_path, capsys):
    full = tmp_path / "full"
    args = _parse(["evomal", *TINY, "--no-tune", "--out", str(full)])
    args.check(args)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "best learned losses" in out and "EvoMAL" in out and "MSE" in out
    for name in ("config.json", "logbook.csv", "checkpoint.pt", "results.json",
                 "learning_curve.png"):
        assert (full / name).exists(), name
    result = json.loads((full / "results.json").read_text())
    assert len(result["final"]["EvoMAL"]["test"]) == 3 and len(result["final"]["MSE"]["test"]) == 3

    killed = tmp_path / "killed"
    proc = _cli(tmp_path, [*TINY, "--no-tune", "--out", str(killed)])
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert (killed / "checkpoint.pt").exists()
    proc = _cli(tmp_path, ["--resume", str(killed), "--quiet"])
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "resuming" in out
    assert (killed / "logbook.csv").read_text() == (full / "logbook.csv").read_text()
    assert _untimed(json.loads((killed / "results.json").read_text())) == _untimed(result)


def _untimed(result):
    """results.json without the wall times (the only part a resume may change)."""
    result = dict(result)
    timing = result.pop("timing")
    assert timing["search_seconds"] >= 0 and timing["final_seconds"] >= 0
    return result


def test_resume_reuses_finished_final_runs(tmp_path, capsys):
    """A run killed during the final comparison keeps the finished (loss, seed) trainings."""
    out = tmp_path / "run"
    args = _parse(["evomal", *TINY, "--no-tune", "--out", str(out)])
    args.check(args)
    assert args.func(args) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["paired"]["n"] == 3 and result["paired"]["of"] == "EvoMAL - MSE"
    assert result["paired"]["wins"] + result["paired"]["ties"] + result["paired"]["losses"] == 3
    assert result["evaluations"] >= 1 and result["archive_hits"] >= 0
    # as if killed after EvoMAL seed 0 and 1: drop the rest of the stored runs
    partial = json.loads((out / "final_runs.json").read_text())
    partial["runs"] = {"EvoMAL": partial["runs"]["EvoMAL"][:2]}
    (out / "final_runs.json").write_text(json.dumps(partial))
    (out / "results.json").unlink()
    capsys.readouterr()
    args = _parse(["evomal", "--resume", str(out), "--quiet"])
    args.check(args)
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("(stored)") == 2 and "EvoMAL  seed 2: test" in printed
    assert "paired EvoMAL - MSE" in printed and "early stopping" in printed
    assert _untimed(json.loads((out / "results.json").read_text())) == _untimed(result)
    final = result["final"]["EvoMAL"]
    assert len(final["test_es"]) == 3 and result["paired_early_stopped"]["n"] == 3
    for val, test, step, es in zip(final["val_curves"], final["curves"], final["es_step"],
                                   final["test_es"]):
        assert len(val) == 21 and step == min(val, key=lambda p: p[1])[0]    # 40 steps / 20
        assert es == dict(test)[step]
    # a finer evaluation grid on resume retrains (an unfinished run: a finished one is not
    # changed, tests/test_resume_semantics.py); evaluation never changes the trained networks
    (out / "results.json").unlink()
    args = _parse(["evomal", "--resume", str(out), "--quiet", "--final-eval-every", "4"])
    args.check(args)
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "retraining" in printed and "(stored)" not in printed
    finer = json.loads((out / "results.json").read_text())
    assert len(finer["final"]["MSE"]["curves"][0]) == 11
    for name in ("EvoMAL", "MSE"):
        assert finer["final"][name]["test"] == result["final"][name]["test"]


def test_paired_comparison_counts_lower_as_win():
    from deapnn.evomal.compare import paired_comparison

    def runs(vals):
        return {"runs": [{"seed": i, "test": v} for i, v in enumerate(vals)]}
    p = paired_comparison({"EvoMAL": runs([0.1, 0.3, 0.2, float("inf")]),
                           "CE": runs([0.2, 0.2, 0.2, 0.5])})
    assert (p["wins"], p["ties"], p["losses"], p["n"]) == (1, 1, 1, 3)
    assert abs(p["mean"]) < 1e-12 and p["of"] == "EvoMAL - CE"


def test_final_milestones_flag():
    cfg = evomal.COMMAND.configure(_parse(["evomal", "--dataset", "digits", "--final-steps", "300",
                                   "--final-milestones", "100,200"]))[1]
    assert cfg.milestones_of_final() == (100, 200) and cfg.steps_of_final() == 300
    none = evomal.COMMAND.configure(_parse(["evomal", "--dataset", "cifar10", "--model", "mlp",
                                    "--final-milestones", ""]))[1]
    assert none.milestones_of_final() == () and none.steps_of_final() == 150_000

def test_list_flags_fail_with_one_line_naming_the_flag(capsys):
    for flag, bad in (("--final-milestones", "10,x"), ("--final-milestones", "0"),
                      ("--hidden", "8,y"), ("--hidden", "")):
        with pytest.raises(SystemExit) as info:
            _parse(["evomal", flag, bad])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and f"argument {flag}: must" in err
