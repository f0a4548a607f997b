"""deapnn: deep learning inside DEAP — evolve network weights and loss functions.

Importing the package is cheap (no torch): the subpackages load what they need.
``__version__`` is the one place the release number is written; ``pyproject.toml`` and
``docs/conf.py`` read it from here.
"""

__version__ = "0.2.0"
