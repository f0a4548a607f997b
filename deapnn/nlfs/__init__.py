"""Neural loss function search on computational graphs (Morgan & Hougen 2024, §3):
surrogate evaluator, elimination protocol, DEAP toolbox and run driver."""
from .elimination import default_stages, successive_halving
from .evaluator import SurrogateConfig, SurrogateEvaluator, train_with_loss
from .run import NLFSConfig, run_nlfs
from .toolbox import FitnessMax, LossIndividual, make_toolbox, random_individual

__all__ = ["SurrogateConfig", "SurrogateEvaluator", "train_with_loss", "successive_halving",
           "default_stages", "NLFSConfig", "run_nlfs", "FitnessMax", "LossIndividual",
           "make_toolbox", "random_individual"]
