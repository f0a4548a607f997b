"""Acceptance (issue 7): every evaluation seeds itself from the run seed and the individual's
identity, so a ``--workers 2`` run (real ``python -m scoop -n 2`` through the CLI's re-launch)
gives exactly the result of a serial run with the same seed and batch settings on CPU.
GLS and EvoMAL here; NLFS (serial ``--batch 2`` vs ``--workers 2``, with a SIGKILL + resume on
the way) in tests/test_kill_resume.py."""
import csv
import json
import sys

from test_scale import run_group, scoop_env


def _logbook(path):
    """Rows without wall-clock columns."""
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if not k.endswith(("_time", "seconds"))}
                for r in csv.DictReader(fh)]


def _both(tmp_path, argv):
    env = scoop_env(tmp_path)
    outs = {}
    for name, extra in (("serial", []), ("scoop", ["--workers", "2"])):
        out = tmp_path / name
        rc, stdout, err = run_group([sys.executable, "-m", "deapnn", *argv, *extra,
                                     "--out", str(out)], env)
        assert rc == 0, f"{name}: rc {rc}\n{err[-3000:]}"
        outs[name] = (out, stdout, err)
    return outs


def test_gls_workers_2_equals_serial(tmp_path):
    outs = _both(tmp_path, ["gls", "--dataset", "iris", "--model", "mlp", "--epochs", "1",
                            "--population-size", "2", "--seeds", "0,1", "--compare", "none",
                            "--batch-size", "32", "--device", "cpu", "--quiet"])
    key = lambda r: (r["arm"], r["seed"])                              # noqa: E731
    a, b = (json.loads((o / "results.json").read_text())["results"] for o, _, _ in outs.values())
    assert len(a) == 2 and not any(r.get("error") for r in a + b)
    assert [(key(r), r["test_acc"], r["val_acc"]) for r in sorted(a, key=key)] == \
        [(key(r), r["test_acc"], r["val_acc"]) for r in sorted(b, key=key)]
    assert "GLS" in outs["scoop"][1]                    # stdout of the SCOOP origin is ours
    for arm in ("gls",):
        for seed in (0, 1):
            rel = f"{arm}/seed{seed}/logbook.csv"
            la, lb = (_logbook(o / rel) for o, _, _ in outs.values())
            assert la == lb and len(la) >= 1


def test_evomal_workers_2_equals_serial(tmp_path):
    outs = _both(tmp_path, ["evomal", "--dataset", "diabetes", "--population-size", "4",
                            "--generations", "1", "--meta-steps", "3", "--fitness-steps", "20",
                            "--rejection-steps", "50", "--final-steps", "20", "--seeds", "0-0",
                            "--hidden", "8", "--device", "cpu", "--quiet", "--seed", "2"])
    a, b = (json.loads((o / "results.json").read_text()) for o, _, _ in outs.values())
    assert a["best"] and a["best"][0]["fitness"] < float("inf")      # a real search happened
    assert a["best"] == b["best"] and a.get("final") == b.get("final")
    la, lb = ((o / "logbook.csv").read_text() for o, _, _ in outs.values())
    assert la == lb
