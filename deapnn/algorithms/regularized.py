"""Regularized (aging) evolution — Real, Aggarwal, Huang & Le, "Regularized Evolution for Image
Classifier Architecture Search", AAAI 2019, Algorithm 1; the search loop of NLFS (Morgan & Hougen
2024 §3.4).

Each cycle samples ``sample_size`` members with replacement, mutates (a clone of) the fittest,
evaluates the child, appends it and removes the **oldest** member.  The hall of fame keeps the
best individuals ever evaluated (history), not only the survivors.

Parallelism: Real et al. run the cycle loop asynchronously on many workers.  Here ``batch=W``
keeps W children in flight per round: W parents are sampled from the current population, W
children mutated and evaluated with **one** ``toolbox.map`` call (so SCOOP spreads them), then
inserted in order, each removing the oldest.  ``batch=1`` is exactly the sequential algorithm.

The algorithm is genome-agnostic: it only uses ``toolbox.select`` (default
:func:`operators.aging.selAgingTournament`), ``toolbox.clone``, ``toolbox.mutate``,
``toolbox.evaluate`` and ``toolbox.map``.  ``toolbox.evaluate`` returns a
:class:`deapnn.evaluation.Evaluation` (its ``info`` is kept as ``ind.info``; workers' in-place
changes are lost under SCOOP, so whatever must be kept is returned) or, DEAP's convention, a
plain fitness tuple.
"""
from __future__ import annotations

from deap import tools

from operators.aging import check_sample_size, replaceOldest, selAgingTournament

from ..evaluation import assign
from ..runtime import rng_state, set_rng_state
from .support import (failure_fields, logbook_records, map_evaluations, plain,
                      restore_halloffame, restore_logbook)

STATE_FORMAT = "deapnn-regularized-2"
#: states written before the logbook was stored as ``logbook_records`` (still read)
OLD_STATE_FORMATS = ("deapnn-regularized-1",)


def _default_encode(ind):
    if hasattr(ind, "to_json"):
        return ind.to_json()
    return plain(list(ind))


def _make_decode(toolbox, decode, population):
    if decode is not None:
        return decode
    if hasattr(toolbox, "decode"):
        return toolbox.decode
    if not population:
        raise ValueError("resuming needs toolbox.decode, a decode= function or a non-empty "
                         "population whose class rebuilds individuals")
    cls = type(population[0])
    return cls.from_json if hasattr(cls, "from_json") else cls


def _evaluate(toolbox, individuals) -> list:
    """Evaluate ``individuals`` (see :func:`~deapnn.algorithms.support.map_evaluations`) and
    assign the results; return the failed evaluations as ``"birth-or-index: error"`` lines for
    the logbook's ``errors`` column."""
    errors = []
    for i, (ind, ev) in enumerate(zip(individuals, map_evaluations(toolbox, individuals))):
        if assign(ind, ev).failed:
            errors.append(f"{getattr(ind, 'birth', i)}: {ev.error}")
    return errors


def _select_one(toolbox, population, sample_size):
    sel = toolbox.select(population, sample_size)
    return sel[0] if isinstance(sel, (list, tuple)) else sel


def _encode_ind(ind, encode) -> dict:
    return {"genome": encode(ind), "birth": int(getattr(ind, "birth", -1)),
            "fitness": [float(v) for v in ind.fitness.values],
            "info": plain(getattr(ind, "info", {}))}


def _decode_ind(rec, decode):
    ind = decode(rec["genome"])
    ind.birth = int(rec["birth"])
    if rec["fitness"]:
        ind.fitness.values = tuple(rec["fitness"])
    if rec.get("info"):
        ind.info = dict(rec["info"])
    return ind


def regularized_state(population, halloffame, logbook, cycle, next_birth, encode=None) -> dict:
    """The restart state of a run after ``cycle`` children (see ``resume_state=``)."""
    encode = encode or _default_encode
    return {"format": STATE_FORMAT, "cycle": int(cycle), "next_birth": int(next_birth),
            "population": [_encode_ind(ind, encode) for ind in population],
            "halloffame": [_encode_ind(ind, encode) for ind in (halloffame or [])],
            "logbook": logbook_records(logbook), "rng": rng_state()}


def state_logbook(state: dict) -> list:
    """The logbook records stored in a :func:`regularized_state` (either layout)."""
    book = state["logbook"]
    return list(book["records"]) if isinstance(book, dict) else list(book)


def _restore(state, population, halloffame, decode):
    """Put the run stored in ``state`` back: population (in place), hall of fame, RNGs;
    return ``(logbook, cycle, next_birth)``."""
    if state.get("format") not in (STATE_FORMAT, *OLD_STATE_FORMATS):
        raise ValueError("resume state is not a regularized-evolution state")
    population[:] = [_decode_ind(r, decode) for r in state["population"]]
    if halloffame is not None:
        restore_halloffame(halloffame, [_decode_ind(r, decode) for r in state["halloffame"]])
    book = state["logbook"]
    logbook = restore_logbook(book if isinstance(book, dict) else
                              {"header": state.get("header"), "records": book})
    set_rng_state(state["rng"])
    return logbook, state["cycle"], state["next_birth"]


def eaRegularizedEvolution(population, toolbox, cycles, sample_size, stats=None,
                           halloffame=None, verbose=False, batch=1, checkpoint=None,
                           resume_state=None, progress=None, encode=None, decode=None):
    """Aging evolution (Real et al. 2019, Algorithm 1) → ``(population, logbook)``.

    :param population: list of individuals; **changed in place** (so a ``mutate`` that reads
        the live list, e.g. ``mutGraph(population=pop)``, always sees the current members).
        Individuals without ``birth`` get births 0, 1, … in list order.
    :param cycles: number of children to produce (Real et al.'s C minus the initial P).
    :param sample_size: S, members sampled with replacement per parent; must not exceed the
        population size (:func:`operators.aging.check_sample_size`).
    :param batch: W children in flight per round, evaluated by one ``toolbox.map`` call.
    :param checkpoint: callable ``checkpoint(state)`` called after the initial evaluation and
        after every round with a plain dict (genomes via ``encode``, births, fitnesses, infos,
        hall of fame, logbook records, counters, python/numpy/torch RNG states).
    :param resume_state: a state given to ``checkpoint`` earlier; the run continues from it and,
        as the RNGs are restored too, ends exactly as the uninterrupted run would (given
        deterministic evaluations).  ``population`` is replaced by the stored one.
    :param progress: optional tqdm-like object; ``update(n)`` per round.
    :param encode/decode: genome ↔ plain data (defaults: ``to_json``/``from_json`` of the
        individual class when present, else ``list(ind)``/``cls(list)``; ``toolbox.decode`` wins).
    """
    if cycles < 0:
        raise ValueError(f"cycles must be >= 0, got {cycles}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not hasattr(toolbox, "select"):
        toolbox.register("select", selAgingTournament)
    encode = encode or getattr(toolbox, "encode", None) or _default_encode

    def record(logbook, cycle, nevals, errors):
        logbook.record(cycle=cycle, nevals=nevals,
                       **(stats.compile(population) if stats else {}), **failure_fields(errors))
        if verbose:
            print(logbook.stream)
        if checkpoint is not None:
            checkpoint(regularized_state(population, halloffame, logbook, cycle, next_birth, encode))

    if resume_state is not None:
        logbook, cycle, next_birth = _restore(resume_state, population, halloffame,
                                              _make_decode(toolbox, decode, population))
        check_sample_size(len(population), sample_size)
        if progress is not None:
            progress.update(cycle)
    else:
        check_sample_size(len(population), sample_size)
        logbook = tools.Logbook()
        logbook.header = ["cycle", "nevals"] + (stats.fields if stats else [])
        invalid = [ind for ind in population if not ind.fitness.valid]
        for i, ind in enumerate(population):
            if not hasattr(ind, "birth"):
                ind.birth = i
        errors = _evaluate(toolbox, invalid)
        next_birth = max(ind.birth for ind in population) + 1 if population else 0
        if halloffame is not None:
            halloffame.update(population)
        cycle = 0
        record(logbook, cycle, len(invalid), errors)

    while cycle < cycles:
        w = min(batch, cycles - cycle)
        parents = [_select_one(toolbox, population, sample_size) for _ in range(w)]
        children = []
        for parent in parents:
            child = toolbox.clone(parent)
            child = toolbox.mutate(child)[0]
            del child.fitness.values
            if hasattr(child, "info"):
                del child.info
            children.append(child)
        for k, child in enumerate(children):
            child.birth = next_birth + k
        errors = _evaluate(toolbox, children)
        for child in children:
            next_birth += 1
            replaceOldest(population, child)
        if halloffame is not None:
            halloffame.update(children)
        cycle += w
        if progress is not None:
            progress.update(w)
        record(logbook, cycle, w, errors)
    return population, logbook


class DistinctHallOfFame(tools.HallOfFame):
    """A :class:`deap.tools.HallOfFame` whose members are pairwise dissimilar.

    DEAP's hall of fame drops a newcomer similar to a member even when the newcomer is better,
    and its default ``similar`` (``==``) lets two genomes with the same phenotype in.  Here a
    newcomer similar to a member **replaces** it when strictly fitter and is dropped otherwise,
    so the hall of fame holds the best individual of each distinct phenotype (e.g.
    ``similar=operators.graph.samePhenotype`` for NLFS loss graphs: no two reported losses share
    a probe-curve fingerprint).
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
