"""The checkpoint of an NLFS run (:class:`Checkpoint`): one file, ``checkpoint.pt``, with a part
per phase of :func:`deapnn.nlfs.run.run_nlfs` (:data:`PARTS`), so a resume skips the phases
already done. A stored state is checked when it is loaded (:func:`check_state`): a checkpoint
that is not this run's (a list, unknown parts, a part of the wrong shape, a pool of another
size) is refused in one line naming the file (:class:`deapnn.checkpoint.StateError`), before
any work; the checkpoint's binding to the run (:func:`deapnn.checkpoint.config_hash`) is
checked by :meth:`deapnn.rundir.RunDir.load_checkpoint`.
"""
from __future__ import annotations

import numbers

from ..checkpoint import restoring

#: the parts of the checkpoint: the phase last saved and each phase's state (the random pool
#: scored, its best re-scored, the evolution and its mutation counters, the elimination and the
#: final comparison, tuned or untuned)
PARTS = ("phase", "pool", "rescore", "evo", "mutation", "elim", "tuned", "final")


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _list_of(value, kind) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) for v in value)


def _check_pool(pool, name: str, size: int | None = None) -> None:
    keys = {"genomes", "fitness", "info"} | ({"first"} if name == "rescore" else set())
    _require(isinstance(pool, dict) and set(pool) == keys,
             f"its {name} is not a dict of {', '.join(sorted(keys))}")
    _require(_list_of(pool["genomes"], str) and _list_of(pool["fitness"], numbers.Real)
             and _list_of(pool["info"], dict) and _list_of(pool.get("first", []), numbers.Real),
             f"its {name} does not hold lists of genomes, fitness values and infos")
    _require(len(pool["fitness"]) == len(pool["info"]) <= len(pool["genomes"]),
             f"its {name} has more scores than genomes")
    _require(size is None or len(pool["genomes"]) == size,
             f"its pool holds {len(pool['genomes'])} genomes, not the run's {size}")
    from .toolbox import decode
    for genome in pool["genomes"]:
        decode(genome)             # a genome that is not a loss graph: GraphError


def check_state(state, cfg) -> dict:
    """``state`` (a loaded NLFS checkpoint of the run ``cfg``) when every part has the shape
    its phase stores; else ``ValueError`` / ``TypeError`` saying what does not fit (inside
    :func:`~deapnn.checkpoint.restoring`: a :class:`~deapnn.checkpoint.StateError`)."""
    _require(isinstance(state, dict), f"the state is a {type(state).__name__}, not a dict")
    unknown = sorted(str(k) for k in state if k not in PARTS)
    _require(not unknown, f"unknown part(s) {', '.join(unknown)}")
    if state.get("pool") is not None:
        _check_pool(state["pool"], "pool", cfg.pool)
    if state.get("rescore") is not None:
        _check_pool(state["rescore"], "rescore")
    for name in ("evo", "mutation", "elim", "tuned", "final"):
        _require(state.get(name) is None or isinstance(state[name], dict),
                 f"its {name} is not a dict")
    mutation = state.get("mutation") or {}
    _require(all(isinstance(k, str) and isinstance(v, int) for k, v in mutation.items()),
             "its mutation counters are not integers")
    elim = state.get("elim")
    if elim is not None:
        _require(isinstance(elim.get("round"), int) and _list_of(elim.get("current"), str)
                 and _list_of(elim.get("partial"), list) and _list_of(elim.get("history"), dict),
                 "its elimination state is not round, current, partial and history")
    if state.get("tuned") is not None:
        from ..comparison import check_state as check_tuned
        check_tuned(state["tuned"])
    final = state.get("final")
    if final is not None:
        _require(isinstance(final.get("jobs"), list) and _list_of(final.get("results"), dict)
                 and all("test_acc" in r for r in final["results"]),
                 "its final comparison is not jobs and results")
    return state


class Checkpoint:
    """The run's one checkpoint file: each phase's part is kept, so a resume skips the phases
    already done; ``save(phase, **parts)`` rewrites it with the parts given replaced. A stored
    state is checked (:func:`check_state`) when the run's configuration ``cfg`` is given."""

    def __init__(self, rundir, cfg=None):
        self.rundir = rundir
        state = rundir.load_checkpoint() if rundir is not None else None
        if state is not None and cfg is not None:
            with restoring(rundir.file(rundir.CHECKPOINT)):
                check_state(state, cfg)
        self.state = state or {}

    def part(self, name):
        return self.state.get(name)

    def save(self, phase: str, **parts) -> None:
        self.state = {**{k: v for k, v in self.state.items() if k != "phase"}, **parts}
        if self.rundir is not None:
            self.rundir.save_checkpoint({"phase": phase, **self.state})


__all__ = ["PARTS", "Checkpoint", "check_state"]
