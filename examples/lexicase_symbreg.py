"""GP symbolic regression with lexicase selection: one fitness value per training case.

Each individual's fitness is its absolute error on every training point (weights = (-1.0,) * n_cases),
and parents are chosen by our exact, vectorised ``selLexicase`` (Spector 2012) or
``selAutomaticEpsilonLexicase`` (La Cava et al. 2016) inside DEAP's ``algorithms.eaSimple``.

    python examples/lexicase_symbreg.py --ngen 20 --seed 1
    python -m scoop -n 2 examples/lexicase_symbreg.py --selection auto-epsilon
"""
import argparse
import math
import operator
import os
import random
import sys
from functools import partial

import numpy as np
from deap import algorithms, base, creator, gp, tools

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from operators.lexicase_deap import selAutomaticEpsilonLexicase, selLexicase  # noqa: E402

N_CASES = 20
POINTS = [x / 10.0 for x in range(-10, 10)]          # 20 training cases in [-1, 1)


def target(x):
    return x ** 4 + x ** 3 + x ** 2 + x


def protected_div(a, b):
    return a / b if abs(b) > 1e-9 else 1.0


pset = gp.PrimitiveSet("MAIN", 1)
for prim, arity in ((operator.add, 2), (operator.sub, 2), (operator.mul, 2), (protected_div, 2),
                    (operator.neg, 1), (math.cos, 1), (math.sin, 1)):
    pset.addPrimitive(prim, arity)
pset.addEphemeralConstant("rand101", partial(random.randint, -1, 1))
pset.renameArguments(ARG0="x")

# module level, so SCOOP workers know the classes too
creator.create("FitnessCases", base.Fitness, weights=(-1.0,) * N_CASES)
creator.create("Individual", gp.PrimitiveTree, fitness=creator.FitnessCases)


def evaluate(individual):
    """Absolute error on every case; overflow / domain errors give inf (ranked worst by lexicase)."""
    func = gp.compile(individual, pset)
    errors = []
    for x in POINTS:
        try:
            err = abs(func(x) - target(x))
        except (OverflowError, ValueError, ZeroDivisionError):
            err = math.inf
        errors.append(err if math.isfinite(err) else math.inf)
    return tuple(errors)


def make_toolbox(selection):
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=1, max_=2)
    tb.register("individual", tools.initIterate, creator.Individual, tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", evaluate)
    if selection == "lexicase":
        tb.register("select", selLexicase)
    else:
        tb.register("select", selAutomaticEpsilonLexicase)
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", gp.genFull, min_=0, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=pset)
    limit = gp.staticLimit(key=operator.attrgetter("height"), max_value=17)
    tb.decorate("mate", limit)
    tb.decorate("mutate", limit)
    try:                                    # SCOOP parallelism when launched with -m scoop
        import scoop
        if scoop.IS_RUNNING:
            from scoop import futures
            tb.register("map", futures.map)
    except ImportError:
        pass
    return tb


def mean_error(ind):
    return float(np.mean(ind.fitness.values))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngen", type=int, default=20)
    ap.add_argument("--pop", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--selection", choices=("lexicase", "auto-epsilon"), default="lexicase")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.ngen < 0 or args.pop < 1:
        ap.error("--ngen must be >= 0 and --pop >= 1")
    random.seed(args.seed)                  # our selection draws from Python's random state
    tb = make_toolbox(args.selection)
    pop = tb.population(n=args.pop)
    stats = tools.Statistics(mean_error)
    stats.register("min", np.min)
    stats.register("median", np.median)
    pop, _ = algorithms.eaSimple(pop, tb, cxpb=0.5, mutpb=0.1, ngen=args.ngen, stats=stats,
                                 verbose=not args.quiet)
    best = min(pop, key=mean_error)
    print(f"best individual: {best}")
    print(f"mean absolute error: {mean_error(best):.6g}  (selection: {args.selection}, "
          f"seed {args.seed}, {args.ngen} generations)")
    return best


if __name__ == "__main__":
    main()
