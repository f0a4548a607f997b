"""``eaEvoMAL``: the EvoMAL generation loop (Raymond et al. 2023, TPAMI §4, Algorithm 1).

Generational GP over loss trees: elitism (the reference configures an elitism rate but never
applies it; here the ``elitism`` best survive unchanged), tournament selection, then each selected
tree independently undergoes crossover with probability ``cxpb`` (``toolbox.mate`` with a random
other selected tree, first child kept), else mutation with probability ``mutpb``
(``toolbox.mutate``), else reproduction — the reference's variation scheme (Table 2: 0.7 / 0.25).
Offspring are repaired with ``toolbox.correct``. Evaluation goes through
``toolbox.map(toolbox.evaluate, tree_strings)``; an archive keyed by output fingerprint
(:class:`deapnn.losses.archive.LossArchive`) skips every tree equivalent to one already evaluated,
rejected ones included, and de-duplicates within a generation.

``toolbox.evaluate(tree_string)`` returns a dict with at least ``fitness`` (∞ = rejected/failed);
the whole dict is kept in the archive. ``toolbox.parse(text)`` rebuilds an individual.

Checkpoint/resume: after every generation ``checkpoint(state)`` receives a checkpoint-safe dict
(trees as strings, fitnesses, generation, python/numpy/torch RNG state, logbook, hall of fame,
archive); ``eaEvoMAL(..., resume=state)`` continues after that generation and gives the same final
result as an uninterrupted run.
"""
from __future__ import annotations

import random

from deap import tools

from deapnn.losses.archive import LossArchive
from deapnn.runtime import rng_state, set_rng_state


def _plain(value):
    """Numbers from numpy / stats as builtin Python types (checkpoints load weights_only)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _evaluate(individuals, toolbox, archive: LossArchive, errors: list | None = None
              ) -> tuple[int, int]:
    """Give every invalid individual a fitness, evaluating one representative per archive key.
    Returns (new evaluations, archive hits); evaluations that failed (a record with ``error``:
    exception, out-of-memory, timeout) are appended to ``errors`` as ``"tree: reason"``."""
    invalid = [ind for ind in individuals if not ind.fitness.valid]
    pending: dict[str, str] = {}
    hits = 0
    for ind in invalid:
        key = archive.key(ind)
        if key in archive.entries:
            hits += 1
        elif key not in pending:
            pending[key] = str(ind)
    if pending:
        saved = rng_state()    # an in-process evaluation must not perturb the GP's random stream
        records = list(toolbox.map(toolbox.evaluate, list(pending.values())))
        set_rng_state(saved)
        for key, record in zip(pending, records):
            archive.entries.setdefault(key, _plain(dict(record)))
            if errors is not None and record.get("error"):
                errors.append(f"{pending[key]}: {record['error']}")
    for ind in invalid:
        ind.fitness.values = (float(archive.entries[archive.key(ind)]["fitness"]),)
    archive.hits += hits
    archive.misses += len(pending)
    return len(pending), hits


def _failures(errors) -> dict:
    """Logbook fields of a generation: ``failed`` (count) always, ``errors`` when there are some
    (DESIGN "Failure is data": the reason is in the logbook, the individual has fitness ∞)."""
    return {"failed": len(errors), **({"errors": list(errors)} if errors else {})}


def _vary(selected, toolbox, cxpb: float, mutpb: float):
    offspring = []
    for ind in selected:
        child = toolbox.clone(ind)
        r = random.random()
        if r < cxpb:
            child, _ = toolbox.mate(child, toolbox.clone(random.choice(selected)))
            del child.fitness.values
        elif r < cxpb + mutpb:
            (child,) = toolbox.mutate(child)
            del child.fitness.values
        toolbox.correct(child)
        offspring.append(child)
    return offspring


def _state(gen, population, logbook, halloffame, archive) -> dict:
    return {"generation": gen,
            "population": [str(ind) for ind in population],
            "fitness": [float(ind.fitness.values[0]) for ind in population],
            "rng": rng_state(),
            "logbook": [_plain(dict(r)) for r in logbook],
            "header": list(logbook.header or []),
            "halloffame": None if halloffame is None else
            [[str(ind), float(ind.fitness.values[0])] for ind in halloffame],
            "archive": archive.state()}


def _restore_population(state, toolbox):
    pop = []
    for text, fit in zip(state["population"], state["fitness"]):
        ind = toolbox.parse(text)
        ind.fitness.values = (fit,)
        pop.append(ind)
    return pop


def eaEvoMAL(population, toolbox, ngen: int, cxpb: float = 0.7, mutpb: float = 0.25,
             elitism: int = 1, stats=None, halloffame=None, verbose: bool = __debug__,
             archive: LossArchive | None = None, checkpoint=None, resume: dict | None = None):
    """Evolve loss trees for ``ngen`` generations; returns ``(population, logbook)``.

    With ``resume`` (a state given earlier to ``checkpoint``) the contents of ``population`` are
    replaced by the stored ones. Pass ``archive`` (a :class:`LossArchive` built for the task) to
    keep access to the evaluation records (learned weights, reasons); it is filled in place.
    """
    if not 0 <= cxpb <= 1 or not 0 <= mutpb <= 1 or cxpb + mutpb > 1:
        raise ValueError(f"need 0 <= cxpb, mutpb and cxpb + mutpb <= 1, got {cxpb}, {mutpb}")
    if not isinstance(ngen, int) or ngen < 0:
        raise ValueError(f"ngen must be an integer >= 0, got {ngen!r}")
    logbook = tools.Logbook()
    logbook.header = ["gen", "nevals", "cached"] + (stats.fields if stats else [])
    if resume is not None:
        if archive is None:
            archive = LossArchive.from_state(resume["archive"], getattr(toolbox, "pset", None))
        else:
            archive.load_state(resume["archive"])
        population[:] = _restore_population(resume, toolbox)
        logbook.header = resume["header"]
        for record in resume["logbook"]:
            logbook.record(**record)
        if halloffame is not None and resume["halloffame"] is not None:
            items = _restore_population({"population": [h[0] for h in resume["halloffame"]],
                                         "fitness": [h[1] for h in resume["halloffame"]]}, toolbox)
            halloffame.clear()
            halloffame.items = items
            halloffame.keys = [ind.fitness for ind in reversed(items)]
        set_rng_state(resume["rng"])
        start = resume["generation"] + 1
    else:
        archive = archive if archive is not None else LossArchive()
        if not 0 <= elitism <= len(population):
            raise ValueError(f"elitism must be in [0, {len(population)}], got {elitism}")
        for ind in population:
            toolbox.correct(ind)
        errors: list = []
        nevals, cached = _evaluate(population, toolbox, archive, errors)
        if halloffame is not None:
            halloffame.update(population)
        logbook.record(gen=0, nevals=nevals, cached=cached, **(stats.compile(population) if stats else {}),
                       **_failures(errors))
        if verbose:
            print(logbook.stream)
        if checkpoint:
            checkpoint(_state(0, population, logbook, halloffame, archive))
        start = 1
    for gen in range(start, ngen + 1):
        elites = [toolbox.clone(ind) for ind in tools.selBest(population, elitism)]
        selected = toolbox.select(population, len(population) - elitism)
        offspring = _vary(selected, toolbox, cxpb, mutpb)
        errors = []
        nevals, cached = _evaluate(offspring, toolbox, archive, errors)
        population[:] = elites + offspring
        if halloffame is not None:
            halloffame.update(population)
        logbook.record(gen=gen, nevals=nevals, cached=cached,
                       **(stats.compile(population) if stats else {}), **_failures(errors))
        if verbose:
            print(logbook.stream)
        if checkpoint:
            checkpoint(_state(gen, population, logbook, halloffame, archive))
    return population, logbook
