"""Alias of :mod:`deapnn.operators.lexicase_informed_deap`: the same module object."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("deapnn.operators.lexicase_informed_deap")
