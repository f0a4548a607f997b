"""Regularized (aging) evolution — Real, Aggarwal, Huang & Le, "Regularized Evolution for Image
Classifier Architecture Search", AAAI 2019, Algorithm 1; the search loop of NLFS (Morgan & Hougen
2024 §3.4; SPEC §3).

Each cycle samples ``sample_size`` members with replacement, mutates (a clone of) the fittest,
evaluates the child, appends it and removes the **oldest** member.  The hall of fame keeps the
best individuals ever evaluated (history), not only the survivors.

Parallelism: Real et al. run the cycle loop asynchronously on many workers.  Here ``batch=W``
keeps W children in flight per round: W parents are sampled from the current population, W
children mutated and evaluated with **one** ``toolbox.map`` call (so SCOOP spreads them), then
inserted in order, each removing the oldest.  ``batch=1`` is exactly the sequential algorithm.

The algorithm is genome-agnostic: it only uses ``toolbox.select`` (default
:func:`operators.aging.selAgingTournament`), ``toolbox.clone``, ``toolbox.mutate``,
``toolbox.evaluate`` and ``toolbox.map``.  ``toolbox.evaluate`` returns the fitness tuple, or
``(fitness_tuple, info_dict)``; ``info_dict`` is kept as ``ind.info`` (workers' in-place changes
are lost under SCOOP, so whatever must be kept is returned).
"""
from __future__ import annotations

import math

import numpy as np
from deap import tools

from operators.aging import replaceOldest, selAgingTournament

from ..runtime import rng_state, set_rng_state

STATE_FORMAT = "deapnn-regularized-1"


def _plain(obj):
    """A copy of ``obj`` made of dict / list / str / int / float / bool / None only
    (safe for :func:`deapnn.checkpoint.save_checkpoint` and JSON)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def _default_encode(ind):
    if hasattr(ind, "to_json"):
        return ind.to_json()
    return _plain(list(ind))


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


def _assign(ind, result) -> None:
    reason = getattr(result, "reason", None)     # deapnn.failsafe.Failed: worst values + reason
    if reason is not None:
        ind.info = {"reason": reason, "error": reason}
        values = tuple(result)
    elif (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[1], dict)):
        values, info = result
        ind.info = dict(info)
    else:
        values = result
    if isinstance(values, (int, float)):
        values = (values,)
    values = tuple(float(v) if v is not None and math.isfinite(float(v)) else -math.inf
                   if w > 0 else math.inf for v, w in zip(values, ind.fitness.weights))
    ind.fitness.values = values


def _evaluate(toolbox, individuals) -> list:
    """Evaluate through ``toolbox.map``; return the failures (``info["error"]``) as
    ``"birth-or-index: reason"`` strings for the logbook (DESIGN "Failure is data")."""
    if not individuals:
        return []
    # An in-process evaluation (builtin map, or the SCOOP origin running some of the futures)
    # must not perturb the algorithm's random stream, or the run would depend on where each
    # evaluation ran.
    saved = rng_state()
    results = list(toolbox.map(toolbox.evaluate, individuals))
    set_rng_state(saved)
    errors = []
    for i, (ind, res) in enumerate(zip(individuals, results)):
        _assign(ind, res)
        error = getattr(ind, "info", {}).get("error")
        if error:
            errors.append(f"{getattr(ind, 'birth', i)}: {error}")
    return errors


def _failures(errors) -> dict:
    """Logbook fields of a round: always ``failed`` (count); ``errors`` when there are some."""
    return {"failed": len(errors), **({"errors": list(errors)} if errors else {})}


def _select_one(toolbox, population, sample_size):
    sel = toolbox.select(population, sample_size)
    return sel[0] if isinstance(sel, (list, tuple)) else sel


def _encode_ind(ind, encode) -> dict:
    return {"genome": encode(ind), "birth": int(getattr(ind, "birth", -1)),
            "fitness": [float(v) for v in ind.fitness.values],
            "info": _plain(getattr(ind, "info", {}))}


def _decode_ind(rec, decode):
    ind = decode(rec["genome"])
    ind.birth = int(rec["birth"])
    if rec["fitness"]:
        ind.fitness.values = tuple(rec["fitness"])
    if rec.get("info"):
        ind.info = dict(rec["info"])
    return ind


def regularized_state(population, halloffame, logbook, cycle, next_birth, encode=None) -> dict:
    """The restart state of a run after ``cycle`` children (see ``resume=``)."""
    encode = encode or _default_encode
    return {"format": STATE_FORMAT, "cycle": int(cycle), "next_birth": int(next_birth),
            "population": [_encode_ind(ind, encode) for ind in population],
            "halloffame": [_encode_ind(ind, encode) for ind in (halloffame or [])],
            "logbook": [_plain(dict(r)) for r in logbook], "header": list(logbook.header or []),
            "rng": rng_state()}


def eaRegularizedEvolution(population, toolbox, cycles, sample_size, stats=None,
                           halloffame=None, verbose=__debug__, batch=1, checkpoint=None,
                           resume=None, progress=None, encode=None, decode=None):
    """Aging evolution (Real et al. 2019, Algorithm 1) → ``(population, logbook)``.

    :param population: list of individuals; **changed in place** (so a ``mutate`` that reads
        the live list, e.g. ``mutGraph(population=pop)``, always sees the current members).
        Individuals without ``birth`` get births 0, 1, … in list order.
    :param cycles: number of children to produce (Real et al.'s C minus the initial P).
    :param sample_size: S, members sampled with replacement per parent; must not exceed the
        population size.
    :param batch: W children in flight per round, evaluated by one ``toolbox.map`` call.
    :param checkpoint: callable ``checkpoint(state)`` called after the initial evaluation and
        after every round with a plain dict (genomes via ``encode``, births, fitnesses, infos,
        hall of fame, logbook records, counters, python/numpy/torch RNG states).
    :param resume: a state given to ``checkpoint`` earlier; the run continues from it and, as the
        RNGs are restored too, ends exactly as the uninterrupted run would (given deterministic
        evaluations).  ``population`` is replaced by the stored one.
    :param progress: optional tqdm-like object; ``update(n)`` per round.
    :param encode/decode: genome ↔ plain data (defaults: ``to_json``/``from_json`` of the
        individual class when present, else ``list(ind)``/``cls(list)``; ``toolbox.decode`` wins).
    """
    if cycles < 0:
        raise ValueError(f"cycles must be >= 0, got {cycles}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if sample_size < 1:
        raise ValueError(f"sample_size must be >= 1, got {sample_size}")
    if not hasattr(toolbox, "select"):
        toolbox.register("select", selAgingTournament)
    encode = encode or getattr(toolbox, "encode", None) or _default_encode
    logbook = tools.Logbook()

    if resume is not None:
        if resume.get("format") != STATE_FORMAT:
            raise ValueError("resume state is not a regularized-evolution state")
        dec = _make_decode(toolbox, decode, population)
        population[:] = [_decode_ind(r, dec) for r in resume["population"]]
        if halloffame is not None:
            halloffame.clear()
            # insert worst first: equal-fitness members then keep their stored order
            for ind in reversed([_decode_ind(r, dec) for r in resume["halloffame"]]):
                halloffame.insert(ind)
        logbook.header = resume["header"] or None
        for rec in resume["logbook"]:
            logbook.record(**rec)
        cycle, next_birth = resume["cycle"], resume["next_birth"]
        set_rng_state(resume["rng"])
        if progress is not None:
            progress.update(cycle)
    else:
        if len(population) < sample_size:
            raise ValueError(f"population of {len(population)} is smaller than the sample size "
                             f"{sample_size}")
        logbook.header = ["cycle", "nevals"] + (stats.fields if stats else [])
        invalid = [ind for ind in population if not ind.fitness.valid]
        for i, ind in enumerate(population):
            if not hasattr(ind, "birth"):
                ind.birth = i
        errors = _evaluate(toolbox, invalid)
        next_birth = max(ind.birth for ind in population) + 1 if population else 0
        if halloffame is not None:
            halloffame.update(population)
        logbook.record(cycle=0, nevals=len(invalid), **(stats.compile(population) if stats else {}),
                       **_failures(errors))
        if verbose:
            print(logbook.stream)
        cycle = 0
        if checkpoint is not None:
            checkpoint(regularized_state(population, halloffame, logbook, cycle, next_birth, encode))

    if len(population) < sample_size:
        raise ValueError(f"population of {len(population)} is smaller than the sample size "
                         f"{sample_size}")
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
        logbook.record(cycle=cycle, nevals=w, **(stats.compile(population) if stats else {}),
                       **_failures(errors))
        if verbose:
            print(logbook.stream)
        if progress is not None:
            progress.update(w)
        if checkpoint is not None:
            checkpoint(regularized_state(population, halloffame, logbook, cycle, next_birth, encode))
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
