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

TINY = ["--dataset", "diabetes", "--population", "4", "--generations", "2", "--meta-steps", "3",
        "--fitness-steps", "20", "--rejection-steps", "50", "--final-steps", "40", "--seeds", "3",
        "--hidden", "8", "--quiet"]
ENTRY = ("import sys\nfrom deapnn.cli import _Parser\nfrom deapnn.commands import evomal\n"
         "p = _Parser(prog='deapnn'); s = p.add_subparsers(dest='command', parser_class=_Parser)\n"
         "evomal.register(s); a = p.parse_args(sys.argv[1:]); a.check(a); sys.exit(a.func(a))\n")


def _parse(argv):
    p = _Parser(prog="deapnn")
    evomal.register(p.add_subparsers(dest="command", parser_class=_Parser))
    return p.parse_args(argv)


@pytest.mark.parametrize("extra,match", [
    (["--inner-steps", "0"], "--inner-steps"), (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--population", "1"], "--population"), (["--cxpb", "0.9", "--mutpb", "0.5"], "cxpb"),
    (["--model", "foo"], "unknown model 'foo'"), (["--seeds", "0"], "--seeds"),
])
def test_bad_arguments_fail_fast(extra, match):
    args = _parse(["evomal", *TINY, *extra])
    with pytest.raises(UsageError, match=match):
        args.check(args)


def _cli(tmp_path, argv, env=None):
    script = tmp_path / "entry.py"
    script.write_text(ENTRY)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})}
    return subprocess.Popen([sys.executable, str(script), "evomal", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_run_outputs_and_sigkill_resume_identical(tmp_path, capsys):
    full = tmp_path / "full"
    args = _parse(["evomal", *TINY, "--out", str(full)])
    args.check(args)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "best learned losses" in out and "EvoMAL" in out and "MSE" in out
    for name in ("config.json", "logbook.csv", "checkpoint.pt", "result.json",
                 "learning_curve.png"):
        assert (full / name).exists(), name
    result = json.loads((full / "result.json").read_text())
    assert len(result["final"]["EvoMAL"]["test"]) == 3 and len(result["final"]["MSE"]["test"]) == 3

    killed = tmp_path / "killed"
    proc = _cli(tmp_path, [*TINY, "--out", str(killed)])
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
    assert json.loads((killed / "result.json").read_text()) == result
