"""Alias of :mod:`deapnn.operators.lexicase_informed`: the same module object, short path."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("deapnn.operators.lexicase_informed")
