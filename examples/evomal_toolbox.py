"""EvoMAL as a DEAP GP script: evolve a regression loss, then train with it in plain PyTorch.

Raymond et al. 2023 (TPAMI §4): loss functions are ``deap.gp`` trees over ``y`` and ``fx``
(``lossPrimitiveSet()``, §4.1), repaired by ``correctArguments`` so that both arguments occur
(§4.2); each tree becomes a ``MetaLossNetwork`` with one learnable weight per edge (§4.4),
tuned by unrolled differentiation (``local_search``, §4.5), and scored by the user's fitness;
here the validation MSE of a small network trained on scikit-learn's diabetes data with the
learned loss (a loss that leaves the network no better than untrained is rejected).
``eaEvoMAL`` is the generation loop (Algorithm 1): elitism, tournament, one-point crossover /
uniform mutation, argument correction, and an archive that never evaluates an equivalent tree twice.

    python examples/evomal_toolbox.py --population 16 --generations 5
    python -m scoop -n 2 examples/evomal_toolbox.py --smoke
"""
from __future__ import annotations

import argparse
import random

import torch
from deap import base, creator, gp, tools
from torch import nn

from deapnn.algorithms import eaEvoMAL
from deapnn.data import cached_dataset
from deapnn.evaluation import Evaluation
from deapnn.losses import (LocalSearchConfig, LossArchive, MetaLossNetwork, UnrolledDivergence,
                           correctArguments, local_search, lossPrimitiveSet)
from deapnn.operators import heightLimit, mutUniformLoss
from deapnn.runtime import configure_worker_threads, derive_seed, get_map

PSET = lossPrimitiveSet()
# module level, so that SCOOP workers know the classes too
creator.create("FitnessMin", base.Fitness, weights=(-1.0,))
creator.create("LossTree", gp.PrimitiveTree, fitness=creator.FitnessMin)


def my_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 1))


def train(model, loss_fn, x, y, steps: int, lr: float = 0.01, batch: int = 32, seed: int = 0):
    """An ordinary PyTorch training loop; ``loss_fn`` is any ``(output, target) -> scalar``."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,), generator=gen)
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            return False
        loss.backward()
        opt.step()
    return True


def mse(model, split) -> float:
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(split.x), split.y))


def fitness(tree: str, seed: int, meta_steps: int, steps: int) -> Evaluation:
    """The user's fitness (lower is better): validation MSE after training with the tree's
    meta-loss network.  It receives the tree as a string and returns everything to keep
    (the learned edge weights), as a worker's in-place changes would be lost under SCOOP."""
    configure_worker_threads()
    data = cached_dataset("diabetes", seed=0)
    net = MetaLossNetwork(tree, task="regression", pset=PSET, seed=derive_seed(seed, "edges"))
    try:
        local_search(net, my_model(derive_seed(seed, "template")), (data.train.x, data.train.y),
                     (data.val.x, data.val.y), "regression",
                     LocalSearchConfig(meta_steps=meta_steps, inner_steps=1, lr=0.01),
                     seed=seed)
    except UnrolledDivergence as exc:    # the worst fitness, with the reason
        return Evaluation((float("inf"),), {"reason": f"local search: {exc}"})
    net.requires_grad_(False)
    model = my_model(derive_seed(seed, "fitness"))
    untrained = mse(model, data.val)
    if not train(model, net, data.train.x, data.train.y, steps, seed=seed):
        return Evaluation((float("inf"),), {"reason": "training diverged"})
    error = mse(model, data.val)
    if not error < untrained:      # a rejection filter in the spirit of §4.6 (e.g. sign(...))
        return Evaluation((float("inf"),), {"reason": "no better than the untrained network"})
    return Evaluation((error,), {"weights": net.weight_list(), "expression": net.to_expression()})


def individual(toolbox):
    return correctArguments(toolbox.raw(), PSET)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=5, help="generations after the first")
    ap.add_argument("--meta-steps", type=int, default=30, help="local-search steps per tree")
    ap.add_argument("--steps", type=int, default=300, help="training steps of the fitness")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="population 6, 1 generation, few steps")
    args = ap.parse_args(argv)
    if args.smoke:
        args.population, args.generations, args.meta_steps, args.steps = 6, 1, 5, 100
    if args.population < 2 or args.generations < 0 or args.meta_steps < 0 or args.steps < 1:
        ap.error("--population >= 2, --generations >= 0, --meta-steps >= 0, --steps >= 1")
    random.seed(args.seed)

    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=PSET, min_=2, max_=4)
    tb.register("raw", tools.initIterate, creator.LossTree, tb.expr)
    tb.register("individual", individual, tb)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("mate", gp.cxOnePoint)
    tb.register("mutate", mutUniformLoss, pset=PSET)
    tb.decorate("mate", heightLimit(10))
    tb.decorate("mutate", heightLimit(10))
    tb.register("select", tools.selTournament, tournsize=4)
    tb.register("correct", correctArguments, pset=PSET)
    tb.register("evaluate", fitness, seed=args.seed, meta_steps=args.meta_steps, steps=args.steps)
    tb.register("map", get_map())

    pop = tb.population(n=args.population)
    hof = tools.HallOfFame(1)
    pop, logbook = eaEvoMAL(pop, tb, args.generations, halloffame=hof,
                            archive=LossArchive(task="regression", pset=PSET))
    best = hof[0]
    print(f"best tree: {best}  (validation MSE {best.fitness.values[0]:.4f}, "
          f"{sum(r['nevals'] for r in logbook)} evaluations)")
    print(f"learned: {best.info['expression']}")

    # the learned loss in an ordinary training loop, against MSE on the same initial weights
    data = cached_dataset("diabetes", seed=0)
    learned = MetaLossNetwork(str(best), task="regression", pset=PSET)
    learned.set_weights(best.info["weights"]).requires_grad_(False)
    test = {}
    for name, loss_fn in (("learned", learned), ("mse", nn.MSELoss())):
        model = my_model(derive_seed(args.seed, "final"))
        ok = train(model, loss_fn, data.train.x, data.train.y, 2 * args.steps, seed=args.seed)
        test[name] = mse(model, data.test) if ok else float("nan")
    print(f"test MSE after {2 * args.steps} steps: learned loss {test['learned']:.4f} vs "
          f"MSE {test['mse']:.4f} (seed {args.seed}, {args.generations + 1} populations "
          f"of {args.population})")
    return best


if __name__ == "__main__":
    main()
