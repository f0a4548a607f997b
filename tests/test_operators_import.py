"""Importing the lexicase operators is light; the PyTorch operators load on first access.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds torch).
What a user's own ``operators.py`` can and cannot reach is tests/test_shadowing.py.
"""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "torchvision", "sklearn")
#: (code) the loaded deapnn modules outside deapnn.operators: ``operators`` is an alias of
#: ``deapnn.operators``, so importing it loads the package deapnn, and nothing else of it but
#: deapnn.deprecation (the one removal version its deprecation messages name; stdlib only)
OTHER_DEAPNN = ("[m for m in sys.modules if m.startswith('deapnn.') and not "
                "m.startswith('deapnn.operators') and m != 'deapnn.deprecation']")


def _python(code):
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_operators_does_not_load_the_deep_learning_stack():
    out = _python(f"""
        import sys
        import operators
        operators.selLexicase
        from operators import selLexicase, lexicase, dalex, selDALex, lexicase_filter
        print(sorted(m for m in {HEAVY!r} if m in sys.modules) + {OTHER_DEAPNN})
    """)
    assert out.strip() == "[]"


def test_import_deapnn_operators_is_light_too():
    out = _python(f"""
        import sys
        import deapnn.operators
        from deapnn.operators import selLexicase, selAutomaticEpsilonLexicase
        import operators
        assert deapnn.operators.selLexicase is operators.selLexicase is selLexicase
        print(sorted(m for m in {HEAVY!r} if m in sys.modules) + {OTHER_DEAPNN})
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
