"""DEAP toolbox operators of deapnn: selection (lexicase family, gradient lexicase), mutation
(subset gradient descent), and more. Pure, small, composable; never imports ``deapnn.algorithms``."""
from .dalex import dalex
from .aging import oldestIndex, replaceOldest, selAgingTournament
from .gls import mutSubGD, selGradientLexicase, selRandomChild
from .gp_loss import correctArguments, heightLimit, mutCorrectArguments, mutUniformLoss
from .graph import (IntegrityResult, PopulationIndex, checkIntegrity, fingerprint, isDuplicate,
                    mutGraph)
from .lexicase import case_mad, lexicase, lexicase_filter
from .lexicase_deap import (case_errors, selAutomaticEpsilonLexicase, selDALex,
                            selDownsampledLexicase, selEpsilonLexicase, selLexicase)

__all__ = [
    "dalex", "lexicase", "lexicase_filter", "case_mad", "case_errors",
    "selLexicase", "selEpsilonLexicase", "selAutomaticEpsilonLexicase", "selDownsampledLexicase",
    "selDALex", "mutSubGD", "selGradientLexicase", "selRandomChild",
    "mutGraph", "checkIntegrity", "isDuplicate", "PopulationIndex", "IntegrityResult", "fingerprint",
    "selAgingTournament", "replaceOldest", "oldestIndex",
    "correctArguments", "mutCorrectArguments", "heightLimit", "mutUniformLoss",
]
