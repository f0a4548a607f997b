"""``eaEvoMAL``: the EvoMAL generation loop (Raymond et al. 2023, TPAMI §4, Algorithm 1).

Generational GP over loss trees: elitism (the reference configures an elitism rate but never
applies it; here the ``elitism`` best survive unchanged), tournament selection, then each selected
tree independently undergoes crossover with probability ``cxpb`` (``toolbox.mate`` with a random
other selected tree, first child kept), else mutation with probability ``mutpb``
(``toolbox.mutate``), else reproduction — the reference's variation scheme (Table 2: 0.7 / 0.25).
Offspring are repaired with ``toolbox.correct``. Evaluation goes through
``toolbox.map(toolbox.evaluate, tree_strings)``; an archive
(:class:`deapnn.losses.archive.LossArchive`, §4.6 "Filters"; keyed by the exact tree as the
reference, or by output fingerprint) skips every tree whose key was evaluated already, rejected
ones included, and de-duplicates within a generation.

``toolbox.evaluate(tree_string)`` returns a :class:`deapnn.evaluation.Evaluation` (or a plain
fitness tuple); its info, fitness and error are kept in the archive as one record (the tree
evaluated included, also when the evaluation failed). ``toolbox.parse(text)`` rebuilds an
individual.

Checkpoint/resume: after every generation ``checkpoint(state)`` receives a checkpoint-safe dict
(trees as strings, fitnesses, generation, python/numpy/torch RNG state, logbook, hall of fame,
archive); ``eaEvoMAL(..., resume_state=state)`` continues after that generation and gives the same
final result as an uninterrupted run.
"""
from __future__ import annotations

import random

from deap import tools

from deapnn.algorithms.support import (failure_fields, map_evaluations, plain,
                                       restore_halloffame, restore_logbook)
from deapnn.checkpoint import restoring
from deapnn.evaluation import assign
from deapnn.losses.archive import LossArchive, evaluation_of, record_of
from deapnn.runtime import rng_state, set_rng_state


def variation_error(cxpb, mutpb) -> str | None:
    """Why ``cxpb``/``mutpb`` are not valid variation rates (each in [0, 1], sum <= 1), or None.
    The one statement of the rule (``deapnn.evomal.config`` checks a run's settings with it)."""
    if not 0 <= cxpb <= 1 or not 0 <= mutpb <= 1 or cxpb + mutpb > 1:
        return f"need 0 <= cxpb, mutpb and cxpb + mutpb <= 1, got {cxpb}, {mutpb}"
    return None


def _evaluate(individuals, toolbox, archive: LossArchive, errors: list) -> tuple[int, int]:
    """Give every invalid individual a fitness (and ``ind.info``), evaluating one
    representative per archive key that the archive cannot answer. Returns (new evaluations,
    archive hits); evaluations that failed (exception, out-of-memory, timeout) are appended to
    ``errors`` as ``"tree: error"``."""
    invalid = [ind for ind in individuals if not ind.fitness.valid]
    hits_before = archive.hits
    records: dict[str, dict] = {}
    pending: dict[str, str] = {}
    for ind in invalid:
        key = archive.key(ind)
        if key in pending:          # an equivalent tree is evaluated in this batch already
            continue
        record = archive.get(ind)
        if record is None:
            pending[key] = str(ind)
        else:
            records[key] = record
    for (key, text), evaluation in zip(pending.items(),
                                       map_evaluations(toolbox, pending.values())):
        records[key] = archive.add(text, plain(record_of(text, evaluation)))
        if evaluation.failed:
            errors.append(f"{text}: {evaluation.error}")
    for ind in invalid:
        assign(ind, evaluation_of(records[archive.key(ind)]))
    return len(pending), archive.hits - hits_before


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
            "logbook": [plain(dict(r)) for r in logbook],
            "header": list(logbook.header or []),
            "halloffame": None if halloffame is None else
            [[str(ind), float(ind.fitness.values[0])] for ind in halloffame],
            "archive": archive.state()}


def _individuals(pairs, toolbox):
    """Individuals from stored ``(tree string, fitness)`` pairs."""
    out = []
    for text, fit in pairs:
        ind = toolbox.parse(text)
        ind.fitness.values = (fit,)
        out.append(ind)
    return out


def eaEvoMAL(population, toolbox, ngen: int, cxpb: float = 0.7, mutpb: float = 0.25,
             elitism: int = 1, stats=None, halloffame=None, verbose: bool = False,
             archive: LossArchive | None = None, checkpoint=None, resume_state: dict | None = None):
    """The EvoMAL generation loop: generational GP over loss trees (Raymond et al. 2023, §4).

    Evaluate ``population`` (generation 0), then evolve it for ``ngen`` generations — ``ngen + 1``
    populations in all, as DEAP's ``ea*`` loops count (``deapnn evomal --generations G`` counts
    populations and passes ``ngen = G - 1``). Each generation keeps the ``elitism`` best
    unchanged, selects the rest with ``toolbox.select``, and each selected tree independently
    undergoes crossover with probability ``cxpb`` (``toolbox.mate`` with a random other selected
    tree, first child kept), else mutation with probability ``mutpb`` (``toolbox.mutate``), else
    reproduction; offspring are repaired with ``toolbox.correct``. Evaluation goes through
    ``toolbox.map(toolbox.evaluate, tree_strings)``; the archive skips every tree whose key
    (the exact tree by default, or its output fingerprint) was evaluated already, rejected ones
    included.

    Parameters
    ----------
    population : list of deap.gp.PrimitiveTree
        The initial trees; replaced in place by each new generation.
    toolbox : deap.base.Toolbox
        With ``select``, ``mate``, ``mutate``, ``correct`` (e.g.
        :func:`operators.correctArguments`), ``clone``, ``map``, ``evaluate`` (a tree string →
        :class:`deapnn.evaluation.Evaluation` or a plain fitness tuple) and, to resume, ``parse``
        (text → individual). ``deapnn.evomal.toolbox.make_toolbox`` registers them all.
    ngen : int
        Generations after the initial one (>= 0).
    cxpb : float, optional
        Crossover rate (default 0.7, Table 2); in [0, 1], ``cxpb + mutpb <= 1``.
    mutpb : float, optional
        Mutation rate (default 0.25, Table 2); in [0, 1].
    elitism : int, optional
        Best trees kept unchanged per generation (default 1; the reference configures elitism
        but never applies it).
    stats : deap.tools.Statistics, optional
        Compiled on every population.
    halloffame : deap.tools.HallOfFame, optional
        Updated with every population.
    verbose : bool, optional
        Print the logbook stream.
    archive : deapnn.losses.LossArchive, optional
        The evaluation records (learned weights, reasons), filled in place; pass one built for
        the task to keep access to them (default: a new classification archive).
    checkpoint : callable, optional
        ``checkpoint(state)`` after every generation, with a checkpoint-safe dict (trees as
        strings, fitnesses, generation, python/numpy/torch RNG state, logbook, hall of fame,
        archive).
    resume_state : dict, optional
        A state given to ``checkpoint`` earlier: the contents of ``population`` are replaced by
        the stored ones and the run continues after that generation, ending as an uninterrupted
        run would.

    Returns
    -------
    population : list
        The last population (the same list).
    logbook : deap.tools.Logbook
        One record per population (``gen`` 0 … ``ngen``): ``gen``, ``nevals`` (new
        evaluations), ``cached`` (archive hits), the ``stats`` fields, ``failed`` and, when there
        are some, ``errors``.

    Raises
    ------
    ValueError
        On invalid ``cxpb``/``mutpb``, ``ngen`` or ``elitism``.

    Examples
    --------
    >>> import random
    >>> from deapnn.algorithms import eaEvoMAL
    >>> from deapnn.evomal.toolbox import make_toolbox
    >>> random.seed(0)
    >>> toolbox = make_toolbox(evaluate=lambda tree: (len(tree),), map_fn=map)   # toy fitness
    >>> pop, logbook = eaEvoMAL(toolbox.population(6), toolbox, ngen=2)
    >>> logbook.select("gen")
    [0, 1, 2]

    References
    ----------
    Raymond, Chen, Xue & Zhang 2023, "Learning symbolic model-agnostic loss functions via
    meta-learning" (TPAMI, arXiv 2209.08907), §4 and Algorithm 1 (the loop), §4.6 (filters:
    the archive) and Table 2 (rates); ``docs/faithfulness.md`` lists every element against the
    paper and the reference code.
    """
    why = variation_error(cxpb, mutpb)
    if why:
        raise ValueError(why)
    if not isinstance(ngen, int) or ngen < 0:
        raise ValueError(f"ngen must be an integer >= 0, got {ngen!r}")
    if resume_state is not None:
        with restoring():
            state = resume_state
            if archive is None:
                archive = LossArchive.from_state(state["archive"], getattr(toolbox, "pset", None))
            else:
                archive.load_state(state["archive"])
            population[:] = _individuals(zip(state["population"], state["fitness"]), toolbox)
            logbook = restore_logbook({"header": state["header"], "records": state["logbook"]})
            if halloffame is not None and state["halloffame"] is not None:
                restore_halloffame(halloffame, _individuals(state["halloffame"], toolbox))
            set_rng_state(state["rng"])
            start = int(state["generation"]) + 1
    else:
        logbook = tools.Logbook()
        logbook.header = ["gen", "nevals", "cached"] + (stats.fields if stats else [])
        archive = archive if archive is not None else LossArchive()
        if not 0 <= elitism <= len(population):
            raise ValueError(f"elitism must be in [0, {len(population)}], got {elitism}")
        for ind in population:
            toolbox.correct(ind)
        start = 0
    for gen in range(start, ngen + 1):
        if gen == 0:
            offspring = population
        else:
            elites = [toolbox.clone(ind) for ind in tools.selBest(population, elitism)]
            selected = toolbox.select(population, len(population) - elitism)
            offspring = _vary(selected, toolbox, cxpb, mutpb)
        errors: list = []
        nevals, cached = _evaluate(offspring, toolbox, archive, errors)
        if gen:
            population[:] = elites + offspring
        if halloffame is not None:
            halloffame.update(population)
        logbook.record(gen=gen, nevals=nevals, cached=cached,
                       **(stats.compile(population) if stats else {}), **failure_fields(errors))
        if verbose:
            print(logbook.stream)
        if checkpoint:
            checkpoint(_state(gen, population, logbook, halloffame, archive))
    return population, logbook
