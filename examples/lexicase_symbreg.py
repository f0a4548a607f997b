"""GP symbolic regression with lexicase selection (DEAP's examples/gp/symbreg.py, adapted).

Lexicase selection needs each individual's error on every training case.  Two patterns work
everywhere, including when evaluation runs in SCOOP worker processes:

* ``--fitness cases`` (default): the fitness holds one value per case (``weights = (-1.0,) *
  n_cases``) and DEAP's ``algorithms.eaSimple`` runs unchanged with ``selLexicase``.
* ``--fitness mean``: DEAP's scalar fitness (mean error) is kept; ``evaluate`` *returns* the
  per-case errors and the main process assigns them to ``ind.case_errors`` before selecting with
  ``key=operator.attrgetter("case_errors")``.  (Setting the attribute inside ``evaluate`` would be
  lost under SCOOP: a worker evaluates a copy and only the return value comes back.)

Parents are chosen by our exact, vectorised ``selLexicase`` (Spector 2012) or
``selAutomaticEpsilonLexicase`` (La Cava et al. 2016); randomness comes from ``random.seed``.

    python examples/lexicase_symbreg.py --ngen 20 --seed 1
    python -m scoop -n 2 examples/lexicase_symbreg.py --selection auto-epsilon --fitness mean
    python examples/lexicase_symbreg.py --smoke       # 3 generations of 60
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

# deapnn.operators: the import path a local operators.py cannot shadow (numpy only, no torch)
from deapnn.operators import selAutomaticEpsilonLexicase, selLexicase  # noqa: E402

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
creator.create("FitnessMean", base.Fitness, weights=(-1.0,))
creator.create("IndividualMean", gp.PrimitiveTree, fitness=creator.FitnessMean)


def evaluate(individual):
    """Absolute error on every case; overflow / domain errors give +inf (the worst error)."""
    func = gp.compile(individual, pset)
    errors = []
    for x in POINTS:
        try:
            err = abs(func(x) - target(x))
        except (OverflowError, ValueError, ZeroDivisionError):
            err = math.inf
        errors.append(err if math.isfinite(err) else math.inf)
    return tuple(errors)


def make_toolbox(selection, fitness="cases"):
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=1, max_=2)
    individual = creator.Individual if fitness == "cases" else creator.IndividualMean
    tb.register("individual", tools.initIterate, individual, tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", evaluate)
    op = selLexicase if selection == "lexicase" else selAutomaticEpsilonLexicase
    if fitness == "cases":
        tb.register("select", op)               # per-case values from ind.fitness.values
    else:
        tb.register("select", op, key=operator.attrgetter("case_errors"))
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


def case_values(ind):
    return ind.fitness.values if len(ind.fitness.values) > 1 else ind.case_errors


def mean_error(ind):
    return float(np.mean(case_values(ind)))


def evaluate_keeping_cases(tb, individuals):
    """Evaluate the invalid individuals (in parallel under SCOOP) and, here in the main process,
    store the returned per-case errors on each individual beside its scalar fitness."""
    invalid = [ind for ind in individuals if not ind.fitness.valid]
    for ind, errors in zip(invalid, tb.map(tb.evaluate, invalid)):
        ind.case_errors = errors
        ind.fitness.values = (math.fsum(errors) / len(errors),)
    return len(invalid)


def ea_simple_keeping_cases(pop, tb, cxpb, mutpb, ngen, stats, verbose):
    """``algorithms.eaSimple`` step for step, with :func:`evaluate_keeping_cases` as evaluation."""
    logbook = tools.Logbook()
    logbook.header = ["gen", "nevals"] + stats.fields
    for gen in range(ngen + 1):
        if gen:
            pop[:] = algorithms.varAnd(tb.select(pop, len(pop)), tb, cxpb, mutpb)
        logbook.record(gen=gen, nevals=evaluate_keeping_cases(tb, pop), **stats.compile(pop))
        if verbose:
            print(logbook.stream)
    return pop, logbook


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngen", type=int, default=20)
    ap.add_argument("--pop", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--selection", choices=("lexicase", "auto-epsilon"), default="lexicase")
    ap.add_argument("--fitness", choices=("cases", "mean"), default="cases",
                    help="cases: one fitness value per case; mean: scalar fitness, per-case "
                         "errors assigned in the main process (default: cases)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="3 generations of 60 individuals")
    args = ap.parse_args(argv)
    if args.smoke:
        args.ngen, args.pop = 3, 60
    if args.ngen < 0 or args.pop < 1:
        ap.error("--ngen must be >= 0 and --pop >= 1")
    random.seed(args.seed)                  # our selection draws from Python's random state
    tb = make_toolbox(args.selection, args.fitness)
    pop = tb.population(n=args.pop)
    stats = tools.Statistics(mean_error)
    stats.register("min", np.min)
    stats.register("median", np.median)
    if args.fitness == "cases":
        pop, _ = algorithms.eaSimple(pop, tb, cxpb=0.5, mutpb=0.1, ngen=args.ngen, stats=stats,
                                     verbose=not args.quiet)
    else:
        pop, _ = ea_simple_keeping_cases(pop, tb, cxpb=0.5, mutpb=0.1, ngen=args.ngen, stats=stats,
                                         verbose=not args.quiet)
    best = min(pop, key=mean_error)
    print(f"best individual: {best}")
    print(f"mean absolute error: {mean_error(best):.6g}  (selection: {args.selection}, "
          f"fitness: {args.fitness}, seed {args.seed}, {args.ngen} generations)")
    return best


if __name__ == "__main__":
    main()
