"""How far plexicase's selection distribution is from exact lexicase's on evolved populations.

Three DEAP problems, each evolved with ``selLexicase`` (the examples' settings), a snapshot of the
population taken at a few generations; on each snapshot, the exact lexicase selection
probabilities (``lexicase_probabilities``) are compared with plexicase's
(``plexicase_probabilities``, alpha = 1, and the other alphas given) by total variation distance
``TV = 1/2 sum_i |p_i - q_i|``.  Also printed: how many individuals each puts mass on, and the
mass plexicase gives to individuals lexicase never selects.  Where the enumeration would exceed
``--max-states`` pools (binary cases, large populations), lexicase's probabilities are estimated
instead from ``--draws`` selections of ``deapnn.operators.lexicase`` (which has exactly the lexicase
distribution; tests/test_lexicase_exact.py checks it against the enumeration); the estimate's own
sampling error adds about ``0.4 * sum_i sqrt(p_i / draws)`` to a TV (printed as "noise").

  multiplexer   examples/lexicase_multiplexer.py: 6-multiplexer, 64 cases, population 200
  symbreg       examples/lexicase_symbreg.py: 20 cases (absolute errors), population 200
  onemax        DEAP's onemax with one maximised case per bit: 100 cases, population 300

Usage: python bench/plexicase_tv.py [--quick] [--alphas 1,2,4]   (--quick: fewer generations)
Each run is seeded; the figures are deterministic.  Not part of the test run.
"""
import argparse
import operator
import os
import random
import sys
import time

import numpy as np
from deap import algorithms, base, creator, gp, tools

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "examples"))

from deapnn.operators import (case_errors, lexicase, lexicase_probabilities,  # noqa: E402
                              plexicase_probabilities, selLexicase)


def snapshots(pop, tb, ngen, at, cxpb, mutpb):
    """eaSimple with selLexicase; the population (evaluated) at each generation in ``at``."""
    out = {}
    for gen in range(ngen + 1):
        if gen:
            pop = algorithms.varAnd(tb.select(pop, len(pop)), tb, cxpb, mutpb)
        for ind in pop:
            if not ind.fitness.valid:
                ind.fitness.values = tb.evaluate(ind)
        if gen in at:
            out[gen] = case_errors(pop)
    return out


def multiplexer_runs(gens):
    import lexicase_multiplexer as mux
    random.seed(0)
    pset, inputs, targets = mux.multiplexer(2)
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=pset, min_=2, max_=4)
    tb.register("individual", tools.initIterate, creator.Program64, tb.expr)
    tb.register("evaluate", mux.evaluate, pset=pset, inputs=inputs, targets=targets)
    tb.register("select", selLexicase)
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", gp.genGrow, min_=0, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=pset)
    limit = gp.staticLimit(key=operator.attrgetter("height"), max_value=17)
    tb.decorate("mate", limit)
    tb.decorate("mutate", limit)
    pop = [tb.individual() for _ in range(200)]
    return snapshots(pop, tb, max(gens), gens, 0.8, 0.1)


def symbreg_runs(gens):
    import lexicase_symbreg as sr
    random.seed(1)
    tb = sr.make_toolbox("lexicase")
    return snapshots(tb.population(n=200), tb, max(gens), gens, 0.5, 0.1)


def onemax_runs(gens):
    random.seed(2)
    if not hasattr(creator, "FitOneMaxCases"):
        creator.create("FitOneMaxCases", base.Fitness, weights=(1.0,) * 100)
        creator.create("IndOneMaxCases", list, fitness=creator.FitOneMaxCases)
    tb = base.Toolbox()
    tb.register("evaluate", lambda ind: tuple(float(b) for b in ind))
    tb.register("select", selLexicase)
    tb.register("mate", tools.cxTwoPoint)
    tb.register("mutate", tools.mutFlipBit, indpb=0.05)
    pop = [creator.IndOneMaxCases(random.randint(0, 1) for _ in range(100)) for _ in range(300)]
    return snapshots(pop, tb, max(gens), gens, 0.5, 0.2)


def tv(p, q):
    return 0.5 * float(np.abs(p - q).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--alphas", default="1,2,4")
    ap.add_argument("--max-states", type=int, default=200_000)
    ap.add_argument("--draws", type=int, default=500_000)
    args = ap.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    gens = (0, 5) if args.quick else (0, 10, 30)
    problems = [("multiplexer", multiplexer_runs), ("symbreg", symbreg_runs),
                ("onemax", onemax_runs)]
    heads = "".join(f"{'TV a=' + format(a, 'g'):>9}" for a in alphas)
    print(f"{'problem':<12}{'gen':>4}{'pop x cases':>13}{'lex>0':>7}{'plex>0':>7}{heads}"
          f"{'plex on lex=0':>14}  lexicase probabilities")
    rng = np.random.default_rng(0)
    for name, runs in problems:
        for gen, E in runs(gens).items():
            t0 = time.perf_counter()
            try:
                lex = lexicase_probabilities(E, max_states=args.max_states)
                how = "exact"
            except ValueError:
                counts = np.bincount(lexicase(E, args.draws, rng=rng), minlength=E.shape[0])
                lex = counts / args.draws
                how = (f"sampled ({args.draws:.0e} draws, noise ~"
                       f"{0.4 * np.sqrt(lex / args.draws).sum():.3f})")
            how += f", {time.perf_counter() - t0:.1f}s"
            plex = {a: plexicase_probabilities(E, alpha=a) for a in alphas}
            tvs = "".join(f"{tv(lex, plex[a]):>9.3f}" for a in alphas)
            print(f"{name:<12}{gen:>4}{E.shape[0]:>7} x {E.shape[1]:<3}{int((lex > 0).sum()):>7}"
                  f"{int((plex[alphas[0]] > 0).sum()):>7}{tvs}"
                  f"{float(plex[alphas[0]][lex == 0].sum()):>14.3f}  {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
