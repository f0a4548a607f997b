"""A neural loss function search (NLFS) written as a DEAP script, with your own surrogate.

Morgan & Hougen 2024, §3: loss functions are 4-node computational graphs over y, ŷ, 1, −1
(``LossIndividual``), mutated by ``mutGraph`` (§3.2; a child must pass the integrity test
``checkIntegrity``, §3.3, and not duplicate a member), selected by ``selAgingTournament`` and
evolved by ``eaRegularizedEvolution`` (aging evolution, Real et al. 2019, Algorithm 1; §3.4).
The surrogate ``evaluate`` is the user's: here a softmax regression on scikit-learn's digits,
trained for a few full-batch SGD steps with the candidate loss and scored by validation
accuracy.  The best loss found is printed (text and LaTeX), registered in a loss registry file
and used again through ``deapnn.losses.get`` like a built-in loss.

    python examples/nlfs_toolbox.py --population 20 --cycles 200 --seed 0
    python -m scoop -n 2 examples/nlfs_toolbox.py --smoke

``batch`` children are in flight per round (one ``toolbox.map`` call, spread by SCOOP); the run
depends on ``--batch``, not on the number of workers.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import random
import tempfile

import torch
from deap import base, tools

from deapnn.algorithms import eaRegularizedEvolution
from deapnn.data import cached_dataset
from deapnn.evaluation import Evaluation
from deapnn.losses import get, register
from deapnn.nlfs import LossIndividual
from deapnn.operators import checkIntegrity, mutGraph, selAgingTournament
from deapnn.runtime import configure_worker_threads, derive_seed, get_map

DATASET = "digits"


def random_loss(rng=random) -> LossIndividual:
    """A random genome that passes the integrity test (§3.3); ``flip`` as the test says."""
    while True:
        ind = LossIndividual.random(rng)
        check = checkIntegrity(ind)
        if check.accept:
            ind.flip = check.flip
            return ind


def train_linear(loss_fn, seed: int, steps: int, lr: float = 0.5):
    """The surrogate: softmax regression trained with ``loss_fn`` (full-batch SGD)."""
    data = cached_dataset(DATASET, seed=0)
    x, y = data.train.x.flatten(1), data.train.y
    torch.manual_seed(seed)
    model = torch.nn.Linear(x.shape[1], data.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            return None, data
        loss.backward()
        opt.step()
    return model, data


def accuracy(model, split) -> float:
    with torch.no_grad():
        return float((model(split.x.flatten(1)).argmax(1) == split.y).float().mean())


def evaluate(ind, steps: int, seed: int) -> Evaluation:
    """Fitness = validation accuracy (maximised).  Everything to keep is *returned*: under SCOOP
    this runs on a copy in a worker process."""
    configure_worker_threads()
    expression = ind.to_expression()
    model, data = train_linear(ind.loss, derive_seed(seed, "surrogate"), steps)   # one init
    if model is None:
        return Evaluation((0.0,), {"expression": expression, "reason": "loss diverged"})
    return Evaluation((accuracy(model, data.val),), {"expression": expression})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--sample-size", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60, help="surrogate training steps")
    ap.add_argument("--batch", type=int, default=2, help="children in flight per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="population 6, 12 cycles, 20 steps")
    args = ap.parse_args(argv)
    if args.smoke:
        args.population, args.cycles, args.sample_size, args.steps = 6, 12, 3, 20
    if min(args.population, args.sample_size, args.steps, args.batch) < 1 or args.cycles < 0:
        ap.error("--population, --sample-size, --steps, --batch must be >= 1, --cycles >= 0")
    if args.sample_size > args.population:
        ap.error("--sample-size must not exceed --population")
    random.seed(args.seed)                         # genomes, mutations and tournaments
    pop = [random_loss() for _ in range(args.population - 1)]
    pop.append(LossIndividual.from_expression("-(y * log(yhat))"))   # seed: cross-entropy

    tb = base.Toolbox()
    tb.register("evaluate", evaluate, steps=args.steps, seed=args.seed)
    tb.register("map", get_map())                  # SCOOP under python -m scoop, else map
    tb.register("clone", copy.deepcopy)
    tb.register("mutate", mutGraph, population=pop)          # rejects duplicates of the live list
    tb.register("select", selAgingTournament)
    hof = tools.HallOfFame(3)
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    pop, logbook = eaRegularizedEvolution(pop, tb, args.cycles, args.sample_size, stats=stats,
                                          halloffame=hof, batch=args.batch)
    for rank, ind in enumerate(hof, 1):
        print(f"#{rank} val acc {ind.fitness.values[0]:.4f}  {ind.to_expression()}")
    best = hof[0]
    print(f"best loss: {best.to_expression()}")
    print(f"LaTeX: {best.to_latex()}")

    with tempfile.TemporaryDirectory() as tmp:    # use it by name, as any built-in loss
        registry = os.path.join(tmp, "losses.json")
        register("found_0", best, path=registry, meta={"val_acc": best.fitness.values[0]})
        found = get("found_0", path=registry)
        test = {}
        for name, loss_fn in (("found_0", found), ("ce", get("ce"))):
            model, data = train_linear(loss_fn, derive_seed(args.seed, "final"), 2 * args.steps)
            test[name] = accuracy(model, data.test) if model is not None else math.nan
    print(f"test accuracy, {2 * args.steps} steps: found_0 {test['found_0']:.4f} vs "
          f"cross-entropy {test['ce']:.4f} (seed {args.seed}, {args.cycles} cycles, "
          f"{sum(r['nevals'] for r in logbook)} evaluations)")
    return best


if __name__ == "__main__":
    main()
