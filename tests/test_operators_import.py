"""Importing the lexicase operators is light, and ``deapnn.operators`` cannot be shadowed.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds torch).
"""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "torchvision", "sklearn", "deapnn")


def _python(code, cwd=ROOT, script=False):
    env = {**os.environ, "PYTHONPATH": ROOT}
    code = textwrap.dedent(code)
    if script:                                  # run as a script file: its folder is sys.path[0]
        path = os.path.join(cwd, "main_script.py")
        with open(path, "w") as fh:
            fh.write(code)
        args = [sys.executable, path]
    else:
        args = [sys.executable, "-c", code]
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_operators_does_not_load_the_deep_learning_stack():
    out = _python(f"""
        import sys
        import operators
        operators.selLexicase
        from operators import selLexicase, lexicase, dalex, selDALex, lexicase_filter
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_import_deapnn_operators_is_light_too():
    out = _python(f"""
        import sys
        import deapnn.operators
        from deapnn.operators import selLexicase, selAutomaticEpsilonLexicase
        import operators
        assert deapnn.operators.selLexicase is operators.selLexicase is selLexicase
        print(sorted(m for m in {HEAVY[:3]!r} if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_deep_learning_operators_load_lazily_on_first_use():
    out = _python("""
        import sys
        import operators
        assert "mutSubGD" in dir(operators) and "torch" not in sys.modules
        from operators import mutSubGD
        from operators.gls import mutSubGD as direct
        assert mutSubGD is direct and "torch" in sys.modules
        from deapnn.operators import mutGraph
        assert mutGraph is operators.graph.mutGraph
        try:
            operators.noSuchOperator
        except AttributeError as exc:
            print(exc)
    """)
    assert "has no attribute 'noSuchOperator'" in out


def test_a_users_operators_py_does_not_shadow_deapnn_operators(tmp_path):
    (tmp_path / "operators.py").write_text("MARK = 'mine'\n")
    check = """
        import numpy as np
        sel = ops.selLexicase
        assert ops.lexicase(np.array([[0, 1], [1, 0], [2, 2]]), 5, rng=0).max() <= 1
        assert operators.MARK == "mine"          # the user's module is left alone
        print("ok", ops.__name__)
    """
    out = _python("import deapnn.operators as ops\nimport operators\n" + textwrap.dedent(check),
                  cwd=tmp_path, script=True)
    assert out.startswith("ok")
    out = _python("import operators\nimport deapnn.operators as ops\n" + textwrap.dedent(check),
                  cwd=tmp_path, script=True)
    assert out.startswith("ok")


def test_every_exported_name_resolves_to_its_submodule_object():
    out = _python("""
        import importlib
        import operators, deapnn.operators
        for name in operators.__all__:
            obj = getattr(operators, name)
            assert getattr(deapnn.operators, name) is obj, name
            assert getattr(importlib.import_module(obj.__module__), name) is obj, name
        ns = {}
        exec("from deapnn.operators import *", ns)
        assert set(operators.__all__) <= set(ns)
        print(len(operators.__all__))
    """)
    assert int(out) >= 25
