"""Regularized (aging) evolution — Real, Aggarwal, Huang & Le, "Regularized Evolution for Image
Classifier Architecture Search", AAAI 2019, Algorithm 1; the search loop of NLFS (Morgan & Hougen
2024 §3.4).

Each cycle samples ``sample_size`` members with replacement, mutates (a clone of) the fittest,
evaluates the child, appends it and removes the **oldest** member.  The hall of fame keeps the
best individuals ever evaluated (history), not only the survivors.

Ages (Morgan & Hougen's implementation of §3.4): the initial members all share one age (birth
0) and each child is younger than everything before it; the member removed is the oldest, the
weakest among equally old ones (:func:`operators.aging.replaceOldest`).  So the first ``P``
removals take the initial members **weakest first**, and a seeded population is not emptied
best-first.  Individuals that already carry ``birth`` keep it (a caller wanting Real et al.'s
queue order numbers them 0, 1, …).

Failed children (Morgan & Hougen's implementation of §3.4): a child whose evaluation failed —
an ``error``, a ``reason`` in its info (a failed pre-screen, a diverging training) or a
non-finite fitness — is mutated again from the **same parent** (no new tournament), up to
``attempts`` evaluations in all [7], and then discarded: the population is unchanged for that
cycle (``failed_child="discard"``).  ``failed_child="insert"`` inserts it like any child
(one attempt).  A child marked ``diverged`` in its info without a ``reason`` was scored, not
failed (NLFS: its best validation accuracy before the training turned non-finite) and is
inserted.  The logbook counts ``remutated`` (extra attempts), ``discarded``,
``inserted_failed`` and ``diverged_inserted`` per round.

Parallelism: Real et al. run the cycle loop asynchronously on many workers.  Here ``batch=W``
keeps W children in flight per round: W parents are sampled from the current population, W
children mutated and evaluated with **one** ``toolbox.map`` call (so SCOOP spreads them; the
re-mutated failures of the round go in one further call per attempt), then inserted in order,
each removing the oldest.  ``batch=1`` is exactly the sequential algorithm.

The algorithm is genome-agnostic: it only uses ``toolbox.select`` (default
:func:`operators.aging.selAgingTournament`), ``toolbox.clone``, ``toolbox.mutate``,
``toolbox.evaluate`` and ``toolbox.map``.  ``toolbox.evaluate`` returns a
:class:`deapnn.evaluation.Evaluation` (its ``info`` is kept as ``ind.info``; workers' in-place
changes are lost under SCOOP, so whatever must be kept is returned) or, DEAP's convention, a
plain fitness tuple.
"""
from __future__ import annotations

import math

from deap import tools

from ..operators.aging import check_sample_size, replaceOldest, selAgingTournament

from ..evaluation import assign
from .regularized_restart import default_encode, make_decode, regularized_state, restore_state
from .support import failure_fields, map_evaluations

FAILED_CHILD = ("discard", "insert")


def _evaluate(toolbox, individuals) -> tuple[list, list]:
    """Evaluate ``individuals`` (see :func:`~deapnn.algorithms.support.map_evaluations`) and
    assign the results; return ``(evaluations, errors)``, the failed evaluations as
    ``"birth-or-index: error"`` lines for the logbook's ``errors`` column."""
    errors, evaluations = [], map_evaluations(toolbox, individuals)
    for i, (ind, ev) in enumerate(zip(individuals, evaluations)):
        if assign(ind, ev).failed:
            errors.append(f"{getattr(ind, 'birth', i)}: {ev.error}")
    return evaluations, errors


def child_failed(ind, evaluation) -> bool:
    """Whether a child failed: its evaluation has an ``error``, a ``reason`` in its info (the
    method scored it worst on purpose, e.g. a failed pre-screen) or a non-finite fitness (what
    :func:`deapnn.evaluation.assign` turned into the worst value)."""
    return (evaluation.failed or bool(evaluation.info.get("reason"))
            or not all(math.isfinite(v) for v in ind.fitness.values))


def _diverged(ind) -> bool:         # marked by its evaluation, scored (not failed)
    return bool((getattr(ind, "info", None) or {}).get("diverged"))


def _select_one(toolbox, population, sample_size):
    sel = toolbox.select(population, sample_size)
    return sel[0] if isinstance(sel, (list, tuple)) else sel


def _make_child(toolbox, parent, birth):
    child = toolbox.mutate(toolbox.clone(parent))[0]
    del child.fitness.values
    if hasattr(child, "info"):
        del child.info
    child.birth = birth
    return child


def _breed(toolbox, parents, next_birth, failed_child, attempts):
    """The children of one round: one per parent, evaluated in one ``toolbox.map`` call; with
    ``failed_child="discard"`` each failed child is mutated again from its parent (one further
    map call per attempt, up to ``attempts`` evaluations per parent) and dropped if it still
    fails.  Returns ``(children to insert, counts, errors)``."""
    children = [_make_child(toolbox, p, next_birth + k) for k, p in enumerate(parents)]
    evaluations, errors = _evaluate(toolbox, children)
    failed = [child_failed(c, e) for c, e in zip(children, evaluations)]
    counts = {"nevals": len(children), "remutated": 0, "discarded": 0, "inserted_failed": 0,
              "diverged_inserted": 0}
    if failed_child == "insert":
        counts["inserted_failed"] = sum(failed)
        counts["diverged_inserted"] = sum(not f and _diverged(c)
                                          for c, f in zip(children, failed))
        return children, counts, errors
    for _ in range(attempts - 1):
        redo = [k for k, f in enumerate(failed) if f]
        if not redo:
            break
        again = [_make_child(toolbox, parents[k], next_birth + k) for k in redo]
        evaluations, more = _evaluate(toolbox, again)
        errors += more
        counts["nevals"] += len(again)
        counts["remutated"] += len(again)
        for k, child, ev in zip(redo, again, evaluations):
            children[k], failed[k] = child, child_failed(child, ev)
    counts["discarded"] = sum(failed)
    children = [c for c, f in zip(children, failed) if not f]
    counts["diverged_inserted"] = sum(map(_diverged, children))
    return children, counts, errors


def eaRegularizedEvolution(population, toolbox, cycles, sample_size, stats=None,
                           halloffame=None, verbose=False, batch=1, checkpoint=None,
                           resume_state=None, progress=None, encode=None, decode=None,
                           failed_child="discard", attempts=7):
    """Aging (regularized) evolution: Real et al. 2019, Algorithm 1.

    Each cycle samples ``sample_size`` members with replacement (``toolbox.select``, by default
    :func:`operators.aging.selAgingTournament`), mutates a clone of the fittest, evaluates the
    child, appends it and removes the oldest member (:func:`operators.aging.replaceOldest`). The
    algorithm is genome-agnostic: it uses only ``toolbox.select``, ``clone``, ``mutate``,
    ``evaluate`` and ``map``. ``toolbox.evaluate`` returns a :class:`deapnn.evaluation.Evaluation`
    (its ``info`` is kept as ``ind.info``) or, DEAP's convention, a plain fitness tuple.

    Parameters
    ----------
    population : list
        Individuals; **changed in place** (so a ``mutate`` that reads the live list, e.g.
        ``mutGraph(population=pop)``, always sees the current members). Individuals without
        ``birth`` all get birth 0: the initial members share one age, so the first removals take
        them weakest first (see the module docstring).
    toolbox : deap.base.Toolbox
        With ``mutate`` and ``evaluate`` (``select``, ``clone`` and ``map`` have defaults);
        optionally ``encode``/``decode`` for checkpoints.
    cycles : int
        Number of cycles, each one tournament and one child (inserted, or discarded after
        failing ``attempts`` times) — Real et al.'s C minus the initial P.
    sample_size : int
        S, members sampled with replacement per parent; must not exceed the population size
        (:func:`operators.aging.check_sample_size`).
    stats : deap.tools.Statistics, optional
        Compiled on the population after every round.
    halloffame : deap.tools.HallOfFame, optional
        Receives the initial population and every inserted child (the history, not only the
        survivors).
    verbose : bool, optional
        Print the logbook stream.
    batch : int, optional
        W children in flight per round, evaluated by one ``toolbox.map`` call (default 1: the
        sequential algorithm).
    checkpoint : callable, optional
        ``checkpoint(state)`` after the initial evaluation and after every round, with a plain
        dict (:func:`~deapnn.algorithms.regularized_restart.regularized_state`: genomes via
        ``encode``, births, fitnesses, infos, hall of fame, logbook records, counters,
        python/numpy/torch RNG states).
    resume_state : dict, optional
        A state given to ``checkpoint`` earlier; the run continues from it and, as the RNGs are
        restored too, ends exactly as the uninterrupted run would (given deterministic
        evaluations). ``population`` is replaced by the stored one.
    progress : object, optional
        tqdm-like; ``update(n)`` per round.
    encode : callable, optional
        Genome → plain data for checkpoints (default: ``toolbox.encode`` when registered, else
        ``ind.to_json()`` when present, else ``list(ind)``).
    decode : callable, optional
        Plain data → individual, to resume (default: ``toolbox.decode`` when registered, else
        ``from_json`` of the individual class when present, else the class itself).
    failed_child : {"discard", "insert"}, optional
        ``"discard"`` (default): a failed child (see :func:`child_failed`) is re-mutated from the
        same parent, up to ``attempts`` evaluations, then the population is left unchanged;
        ``"insert"``: failed children are inserted like any other.
    attempts : int, optional
        Evaluations per cycle with ``failed_child="discard"`` (default 7).

    Returns
    -------
    population : list
        The final population (the same list).
    logbook : deap.tools.Logbook
        Per round: ``cycle``, ``nevals`` (evaluations, re-mutations included), the ``stats``
        fields, ``remutated``, ``discarded``, ``inserted_failed``, ``diverged_inserted``
        (children inserted although their evaluation marked them ``diverged``), ``failed``
        (evaluation errors) and, when there are some, ``errors``.

    Raises
    ------
    ValueError
        On negative ``cycles``, ``batch`` or ``attempts`` < 1, an unknown ``failed_child``, or a
        ``sample_size`` the population cannot supply.

    Examples
    --------
    A bit-string genome (the algorithm knows nothing of losses):

    >>> import random
    >>> from deap import base, creator
    >>> from deapnn.algorithms import eaRegularizedEvolution
    >>> creator.create("FitnessOnes", base.Fitness, weights=(1.0,))
    >>> creator.create("Bits", list, fitness=creator.FitnessOnes)
    >>> def flip(ind):
    ...     i = random.randrange(len(ind)); ind[i] = 1 - ind[i]
    ...     return (ind,)
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("evaluate", lambda ind: (sum(ind),))
    >>> toolbox.register("mutate", flip)
    >>> random.seed(0)
    >>> pop = [creator.Bits(random.choices((0, 1), k=8)) for _ in range(6)]
    >>> pop, logbook = eaRegularizedEvolution(pop, toolbox, cycles=30, sample_size=3)
    >>> len(pop), len(logbook)                 # the initial evaluation, then one record per cycle
    (6, 31)

    References
    ----------
    Real, Aggarwal, Huang & Le 2019, "Regularized evolution for image classifier architecture
    search" (AAAI), §2 and Algorithm 1; Morgan & Hougen 2024 (arXiv 2403.08793), §3.4 (the NLFS
    search loop; ages and failed children as in the authors' implementation,
    ``docs/faithfulness.md``).
    """
    if cycles < 0:
        raise ValueError(f"cycles must be >= 0, got {cycles}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if failed_child not in FAILED_CHILD:
        raise ValueError(f"failed_child must be one of {', '.join(FAILED_CHILD)}, got "
                         f"{failed_child!r}")
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if not hasattr(toolbox, "select"):
        toolbox.register("select", selAgingTournament)
    encode = encode or getattr(toolbox, "encode", None) or default_encode

    def record(logbook, cycle, errors, counts):
        logbook.record(cycle=cycle, nevals=counts["nevals"],
                       **(stats.compile(population) if stats else {}),
                       **{k: v for k, v in counts.items() if k != "nevals"},
                       **failure_fields(errors))
        if verbose:
            print(logbook.stream)
        if checkpoint is not None:
            checkpoint(regularized_state(population, halloffame, logbook, cycle, next_birth,
                                         encode))

    if resume_state is not None:
        logbook, cycle, next_birth = restore_state(resume_state, population, halloffame,
                                                   make_decode(toolbox, decode, population))
        check_sample_size(len(population), sample_size)
        if progress is not None:
            progress.update(cycle)
    else:
        check_sample_size(len(population), sample_size)
        logbook = tools.Logbook()
        logbook.header = ["cycle", "nevals"] + (stats.fields if stats else [])
        invalid = [ind for ind in population if not ind.fitness.valid]
        for ind in population:
            if not hasattr(ind, "birth"):
                ind.birth = 0
        _, errors = _evaluate(toolbox, invalid)
        next_birth = max(ind.birth for ind in population) + 1 if population else 0
        if halloffame is not None:
            halloffame.update(population)
        cycle = 0
        record(logbook, cycle, errors, {"nevals": len(invalid), "remutated": 0,
                                        "discarded": 0, "inserted_failed": 0,
                                        "diverged_inserted": 0})

    while cycle < cycles:
        w = min(batch, cycles - cycle)
        parents = [_select_one(toolbox, population, sample_size) for _ in range(w)]
        children, counts, errors = _breed(toolbox, parents, next_birth, failed_child, attempts)
        next_birth += w
        for child in children:
            replaceOldest(population, child)
        if halloffame is not None:
            halloffame.update(children)
        cycle += w
        if progress is not None:
            progress.update(w)
        record(logbook, cycle, errors, counts)
    return population, logbook


class DistinctHallOfFame(tools.HallOfFame):
    """A :class:`deap.tools.HallOfFame` whose members are pairwise dissimilar.

    DEAP's hall of fame drops a newcomer similar to a member even when the newcomer is better,
    and its default ``similar`` (``==``) lets two genomes with the same phenotype in.  Here a
    newcomer similar to a member **replaces** it when strictly fitter and is dropped otherwise,
    so the hall of fame holds the best individual of each distinct phenotype (e.g.
    ``similar=operators.graph_phenotype.samePhenotype`` for NLFS loss graphs: no two reported
    losses share a probe-curve fingerprint).
    """

    def update(self, population):
        for ind in population:
            if self.maxsize == 0:
                return
            twin = next((j for j, h in enumerate(self) if self.similar(ind, h)), None)
            if twin is not None:
                if ind.fitness > self[twin].fitness:
                    self.remove(twin)
                    self.insert(ind)
                continue
            if len(self) < self.maxsize:
                self.insert(ind)
            elif ind.fitness > self[-1].fitness:
                self.remove(-1)
                self.insert(ind)
