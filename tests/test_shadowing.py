"""A user's own ``operators.py`` (common beside DEAP scripts) never reaches deapnn.

The operators live in ``deapnn.operators``; the top-level ``operators`` package is an alias of it.
Every check runs in a fresh interpreter whose working directory (first on ``sys.path``, also
under ``python -m scoop``) holds a hostile ``operators.py``: it records that it ran in a marker
file, then exits.  Nothing of deapnn may import it: not a module, not a command (plainly or on
SCOOP workers), not a pickle load.
"""
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def shadow(tmp_path):
    """A directory holding a hostile ``operators.py``; ``shadow.ran()`` says whether it ran."""
    where = tmp_path / "shadowed"
    where.mkdir()
    mark = tmp_path / "shadow-ran"
    (where / "operators.py").write_text(
        f"open({str(mark)!r}, 'a').write('ran\\n')\nraise SystemExit('shadow imported')\n")

    class Shadow:
        dir = where

        @staticmethod
        def ran():
            return mark.exists()
    return Shadow


def _run(args, cwd, timeout=180):
    env = {**os.environ, "PYTHONPATH": ROOT, "DEAPNN_THREADS": "1"}
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args} exited {out.returncode}:\n{out.stdout[-2000:]}" \
                                f"\n{out.stderr[-4000:]}"
    return out.stdout


def _python(code, cwd):
    return _run([sys.executable, "-c", textwrap.dedent(code)], cwd)


# --- (a) every module ------------------------------------------------------------------------
def test_importing_every_deapnn_module_never_runs_a_local_operators_py(shadow):
    out = _python("""
        import importlib, pkgutil, sys
        import deapnn
        names = [m.name for m in pkgutil.walk_packages(deapnn.__path__, "deapnn.")
                 if not m.name.endswith("__main__")]       # __main__ runs the command line
        for name in names:
            importlib.import_module(name)
        assert "operators" not in sys.modules
        print(len(names))
    """, shadow.dir)
    assert not shadow.ran()
    assert int(out) > 50                 # the walk did reach the whole package


# --- (b) the commands, plainly and on SCOOP workers -----------------------------------------
COMMANDS = {
    "gls": ["--dataset", "iris", "--model", "mlp", "--population-size", "2", "--epochs", "1",
            "--compare", "none"],
    "nlfs": ["--dataset", "iris", "--population-size", "3", "--pool", "4", "--cycles", "2",
             "--sample-size", "2", "--budget", "20", "--seeds", "0-0", "--final-steps", "20",
             "--no-tune"],
    "evomal": ["--dataset", "diabetes", "--population-size", "2", "--generations", "1",
               "--meta-steps", "1", "--fitness-steps", "5", "--rejection-steps", "5",
               "--final-steps", "10", "--hidden", "4", "--seeds", "0-0", "--no-tune"],
}
RUNS = [(cmd, ()) for cmd in COMMANDS] + [("gls", ("--workers", "2"))]   # SCOOP: one, it is slow


@pytest.mark.parametrize("command,extra", RUNS,
                         ids=[c + ("-scoop" if e else "") for c, e in RUNS])
def test_a_command_beside_a_local_operators_py_runs_without_it(shadow, command, extra):
    out_dir = shadow.dir / f"run-{command}"
    _run([sys.executable, "-m", "deapnn", command, *COMMANDS[command], *extra, "--quiet",
          "--out", str(out_dir)], shadow.dir, timeout=240)
    assert not shadow.ran()
    assert (out_dir / "results.json").is_file()


# --- (c) pickles -----------------------------------------------------------------------------
BUILD = """
    import functools, pickle, sys
    from deap import base
    from deapnn.operators import checkIntegrity, mutSubGD, selAgingTournament, selLexicase
    toolbox = base.Toolbox()
    toolbox.register("select", selLexicase)
    toolbox.register("mutate", mutSubGD, batch_size=8)
    toolbox.register("tournament", selAgingTournament, sample_size=2)
    toolbox.register("integrity", checkIntegrity)
    assert all(isinstance(getattr(toolbox, n), functools.partial)
               for n in ("select", "mutate", "tournament", "integrity"))
    with open(sys.argv[1], "wb") as fh:
        pickle.dump(toolbox, fh)
"""
LOAD = """
    import pickle, sys
    import deapnn.operators as ops
    expected = {"select": ops.selLexicase, "mutate": ops.mutSubGD,
                "tournament": ops.selAgingTournament, "integrity": ops.checkIntegrity}
    for path in sys.argv[1:]:
        with open(path, "rb") as fh:
            toolbox = pickle.load(fh)
        for name, func in expected.items():
            assert getattr(toolbox, name).func is func, (path, name)
            assert func.__module__.startswith("deapnn.operators."), func.__module__
    assert toolbox.mutate.keywords == {"batch_size": 8}
    for name in ops.__all__:             # every public object pickles by a path inside deapnn
        module = getattr(ops, name).__module__  # (correctArguments is deapnn.losses.tree's)
        assert module.startswith("deapnn.operators.") or name == "correctArguments", (name, module)
        assert module.startswith("deapnn."), (name, module)
    assert "operators" not in sys.modules
    print("loaded", len(sys.argv) - 1)
"""


def test_toolboxes_pickled_with_or_without_a_shadow_load_anywhere(shadow, tmp_path):
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    pickles = [str(tmp_path / "plain.pkl"), str(tmp_path / "shadowed.pkl")]
    for where, path in zip((plain_dir, shadow.dir), pickles):
        _run([sys.executable, "-c", textwrap.dedent(BUILD), path], where)
    for where in (plain_dir, shadow.dir):
        out = _run([sys.executable, "-c", textwrap.dedent(LOAD), *pickles], where)
        assert out.strip() == "loaded 2"
    assert not shadow.ran()
    for path in pickles:                 # recorded under the one path that loads anywhere
        with open(path, "rb") as fh:
            data = fh.read()
        assert b"deapnn.operators.lexicase_deap" in data and b"deapnn._operators" not in data


# --- (d) the public alias ``operators`` ------------------------------------------------------
SUBMODULES = ["aging", "dalex", "gls", "gls_cases", "gp_loss", "graph", "graph_integrity",
              "graph_phenotype", "lexicase", "lexicase_deap", "lexicase_engine", "lexicase_util"]


def test_operators_modules_are_the_deapnn_operators_modules():
    import importlib

    import deapnn.operators
    import operators
    for name in SUBMODULES:
        alias = importlib.import_module(f"operators.{name}")
        assert alias is sys.modules[f"deapnn.operators.{name}"] is sys.modules[f"operators.{name}"]
    from operators.graph_phenotype import PopulationIndex
    assert PopulationIndex is deapnn.operators.graph_phenotype.PopulationIndex
    assert set(operators.__all__) == set(deapnn.operators.__all__)
    for name in operators.__all__:
        assert getattr(operators, name) is getattr(deapnn.operators, name), name
    assert callable(operators.lexicase) and callable(operators.dalex)   # functions, as before


def test_operators_alias_loads_numpy_only(tmp_path):
    out = _python("""
        import sys
        import operators
        import operators.lexicase_deap
        from operators import selLexicase, lexicase, dalex, selDALex, lexicase_filter
        import deapnn.operators
        alias = sys.modules["operators.lexicase_deap"]
        assert alias is sys.modules["deapnn.operators.lexicase_deap"]
        assert selLexicase.__module__ == "deapnn.operators.lexicase_deap"
        assert "mutSubGD" in dir(operators) and "mutSubGD" in dir(deapnn.operators)
        heavy = [m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "sklearn")
                 or m.startswith("deapnn.") and not m.startswith("deapnn.operators")
                 and m != "deapnn.deprecation"]     # the removal version, stdlib only
        print(sorted(heavy))
    """, tmp_path)
    assert out.strip() == "[]"


def test_a_pickle_of_the_alias_records_the_deapnn_path():
    import operators
    data = pickle.dumps(operators.selEpsilonLexicase)
    assert b"deapnn.operators.lexicase_deap" in data
    assert pickle.loads(data) is operators.selEpsilonLexicase
