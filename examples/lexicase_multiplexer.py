"""Lexicase vs tournament selection on the GP Boolean multiplexer (DEAP's gp/multiplexer.py).

The k-address multiplexer (k = 2: the 6-multiplexer, 64 fitness cases) returns the data bit that
its k address bits point to.  Tournament selection sees only how many cases a program gets right;
lexicase selection (Spector 2012; Helmuth, Spector & Matheson 2015) filters the population case by
case in a random order, so it keeps programs that solve *different* subsets of the cases (the
material crossover needs to combine) instead of many that solve the same easy ones.  Both arms
run DEAP's ``algorithms.eaSimple`` with the same population, generations, variation rates and
seeds; only ``toolbox.select`` differs.

The fitness holds one value per case (``weights = (1.0,) * n_cases``: 1 = right), which
``selLexicase`` reads as it is; the tournament ranks programs by their number of cases right.

    python examples/lexicase_multiplexer.py --seeds 0,1,2,3,4,5
    python -m scoop -n 2 examples/lexicase_multiplexer.py --smoke    # one run per worker

Each (selection, seed) run goes through ``deapnn.runtime.get_map()``, so SCOOP spreads the runs;
every run seeds itself, so the table does not depend on the number of workers.
"""
import argparse
import itertools
import operator
import random
import sys

import numpy as np
from deap import algorithms, base, creator, gp, tools

from deapnn.operators import selLexicase

ADDRESS_BITS = (1, 2, 3)            # 3-, 6- and 11-multiplexer


def if_then_else(condition, a, b):
    return a if condition else b


def multiplexer(k: int):
    """The primitive set and the 2**(k + 2**k) cases (inputs, target) of the k-address problem."""
    n = k + 2 ** k
    pset = gp.PrimitiveSet(f"MUX{n}", n)
    pset.addPrimitive(operator.and_, 2)
    pset.addPrimitive(operator.or_, 2)
    pset.addPrimitive(operator.not_, 1)
    pset.addPrimitive(if_then_else, 3)
    pset.addTerminal(1)
    pset.addTerminal(0)
    inputs = list(itertools.product((0, 1), repeat=n))
    targets = [row[k + int("".join(map(str, row[:k])), 2)] for row in inputs]
    return pset, inputs, targets


# module level, so SCOOP workers know the classes too (one per problem size)
for _k in ADDRESS_BITS:
    _cases = 2 ** (_k + 2 ** _k)
    creator.create(f"Cases{_cases}", base.Fitness, weights=(1.0,) * _cases)
    creator.create(f"Program{_cases}", gp.PrimitiveTree, fitness=getattr(creator, f"Cases{_cases}"))


def evaluate(program, pset, inputs, targets):
    """1.0 for every case the program gets right, 0.0 otherwise."""
    func = gp.compile(program, pset)
    return tuple(float(bool(func(*row)) == bool(t)) for row, t in zip(inputs, targets))


def hits(ind) -> int:
    return int(sum(ind.fitness.values))


def sel_tournament_hits(individuals, k, tournsize=7):
    """DEAP's ``tools.selTournament`` on the number of cases right (comparing per-case fitnesses
    directly would be lexicographic over the cases, not a total)."""
    return [max(random.sample(individuals, tournsize), key=hits) for _ in range(k)]


def run(task: dict) -> dict:
    """One GP run, seeded by its task; returns plain data (what a SCOOP worker sends back)."""
    random.seed(task["seed"])
    pset, inputs, targets = multiplexer(task["address_bits"])
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=2, max_=4)
    tb.register("individual", tools.initIterate, getattr(creator, f"Program{len(targets)}"),
                tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", evaluate, pset=pset, inputs=inputs, targets=targets)
    if task["selection"] == "lexicase":
        tb.register("select", selLexicase)          # per-case values from fitness.values
    else:
        tb.register("select", sel_tournament_hits, tournsize=task["tournsize"])
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", gp.genGrow, min_=0, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=pset)
    limit = gp.staticLimit(key=operator.attrgetter("height"), max_value=17)
    tb.decorate("mate", limit)
    tb.decorate("mutate", limit)
    stats = tools.Statistics(hits)
    stats.register("max", np.max)
    pop = tb.population(n=task["pop"])
    pop, logbook = algorithms.eaSimple(pop, tb, cxpb=0.8, mutpb=0.1, ngen=task["ngen"],
                                       stats=stats, verbose=False)
    best = max(pop, key=hits)
    return {"selection": task["selection"], "seed": task["seed"], "best_hits": hits(best),
            "cases": len(targets), "size": len(best), "program": str(best),
            "solved_at": next((r["gen"] for r in logbook if r["max"] == len(targets)), None)}


def _map():
    """``deapnn.runtime.get_map()`` under ``python -m scoop``, the builtin ``map`` otherwise
    (deapnn.runtime imports torch, which a plain run never needs)."""
    if "scoop" in sys.modules:
        from deapnn.runtime import get_map
        return get_map()
    return map


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address-bits", type=int, default=2, choices=ADDRESS_BITS,
                    help="k: 1, 2 (the 6-multiplexer, default) or 3 (the 11-multiplexer)")
    ap.add_argument("--pop", type=int, default=200)
    ap.add_argument("--ngen", type=int, default=30)
    ap.add_argument("--tournsize", type=int, default=7)
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--smoke", action="store_true", help="population 100, 10 generations, 2 seeds")
    args = ap.parse_args(argv)
    if args.smoke:
        args.pop, args.ngen, args.seeds = 100, 10, "0,1"
    if args.tournsize < 1 or args.pop < args.tournsize or args.ngen < 0:
        ap.error("--pop must be >= --tournsize >= 1 and --ngen >= 0")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    tasks = [{"selection": sel, "seed": s, "address_bits": args.address_bits, "pop": args.pop,
              "ngen": args.ngen, "tournsize": args.tournsize}
             for sel in ("lexicase", "tournament") for s in seeds]
    results = list(_map()(run, tasks))
    print(f"{'selection':<12}{'seed':>5}{'best hits':>12}{'solved at gen':>15}{'size':>6}")
    for r in results:
        solved = "-" if r["solved_at"] is None else r["solved_at"]
        print(f"{r['selection']:<12}{r['seed']:>5}{r['best_hits']:>7}/{r['cases']:<4}"
              f"{solved:>15}{r['size']:>6}")
    winners = [r for r in results if r["solved_at"] is not None]
    if winners:
        print(f"a solution: {min(winners, key=lambda r: r['size'])['program']}")
    solved = {sel: sum(r["solved_at"] is not None for r in results if r["selection"] == sel)
              for sel in ("lexicase", "tournament")}
    print(f"{args.address_bits + 2 ** args.address_bits}-multiplexer solved: lexicase "
          f"{solved['lexicase']}/{len(seeds)}, tournament {solved['tournament']}/{len(seeds)} "
          f"(population {args.pop}, {args.ngen} generations, seeds {args.seeds})")
    return results


if __name__ == "__main__":
    main()
