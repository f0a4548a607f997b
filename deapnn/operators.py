"""The DEAP toolbox operators of deapnn, under a name nothing can shadow: ``deapnn.operators``.

The operators live in the top-level package ``operators``; a user's own ``operators.py`` next to
their script (or the standard library's ``operator`` mistyped) would shadow it.  This module finds
the package in the directory beside ``deapnn`` and exposes the *same objects*::

    from deapnn.operators import selLexicase, lexicase      # light: numpy only, no torch
    from deapnn.operators import mutSubGD                    # loads the PyTorch operators lazily

When ``import operators`` resolves to ours (the usual case), this module returns its objects.  When
another module named ``operators`` is imported, or would be found first on ``sys.path``, ours is
loaded under the private name ``deapnn._operators`` and the other one is left untouched.
"""
import importlib
import importlib.util
import os
import sys

_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "operators")
_PRIVATE = "deapnn._operators"


def _is_ours(origin):
    return bool(origin) and os.path.dirname(os.path.abspath(origin)) == _DIR


def _load():
    loaded = sys.modules.get("operators")
    if loaded is not None and _is_ours(getattr(loaded, "__file__", None)):
        return loaded
    if loaded is None:
        spec = importlib.util.find_spec("operators")
        if spec is not None and _is_ours(spec.origin):
            return importlib.import_module("operators")
    if _PRIVATE in sys.modules:
        return sys.modules[_PRIVATE]
    spec = importlib.util.spec_from_file_location(
        _PRIVATE, os.path.join(_DIR, "__init__.py"), submodule_search_locations=[_DIR])
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PRIVATE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_PRIVATE]
        raise
    return module


_pkg = _load()
__all__ = list(_pkg.__all__)


def __getattr__(name):
    return getattr(_pkg, name)


def __dir__():
    return sorted(set(globals()) | set(dir(_pkg)))
