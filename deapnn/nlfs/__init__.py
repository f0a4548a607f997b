"""Neural loss function search on computational graphs (Morgan & Hougen 2024, §3):
configuration, surrogate evaluator, elimination protocol, DEAP toolbox, run driver, run summary
and final comparison.

The names load on first use, so importing :mod:`deapnn.nlfs.config` (what the command line does
to build its flags) does not import torch.
"""
from importlib import import_module

_WHERE = {
    "NLFSConfig": "config", "SurrogateConfig": "config",
    "default_stages": "elimination", "successive_halving": "elimination",
    "SurrogateEvaluator": "evaluator", "guarded_evaluator": "evaluator",
    "surrogate_training": "evaluator",
    "NLFSSummary": "summary", "run_nlfs": "run",
    "compare_final": "compare", "compare_tuned": "compare",
    "FitnessMax": "toolbox", "LossIndividual": "toolbox", "make_toolbox": "toolbox",
    "random_individual": "toolbox",
}

__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
