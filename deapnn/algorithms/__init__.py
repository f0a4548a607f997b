"""Generation loops of the three methods (DEAP conventions: ``(population, toolbox, ...)`` in,
``(population, logbook)`` out)."""
from .evomal import eaEvoMAL
from .gradient_lexicase import eaGradientLexicase
from .regularized import eaRegularizedEvolution
from .regularized_restart import regularized_state

__all__ = ["eaEvoMAL", "eaGradientLexicase", "eaRegularizedEvolution", "regularized_state"]
