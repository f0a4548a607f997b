"""Alias of :mod:`deapnn.operators.lexicase_variants`: the same module under the short path."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("deapnn.operators.lexicase_variants")
