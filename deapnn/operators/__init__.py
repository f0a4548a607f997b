"""DEAP toolbox operators of deapnn: selection (lexicase family, gradient lexicase), mutation
(subset gradient descent), and more. Pure, small, composable; never imports ``deapnn.algorithms``.

The lexicase family (:func:`lexicase`, :func:`dalex`, ``selLexicase`` ...) needs only numpy and is
imported eagerly: ``import deapnn.operators`` costs about what ``import deap.tools`` does.  The
operators that train or probe PyTorch models (``mutSubGD``, ``mutGraph`` ...) are loaded on first
access (module ``__getattr__``, PEP 562), so ``from deapnn.operators import mutSubGD`` works but a
program that only selects never imports torch.  ``from deapnn.operators import *`` loads everything.

The operators live here, inside ``deapnn``, so that every object's ``__module__`` is a path that a
user's own ``operators.py`` (common beside DEAP scripts, and on ``sys.path`` under SCOOP) cannot
shadow: pickles, SCOOP workers and deapnn's own modules resolve ``deapnn.operators.<module>``.
The top-level package ``operators`` is the DEAP-style short path; its modules are aliases of
these, so both paths give the very same objects.
"""
from importlib import import_module

from .dalex import dalex
from .lexicase import case_mad, lexicase, lexicase_filter
from .lexicase_deap import (case_errors, selAutomaticEpsilonLexicase, selDALex,
                            selDownsampledLexicase, selEpsilonLexicase, selLexicase)
from .lexicase_batch import batch_lexicase, selBatchLexicase
from .lexicase_informed import case_distances, farthest_first, informed_downsampled_lexicase
from .lexicase_informed_deap import selInformedDownsampledLexicase
from .lexicase_exact import lexicase_probabilities
from .lexicase_variants import selPlexicase
from .plexicase import plexicase, plexicase_probabilities

# name -> submodule, imported on first access (these pull in torch / deapnn)
_LAZY = {
    "oldestIndex": "aging", "replaceOldest": "aging", "selAgingTournament": "aging",
    "mutSubGD": "gls", "selGradientLexicase": "gls", "selRandomChild": "gls",
    "correctArguments": "gp_loss", "heightLimit": "gp_loss", "mutCorrectArguments": "gp_loss",
    "mutUniformLoss": "gp_loss",
    "IntegrityResult": "graph_integrity", "checkIntegrity": "graph_integrity",
    "PopulationIndex": "graph_phenotype", "fingerprint": "graph_phenotype",
    "isDuplicate": "graph_phenotype", "mutGraph": "graph",
}

__all__ = [
    "dalex", "lexicase", "lexicase_filter", "case_mad", "case_errors",
    "selLexicase", "selEpsilonLexicase", "selAutomaticEpsilonLexicase", "selDownsampledLexicase",
    "selDALex",
    "batch_lexicase", "selBatchLexicase",
    "informed_downsampled_lexicase", "case_distances", "farthest_first",
    "selInformedDownsampledLexicase",
    "lexicase_probabilities", "plexicase", "plexicase_probabilities", "selPlexicase",
    "mutSubGD", "selGradientLexicase", "selRandomChild",
    "mutGraph", "checkIntegrity", "isDuplicate", "PopulationIndex", "IntegrityResult",
    "fingerprint",
    "selAgingTournament", "replaceOldest", "oldestIndex",
    "correctArguments", "mutCorrectArguments", "heightLimit", "mutUniformLoss",
]


def __getattr__(name):
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{sub}", __name__), name)
    globals()[name] = value          # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
