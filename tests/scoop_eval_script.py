"""A 4-individual DEAP evaluation that trains a tiny model per individual.

Run serially (``python tests/scoop_eval_script.py SEED``) or under SCOOP
(``python -m scoop -n 2 tests/scoop_eval_script.py SEED``); prints one JSON line
``{"scoop": bool, "fitnesses": [...], "pids": [...]}``. ``tests/test_scoop.py`` checks that
both give exactly the same fitnesses. Each evaluation seeds itself with
``derive_seed(run_seed, identity)`` so the result does not depend on which worker runs it.
"""
import functools
import json
import os
import sys

from deap import base, creator, tools

from deapnn.runtime import configure_worker_threads, derive_seed, get_map, running_under_scoop

RUN_SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 0

# Module level: SCOOP workers import this module too and need the creator classes to unpickle.
if not hasattr(creator, "FitnessMaxScoopTest"):
    creator.create("FitnessMaxScoopTest", base.Fitness, weights=(1.0,))
    creator.create("IndScoopTest", list, fitness=creator.FitnessMaxScoopTest)

@functools.cache
def _data():
    from deapnn.data import load_dataset
    return load_dataset("iris", seed=0)


def evaluate(ind):
    """Train a small MLP on iris with this individual's hidden width and lr; fitness = val
    accuracy plus the sum of the trained weights (a bit-sensitive fingerprint)."""
    import torch
    from deapnn.models import MLP
    from deapnn.training import TrainConfig, evaluate as acc_of, train

    configure_worker_threads(1)
    ident, width, lr = ind
    seed = derive_seed(RUN_SEED, "ind", ident)
    torch.manual_seed(seed)
    data = _data()
    model = MLP(data.input_shape, data.num_classes, hidden=(int(width),))
    cfg = TrainConfig(epochs=2, lr=float(lr), batch_size=16, weight_decay=0.0)
    train(model, data.train.x, data.train.y, cfg, device=torch.device("cpu"), seed=seed)
    acc = acc_of(model, data.val.x, data.val.y)
    fingerprint = float(sum(p.detach().double().sum() for p in model.parameters()))
    return (acc, fingerprint, os.getpid())


def main():
    toolbox = base.Toolbox()
    toolbox.register("map", get_map())
    toolbox.register("evaluate", evaluate)
    genomes = [(0, 8, 0.05), (1, 16, 0.1), (2, 4, 0.2), (3, 12, 0.02)]
    population = [creator.IndScoopTest(g) for g in genomes]
    results = list(toolbox.map(toolbox.evaluate, population))
    for ind, (acc, _fp, _pid) in zip(population, results):
        ind.fitness.values = (acc,)
    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    stats.register("max", max)
    print(json.dumps({"scoop": running_under_scoop(),
                      "fitnesses": [list(ind.fitness.values) for ind in population],
                      "fingerprints": [r[1] for r in results],
                      "pids": sorted({r[2] for r in results}),
                      "max": stats.compile(population)["max"]}))


if __name__ == "__main__":
    main()
