"""Restart state of :func:`~deapnn.algorithms.regularized.eaRegularizedEvolution`: the
population with its ages, the hall of fame (the history), the logbook and the random states, as
plain data that JSON or ``torch.save`` keeps (Real, Aggarwal, Huang & Le 2019, Algorithm 1: the
state of aging evolution is the population, the ages and the history).

Genomes pass through ``encode`` (default: ``ind.to_json()`` when the class has it, else
``list(ind)``) and come back through ``decode`` (``toolbox.decode``, a ``decode=`` function, or
the population's class: its ``from_json`` or its constructor)."""
from __future__ import annotations

from ..checkpoint import restoring
from ..runtime import rng_state, set_rng_state
from .support import logbook_records, plain, restore_halloffame, restore_logbook

STATE_FORMAT = "deapnn-regularized-2"
#: states written before the logbook was stored as ``logbook_records`` (still read)
OLD_STATE_FORMATS = ("deapnn-regularized-1",)


def default_encode(ind):
    """A genome as plain data: ``ind.to_json()`` when present, else ``list(ind)``."""
    if hasattr(ind, "to_json"):
        return ind.to_json()
    return plain(list(ind))


def make_decode(toolbox, decode, population):
    """The genome decoder of a resumed run: ``decode``, else ``toolbox.decode``, else the
    population's class (``from_json`` when present, else the class itself)."""
    if decode is not None:
        return decode
    if hasattr(toolbox, "decode"):
        return toolbox.decode
    if not population:
        raise ValueError("resuming needs toolbox.decode, a decode= function or a non-empty "
                         "population whose class rebuilds individuals")
    cls = type(population[0])
    return cls.from_json if hasattr(cls, "from_json") else cls


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
    """The restart state of an
    :func:`~deapnn.algorithms.regularized.eaRegularizedEvolution` run after ``cycle`` children.

    This is what the loop gives to its ``checkpoint`` callable; pass it back as ``resume_state``
    to continue the run.

    Parameters
    ----------
    population : list
        The current members (each with ``birth`` and a fitness).
    halloffame : deap.tools.HallOfFame or None
        The hall of fame, stored best first.
    logbook : deap.tools.Logbook
        The run's logbook.
    cycle : int
        Children made so far.
    next_birth : int
        The birth number the next child gets.
    encode : callable, optional
        Genome → plain data (default: ``ind.to_json()`` when present, else ``list(ind)``).

    Returns
    -------
    dict
        Plain data: ``format``, ``cycle``, ``next_birth``, ``population`` and ``halloffame``
        (genome, birth, fitness, info of each member), ``logbook`` (header and records) and
        ``rng`` (python / numpy / torch random states).

    Examples
    --------
    >>> from deap import tools
    >>> from deapnn.algorithms import regularized_state
    >>> state = regularized_state([], None, tools.Logbook(), cycle=0, next_birth=0)
    >>> sorted(state)
    ['cycle', 'format', 'halloffame', 'logbook', 'next_birth', 'population', 'rng']

    References
    ----------
    Real, Aggarwal, Huang & Le 2019 (AAAI), Algorithm 1 (the state is the population, the ages
    and the history).
    """
    encode = encode or default_encode
    return {"format": STATE_FORMAT, "cycle": int(cycle), "next_birth": int(next_birth),
            "population": [_encode_ind(ind, encode) for ind in population],
            "halloffame": [_encode_ind(ind, encode) for ind in (halloffame or [])],
            "logbook": logbook_records(logbook), "rng": rng_state()}


def state_logbook(state: dict) -> list:
    """The logbook records stored in a :func:`regularized_state` (either layout)."""
    book = state["logbook"]
    return list(book["records"]) if isinstance(book, dict) else list(book)


def restore_state(state, population, halloffame, decode):
    """Put the run stored in ``state`` back: population (in place), hall of fame, RNGs;
    return ``(logbook, cycle, next_birth)``. A state of the wrong shape raises
    :class:`~deapnn.checkpoint.StateError`."""
    with restoring():
        if state.get("format") not in (STATE_FORMAT, *OLD_STATE_FORMATS):
            raise ValueError("resume state is not a regularized-evolution state")
        population[:] = [_decode_ind(r, decode) for r in state["population"]]
        if halloffame is not None:
            restore_halloffame(halloffame, [_decode_ind(r, decode) for r in state["halloffame"]])
        book = state["logbook"]
        logbook = restore_logbook(book if isinstance(book, dict) else
                                  {"header": state.get("header"), "records": book})
        set_rng_state(state["rng"])
        return logbook, int(state["cycle"]), int(state["next_birth"])
