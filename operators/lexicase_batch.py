"""Alias of :mod:`deapnn.operators.lexicase_batch`: the same module object under the short path."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("deapnn.operators.lexicase_batch")
