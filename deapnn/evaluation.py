"""One evaluation result for every method (failure is data).

Every evaluator of deapnn — the NLFS surrogate, the EvoMAL fitness, a GLS job — and
``deapnn.failsafe.Guarded`` return an :class:`Evaluation`; every generation loop gives it to
an individual with :func:`assign`. A user's own ``toolbox.evaluate`` may keep DEAP's convention
and return a plain fitness tuple (or one number): :func:`as_evaluation` reads both.

Vocabulary, one meaning per name:

* ``error`` — the evaluation itself failed (an exception, an out-of-memory, a timeout). The
  individual gets the worst fitness; the reason is counted in the logbook's ``failed`` column.
* ``info["reason"]`` — the evaluation ran but the method scored the individual worst on purpose
  (rejected by a screening protocol, a diverging training, an aborted pre-screen).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Evaluation:
    """``values``: the fitness tuple; ``info``: what the evaluator reports besides (plain data,
    kept as ``ind.info``); ``error``: why the evaluation failed, or None."""
    values: tuple
    info: dict = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self):
        values = self.values
        if isinstance(values, (int, float)):
            values = (values,)
        object.__setattr__(self, "values",
                           tuple(math.nan if v is None else float(v) for v in values))
        object.__setattr__(self, "info", dict(self.info or {}))

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def fitness(self) -> float:
        """The first fitness value (for every deapnn method the only one)."""
        return self.values[0]

    @classmethod
    def failure(cls, values, error: str, **info) -> Evaluation:
        """The worst ``values`` of a failed evaluation, with its ``error``."""
        return cls(values, info, error)

    def to_dict(self) -> dict:
        """Plain data for checkpoints and JSON files (read back by :meth:`from_dict`)."""
        return {"values": list(self.values), "info": dict(self.info), "error": self.error}

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        """The :class:`Evaluation` that :meth:`to_dict` wrote."""
        return cls(tuple(data["values"]), data.get("info") or {}, data.get("error"))


def as_evaluation(result) -> Evaluation:
    """An :class:`Evaluation` from what ``toolbox.evaluate`` returned: an ``Evaluation``, a
    fitness tuple/list or one number (DEAP's convention)."""
    if isinstance(result, Evaluation):
        return result
    if isinstance(result, (int, float)) or (
            isinstance(result, (tuple, list)) and all(_is_number(v) for v in result)):
        # Evaluation normalises the values to a tuple of floats either way
        return Evaluation(tuple(result) if isinstance(result, (tuple, list)) else (result,))
    raise TypeError("toolbox.evaluate must return a deapnn.evaluation.Evaluation, a fitness "
                    f"tuple or a number, got {type(result).__name__}: {result!r:.200}")


def _is_number(value) -> bool:
    return value is None or isinstance(value, (int, float)) or hasattr(value, "__float__")


def assign(ind, result) -> Evaluation:
    """Give ``ind`` the fitness of ``result`` (see :func:`as_evaluation`) and keep its info as
    ``ind.info`` (with ``"error"`` when the evaluation failed). A missing or non-finite value
    becomes the worst value for its objective (−∞ when maximised, +∞ when minimised), so a NaN
    never wins a selection. Returns the :class:`Evaluation`."""
    evaluation = as_evaluation(result)
    weights = ind.fitness.weights
    if len(evaluation.values) != len(weights):
        raise ValueError(f"evaluation returned {len(evaluation.values)} fitness values for "
                         f"{len(weights)} objectives")
    ind.fitness.values = tuple(
        v if v is not None and math.isfinite(v) else (-math.inf if w > 0 else math.inf)
        for v, w in zip(evaluation.values, weights))
    if evaluation.info or evaluation.error or isinstance(result, Evaluation):
        ind.info = dict(evaluation.info)
        if evaluation.error:
            ind.info["error"] = evaluation.error
    return evaluation


__all__ = ["Evaluation", "as_evaluation", "assign"]
