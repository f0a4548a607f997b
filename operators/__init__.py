"""The DEAP-style short import path ``operators``: the very objects of :mod:`deapnn.operators`.

The operators live in ``deapnn.operators``, so every object's ``__module__`` (what pickles and
SCOOP workers resolve) is a path a user's own ``operators.py`` cannot shadow.  This package keeps
``from operators import selLexicase`` working for DEAP-style scripts: each ``operators/<module>.py``
replaces itself in ``sys.modules`` by ``deapnn.operators.<module>``, so ``import operators.gls``
and ``deapnn.operators.gls`` are one module object (monkeypatching either patches both).  A local
``operators.py`` shadows this name, never ``deapnn.operators``: prefer the latter.

As with ``deapnn.operators``, importing it loads numpy only; the PyTorch operators
(``mutSubGD``, ``mutGraph`` ...) load on first access (PEP 562 ``__getattr__``).
"""
from importlib import import_module

import deapnn.operators as _impl

# the light family, eagerly and through the alias modules, bound exactly as deapnn.operators binds
# it (exported through __all__, hence noqa): ``operators.lexicase`` and ``operators.dalex`` are then
# the functions, as there, and a later ``import operators.lexicase`` does not rebind them
from .dalex import dalex  # noqa: F401
from .lexicase import case_mad, lexicase, lexicase_filter  # noqa: F401
from .lexicase_deap import (case_errors, selAutomaticEpsilonLexicase, selDALex,  # noqa: F401
                            selDownsampledLexicase, selEpsilonLexicase, selLexicase)  # noqa: F401
from .lexicase_batch import batch_lexicase, selBatchLexicase  # noqa: F401
from .lexicase_informed import (case_distances, farthest_first,  # noqa: F401
                                informed_downsampled_lexicase)  # noqa: F401
from .lexicase_informed_deap import selInformedDownsampledLexicase  # noqa: F401
from .lexicase_exact import lexicase_probabilities  # noqa: F401
from .lexicase_variants import selPlexicase  # noqa: F401
from .plexicase import plexicase, plexicase_probabilities  # noqa: F401

__all__ = list(_impl.__all__)


def __getattr__(name):
    if name in __all__:
        value = getattr(_impl, name)
        globals()[name] = value          # later look-ups skip this function
        return value
    if not name.startswith("_"):         # a submodule not imported yet: operators.graph ...
        try:
            return import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
