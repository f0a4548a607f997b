"""What the three generation loops share: evaluation through ``toolbox.map`` with the caller's
random streams isolated, failure counting for the logbook, and checkpoint-safe (de)serialisation
of logbooks, hall-of-fame contents and evaluation records.

Used by :func:`~deapnn.algorithms.eaRegularizedEvolution`, :func:`~deapnn.algorithms.eaEvoMAL`
and :func:`~deapnn.algorithms.eaGradientLexicase`.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from deap import tools

from ..evaluation import Evaluation, as_evaluation
from ..runtime import rng_state, set_rng_state


def plain(obj):
    """A copy of ``obj`` made of dict / list / str / int / float / bool / None only (safe for
    ``deapnn.checkpoint.save_checkpoint``, which loads with ``weights_only=True``, and JSON).
    numpy scalars and arrays become Python numbers and lists; anything else becomes its text."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


@contextmanager
def isolated_rng():
    """Run the block without touching the python / numpy / torch global random streams: the
    states are restored afterwards, also when the block raises. An evaluation that runs in
    this process (builtin ``map``, or the SCOOP origin running some futures itself) then cannot
    perturb the algorithm's random stream, so a run does not depend on where each evaluation
    ran."""
    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def map_evaluations(toolbox, items) -> list[Evaluation]:
    """``toolbox.map(toolbox.evaluate, items)`` inside :func:`isolated_rng`, each result read
    with :func:`~deapnn.evaluation.as_evaluation`."""
    items = list(items)
    if not items:
        return []
    with isolated_rng():
        results = list(toolbox.map(toolbox.evaluate, items))
    return [as_evaluation(r) for r in results]


def failure_fields(errors) -> dict:
    """Logbook fields of a generation or round: ``failed`` (count) always, ``errors`` (the
    ``"who: reason"`` lines) when there are some."""
    return {"failed": len(errors), **({"errors": list(errors)} if errors else {})}


def logbook_records(logbook) -> dict:
    """A logbook as plain data (see :func:`restore_logbook`)."""
    return {"header": list(logbook.header or []), "records": [plain(dict(r)) for r in logbook]}


def restore_logbook(data: dict) -> tools.Logbook:
    """The :class:`deap.tools.Logbook` saved by :func:`logbook_records`."""
    logbook = tools.Logbook()
    logbook.header = list(data.get("header") or []) or None
    for record in data["records"]:
        logbook.record(**record)
    return logbook


def restore_halloffame(halloffame, individuals) -> None:
    """Refill ``halloffame`` with ``individuals`` (stored best first, fitness set) through its
    public API only. They are inserted worst first, so members of equal fitness keep their
    stored order."""
    halloffame.clear()
    for ind in reversed(list(individuals)):
        halloffame.insert(ind)


__all__ = ["plain", "isolated_rng", "map_evaluations", "failure_fields", "logbook_records",
           "restore_logbook", "restore_halloffame"]
