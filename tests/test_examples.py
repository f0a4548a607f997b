"""The example scripts run end to end (the CIFAR one on tiny fake files in the real format)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "DEAPNN_THREADS": "1", "OMP_NUM_THREADS": "1", "DEAPNN_DEVICE": "cpu"}


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=240)


def test_gls_cifar_smoke_runs_the_paper_pipeline_on_fake_cifar_files():
    out = run("examples/gls_cifar.py", "--smoke")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[0])
    assert result["seed"] == 0 and 0.0 <= result["test_acc"] <= 1.0
    assert result["cases_examined_last"] >= 1
    assert "test accuracy" in out.stdout


def test_lexicase_symbolic_regression_example_is_seeded():
    a = run("examples/lexicase_symbreg.py", "--ngen", "3", "--pop", "60", "--seed", "3")
    b = run("examples/lexicase_symbreg.py", "--ngen", "3", "--pop", "60", "--seed", "3")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.strip()


def test_lexicase_symbreg_runs_plainly_and_under_scoop_with_both_fitness_patterns():
    """Per-case values in fitness.values, or returned by evaluate and assigned in the main process:
    both survive SCOOP's worker processes, and give the same run as a plain one (same seed)."""
    args = ["examples/lexicase_symbreg.py", "--ngen", "3", "--pop", "60", "--seed", "3", "--quiet"]
    best = {}
    for fitness in ("cases", "mean"):
        plain = run(*args, "--fitness", fitness)
        scoop = run("-m", "scoop", "-n", "2", *args, "--fitness", fitness)
        assert plain.returncode == 0, plain.stderr
        assert scoop.returncode == 0, scoop.stderr
        assert f"fitness: {fitness}" in plain.stdout
        assert plain.stdout.splitlines()[-2:] == scoop.stdout.splitlines()[-2:]
        best[fitness] = plain.stdout.splitlines()[-2]
    assert best["cases"] == best["mean"]          # the same errors select the same parents


def test_bring_your_own_writes_an_npz_and_a_factory_and_runs_gls_and_nlfs_on_them(tmp_path):
    work = tmp_path / "byo"
    out = run("examples/bring_your_own.py", "--smoke", "--dir", str(work))
    assert out.returncode == 0, out.stderr[-3000:]
    for command in ("gls", "nlfs"):
        config = json.loads((work / command / "config.json").read_text())
        body = config[command] if command in config else config["config"]
        assert body["model"] == "my_models:small_net"
        assert body["dataset"] == str(work / "wine.npz")
        assert (work / command / "environment.json").is_file()
    rows = json.loads((work / "gls" / "results.json").read_text())["results"]
    assert {r["arm"] for r in rows} == {"gls", "sgd"} and not any(r.get("error") for r in rows)
    assert "my_models:small_net" in out.stdout and "best losses found" in out.stdout
