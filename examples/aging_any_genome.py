"""Aging evolution on a genome that is not a loss: feature selection with a bit string.

``eaRegularizedEvolution`` (Real, Aggarwal, Huang & Le, AAAI 2019, Algorithm 1; the search loop
of NLFS) is genome-agnostic: it only calls ``toolbox.select`` (default: ``selAgingTournament``),
``toolbox.clone``, ``toolbox.mutate``, ``toolbox.evaluate`` and ``toolbox.map``.  Here the genome
is a DEAP ``creator`` list of 30 bits (which features of scikit-learn's breast-cancer data a
logistic regression may use), mutated by DEAP's own ``tools.mutFlipBit``; the fitness is the
validation accuracy minus a small price per feature.  An evaluation that returns a ``reason``
(here: an empty mask) is a failed child: the algorithm mutates the parent again (up to 7 tries)
instead of inserting it.

    python examples/aging_any_genome.py --population 30 --cycles 600
    python -m scoop -n 2 examples/aging_any_genome.py --smoke

``--batch`` children are in flight per round (one ``toolbox.map`` call, spread by SCOOP); the
run depends on ``--batch``, not on the number of workers.
"""
from __future__ import annotations

import argparse
import random
import warnings

import numpy as np
from deap import base, creator, tools
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from deapnn.algorithms import eaRegularizedEvolution
from deapnn.data import cached_dataset
from deapnn.evaluation import Evaluation
from deapnn.operators import selAgingTournament
from deapnn.runtime import get_map

# module level, so that SCOOP workers know the classes too
creator.create("FitnessMax", base.Fitness, weights=(1.0,))
creator.create("FeatureMask", list, fitness=creator.FitnessMax)


def arrays(split):
    return split.x.flatten(1).numpy(), split.y.numpy()


def accuracy(mask, split: str) -> float:
    """Logistic regression on the selected features, trained on the training split."""
    data = cached_dataset("breast_cancer", seed=0)
    cols = np.flatnonzero(mask)
    (x, y), (xs, ys) = arrays(data.train), arrays(getattr(data, split))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=200).fit(x[:, cols], y)
    return float(model.score(xs[:, cols], ys))


def evaluate(mask, price: float) -> Evaluation:
    """Validation accuracy − price × features used; an empty mask is a failed child.  The
    result is returned, not stored on ``mask``: under SCOOP a worker evaluates a copy."""
    if not any(mask):
        return Evaluation((float("nan"),), {"reason": "no feature selected"})
    return Evaluation((accuracy(mask, "val") - price * sum(mask),), {"features": sum(mask)})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=30)
    ap.add_argument("--cycles", type=int, default=600)
    ap.add_argument("--sample-size", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4, help="children in flight per round")
    ap.add_argument("--price", type=float, default=0.002, help="fitness cost of one feature")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="population 10, 40 cycles")
    args = ap.parse_args(argv)
    if args.smoke:
        args.population, args.cycles, args.sample_size = 10, 40, 4
    if min(args.population, args.sample_size, args.batch) < 1 or args.cycles < 0:
        ap.error("--population, --sample-size and --batch must be >= 1, --cycles >= 0")
    if args.sample_size > args.population:
        ap.error("--sample-size must not exceed --population")
    n_features = cached_dataset("breast_cancer", seed=0).train.x.shape[-1]
    random.seed(args.seed)                      # masks, bit flips and tournaments

    tb = base.Toolbox()                         # clone = deepcopy by default
    tb.register("individual", tools.initRepeat, creator.FeatureMask,
                lambda: int(random.random() < 0.5), n_features)
    tb.register("mutate", tools.mutFlipBit, indpb=1.0 / n_features)
    tb.register("select", selAgingTournament)
    tb.register("evaluate", evaluate, price=args.price)
    tb.register("map", get_map())               # SCOOP under python -m scoop, else map
    pop = [tb.individual() for _ in range(args.population)]
    hof = tools.HallOfFame(1)
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", np.max)
    pop, logbook = eaRegularizedEvolution(pop, tb, args.cycles, args.sample_size, stats=stats,
                                          halloffame=hof, batch=args.batch)
    best = hof[0]
    remutated = sum(r["remutated"] for r in logbook)
    print(f"best mask: {''.join(map(str, best))}  ({sum(best)} of {n_features} features: "
          f"{np.flatnonzero(best).tolist()})")
    print(f"fitness {best.fitness.values[0]:.4f}; {sum(r['nevals'] for r in logbook)} "
          f"evaluations, {remutated} re-mutated after a failed child")
    print(f"test accuracy: selected features {accuracy(best, 'test'):.4f} vs all "
          f"{n_features} {accuracy([1] * n_features, 'test'):.4f} (seed {args.seed}, "
          f"{args.cycles} cycles, batch {args.batch})")
    return best


if __name__ == "__main__":
    main()
