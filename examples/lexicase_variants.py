"""Every lexicase variant of deapnn on two GP benchmarks, on the same budget and seeds.

Problems: the 6-multiplexer (64 cases; DEAP's gp/multiplexer.py, as in lexicase_multiplexer.py)
and DEAP's symbolic regression of x**4 + x**3 + x**2 + x on 20 points (lexicase_symbreg.py).
Every individual's fitness holds one *error* per case (minimised): 0/1 (1 = wrong) on the
multiplexer, the absolute error on the regression.  A run is solved when its best individual has
every case right (multiplexer) or every error <= 0.01 (regression: Koza's "hits").

All variants run the same loop (DEAP's ``eaSimple``: select, ``varAnd``, evaluate; stopped at the
first solution) with the same population, generations, variation rates and seeds; only
``toolbox.select`` differs.  Every variant here is given every case's error, so the budget is the
same number of program evaluations for all; down-sampling's saving of evaluations (it needs only
the down-sample's cases) is not used.  Output: per problem and variant, the success rate and the
median generation of the solved runs.

To add a variant, add one line to ``VARIANTS``: a name and a function ``problem -> select
operator`` (a fresh one per run, so stateful operators start clean).

    python examples/lexicase_variants.py --seeds 0-9          # the full comparison
    python examples/lexicase_variants.py --smoke              # a few generations, one seed
    python -m scoop -n 4 examples/lexicase_variants.py --seeds 0-9
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lexicase_symbreg  # noqa: E402  (DEAP's symbolic regression: pset, points, evaluate)
from lexicase_multiplexer import multiplexer  # noqa: E402

from deapnn.operators import (selBatchLexicase, selDALex, selDownsampledLexicase,  # noqa: E402
                              selEpsilonLexicase, selInformedDownsampledLexicase, selLexicase)


def total_error(ind):
    return math.fsum(ind.fitness.values)


def sel_tournament(individuals, k, tournsize=7):
    """The baseline: DEAP's tournament selection on the total error."""
    return [min(random.sample(individuals, tournsize), key=total_error) for _ in range(k)]


#: name -> (problem -> select operator); the informed operator keeps state, so one per run
VARIANTS = {
    "tournament": lambda p: sel_tournament,
    "lexicase": lambda p: selLexicase,
    "eps-lexicase": lambda p: selEpsilonLexicase,                  # MAD epsilon, semi-dynamic
    "downsampled": lambda p: partial(selDownsampledLexicase, downsample=0.25),
    "informed-ds": lambda p: selInformedDownsampledLexicase(
        downsample=0.25, parent_sample=0.05, interval=5, threshold=p["solved_below"]),
    "batch": lambda p: selBatchLexicase,                           # batches of 10, elite
    "dalex": lambda p: selDALex,
}


def _mux_problem():
    pset, inputs, targets = multiplexer(2)
    return {"name": "6-multiplexer", "pset": pset, "cases": len(targets), "solved_below": 0.0,
            "evaluate": partial(_mux_errors, pset=pset, inputs=inputs, targets=targets),
            "init": (2, 4), "cxpb": 0.8, "mutpb": 0.1, "mut_expr": gp.genGrow}


def _mux_errors(program, pset, inputs, targets):
    func = gp.compile(program, pset)
    return tuple(float(bool(func(*row)) != bool(t)) for row, t in zip(inputs, targets))


def _symbreg_problem():
    return {"name": "symbolic regression", "pset": lexicase_symbreg.pset,
            "cases": lexicase_symbreg.N_CASES, "solved_below": 0.01,
            "evaluate": lexicase_symbreg.evaluate, "init": (1, 2), "cxpb": 0.5, "mutpb": 0.1,
            "mut_expr": gp.genFull}


PROBLEMS = {"multiplexer": _mux_problem, "symbreg": _symbreg_problem}

# module level, so SCOOP workers know the classes too (one per number of cases)
for _n in (64, lexicase_symbreg.N_CASES):
    creator.create(f"VariantErrors{_n}", base.Fitness, weights=(-1.0,) * _n)
    creator.create(f"VariantTree{_n}", gp.PrimitiveTree,
                   fitness=getattr(creator, f"VariantErrors{_n}"))


def run(task: dict) -> dict:
    """One seeded GP run of one variant on one problem; returns plain data."""
    random.seed(task["seed"])
    np.random.seed(task["seed"])
    p = PROBLEMS[task["problem"]]()
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=p["pset"], min_=p["init"][0], max_=p["init"][1])
    tb.register("individual", tools.initIterate, getattr(creator, f"VariantTree{p['cases']}"),
                tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", p["evaluate"])
    tb.register("select", VARIANTS[task["variant"]](p))
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", p["mut_expr"], min_=0, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=p["pset"])
    limit = gp.staticLimit(key=operator.attrgetter("height"), max_value=17)
    tb.decorate("mate", limit)
    tb.decorate("mutate", limit)

    def evaluate(pop):
        invalid = [ind for ind in pop if not ind.fitness.valid]
        for ind, fit in zip(invalid, map(tb.evaluate, invalid)):
            ind.fitness.values = fit
        return any(max(ind.fitness.values) <= p["solved_below"] for ind in pop)

    pop = tb.population(n=task["pop"])
    solved_at = 0 if evaluate(pop) else None
    for gen in range(1, task["ngen"] + 1):
        if solved_at is not None:
            break
        pop = algorithms.varAnd(tb.select(pop, len(pop)), tb, p["cxpb"], p["mutpb"])
        if evaluate(pop):
            solved_at = gen
    best = min(pop, key=total_error)
    return {"problem": p["name"], "variant": task["variant"], "seed": task["seed"],
            "solved_at": solved_at, "best_total_error": total_error(best)}


def table(results, variants, seeds):
    """Success rate and median generation to a solution per problem and variant."""
    lines = [f"{'problem':<21}{'selection':<14}{'solved':>8}{'success':>9}{'median gen':>12}"
             f"{'median best error':>19}"]
    for problem in dict.fromkeys(r["problem"] for r in results):
        for v in variants:
            rs = [r for r in results if r["problem"] == problem and r["variant"] == v]
            gens = [r["solved_at"] for r in rs if r["solved_at"] is not None]
            med = f"{np.median(gens):g}" if gens else "-"
            err = float(np.median([r["best_total_error"] for r in rs]))
            lines.append(f"{problem:<21}{v:<14}{len(gens):>5}/{len(seeds):<2}"
                         f"{100 * len(gens) / len(seeds):>8.0f}%{med:>12}{err:>19.4g}")
    return "\n".join(lines)


def _seeds(text):
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return seeds


def _map():
    """``deapnn.runtime.get_map()`` under ``python -m scoop``, the builtin ``map`` otherwise
    (deapnn.runtime imports torch, which a plain run never needs)."""
    if "scoop" in sys.modules:
        from deapnn.runtime import get_map
        return get_map()
    return map


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pop", type=int, default=200)
    ap.add_argument("--ngen", type=int, default=30)
    ap.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5 (default 0-9)")
    ap.add_argument("--problems", default="multiplexer,symbreg")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, of {', '.join(VARIANTS)} (default: all)")
    ap.add_argument("--smoke", action="store_true", help="population 40, 3 generations, seed 0")
    args = ap.parse_args(argv)
    if args.smoke:
        args.pop, args.ngen, args.seeds = 40, 3, "0"
    try:
        seeds = _seeds(args.seeds)
    except ValueError:
        ap.error(f"--seeds: expected e.g. 0-9 or 0,3,5, got {args.seeds!r}")
    variants = args.variants.split(",")
    problems = args.problems.split(",")
    for name, valid in (("variant", VARIANTS), ("problem", PROBLEMS)):
        bad = [x for x in (variants if name == "variant" else problems) if x not in valid]
        if bad:
            ap.error(f"unknown {name} {bad[0]!r}; choose from {', '.join(valid)}")
    if args.pop < 7 or args.ngen < 0:
        ap.error("--pop must be >= 7 (the tournament size) and --ngen >= 0")
    tasks = [{"problem": pr, "variant": v, "seed": s, "pop": args.pop, "ngen": args.ngen}
             for pr in problems for v in variants for s in seeds]
    results = list(_map()(run, tasks))
    print(table(results, variants, seeds))
    print(f"(population {args.pop}, at most {args.ngen} generations, seeds {args.seeds}; "
          f"median gen over the solved runs)")
    return results


if __name__ == "__main__":
    main()
