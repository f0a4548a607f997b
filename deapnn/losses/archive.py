"""Archive of evaluated loss trees (Raymond et al. 2023, TPAMI, arXiv 2209.08907, §4.6 "Filters").

The reference caches fitness by the exact expression string (``ea.py``), and an evaluation's
result is determined by the exact tree: the local search gives every edge of *that* tree its own
weight, so two trees that compute the same function before the local search (``add(y, fx)`` and
``add(fx, y)``, ``mul(1, fx)`` and ``fx``) can learn different losses and score differently.
``by="tree"`` (the default) keys by the tree string, so the archive returns exactly what
re-evaluating the tree would (with the common fitness seed). ``by="fingerprint"`` keys by an
*output fingerprint* — the tree evaluated in float64 on a fixed, seeded set of probe inputs from
the task's domain (classification: one-hot y and softmax fx; regression: standard-normal y and
fx), rounded to ``digits`` significant digits and hashed — so algebraically equal trees share one
evaluation (fewer evaluations; an equivalent tree inherits another's fitness). Either way rejected
and failed candidates are stored like any other and never re-evaluated (the reference re-trains
them). :func:`to_sympy` gives a readable canonical form for reports.

Everything stored is plain data (str/float/int/bool/lists), so :meth:`LossArchive.state` goes
straight into a checkpoint. A stored record is an evaluation's ``info`` plus its ``fitness`` (and
``error`` when the evaluation failed): ``record_of`` / ``evaluation_of`` convert.
"""
from __future__ import annotations

import hashlib

import torch
from deap import gp

from deapnn.evaluation import Evaluation
from deapnn.losses.tree import as_tree, default_pset, loss_inputs


def record_of(tree, evaluation: Evaluation) -> dict:
    """The archive record of ``evaluation`` of ``tree``: its info (``tree`` set to the tree
    evaluated unless the info names it), ``fitness`` and, for a failed evaluation, ``error``."""
    record = {"tree": str(tree), **evaluation.info, "fitness": evaluation.fitness}
    if evaluation.failed:
        record["error"] = evaluation.error
    return record


def evaluation_of(record: dict) -> Evaluation:
    """The :class:`~deapnn.evaluation.Evaluation` a stored record stands for."""
    info = {k: v for k, v in record.items() if k not in ("fitness", "error")}
    return Evaluation((float(record["fitness"]),), info, record.get("error"))


#: what an archive keys its records by: "tree" — the exact tree string (the reference's; the
#: key determines the result); "fingerprint" — the tree's outputs on probe inputs (equivalent
#: trees share one evaluation)
ARCHIVE_KEYS = ("tree", "fingerprint")


class LossArchive:
    """Fitness cache keyed by :meth:`key`: the tree string (``by="tree"``) or an output
    fingerprint on probe inputs (``by="fingerprint"``).

    ``record`` values are dicts of plain data (e.g. ``{"fitness": float, "reason": str|None,
    "weights": [...], "expression": str, "tree": str}``, see ``record_of``).

    Bookkeeping, one definition: every :meth:`get` is a lookup, counted in ``hits`` when the
    archive answers it and in ``misses`` when it does not (the caller then evaluates the tree and
    stores the record with :meth:`add`). ``misses`` is therefore the number of evaluations made.
    """

    def __init__(self, task: str = "classification", num_classes: int = 3, n_probe: int = 64,
                 digits: int = 6, seed: int = 0, pset=None, by: str = "tree"):
        if by not in ARCHIVE_KEYS:
            raise ValueError(f"unknown archive key {by!r}; valid: {', '.join(ARCHIVE_KEYS)}")
        self.by = by
        self.task, self.num_classes, self.digits = task, int(num_classes), int(digits)
        self.n_probe, self.seed = int(n_probe), int(seed)
        self.pset = pset or default_pset()
        self.entries: dict[str, dict] = {}
        self.hits = self.misses = 0
        gen = torch.Generator().manual_seed(seed)
        if task == "classification":
            out = torch.randn(n_probe, max(num_classes, 1), generator=gen, dtype=torch.float64) * 2
            target = torch.randint(0, max(num_classes, 2) if num_classes > 1 else 2, (n_probe,),
                                   generator=gen)
        elif task == "regression":
            out = torch.randn(n_probe, 1, generator=gen, dtype=torch.float64) * 1.5
            target = torch.randn(n_probe, 1, generator=gen, dtype=torch.float64)
        else:
            raise ValueError(f"unknown task {task!r}; valid: classification, regression")
        self._y, self._fx = loss_inputs(out, target, task)
        self._fingerprints: dict[str, str] = {}   # tree string -> key (memo)

    def key(self, tree) -> str:
        """The key of ``tree`` (a PrimitiveTree or its string): the tree string itself, or its
        output fingerprint (``by="fingerprint"``)."""
        text = tree if isinstance(tree, str) else str(tree)
        if self.by == "tree":
            return text
        found = self._fingerprints.get(text)
        if found is None:
            fn = gp.compile(str(as_tree(tree, self.pset)), self.pset)
            with torch.no_grad():
                value = fn(self._y, self._fx)
                value = torch.broadcast_to(torch.as_tensor(value, dtype=torch.float64),
                                           self._fx.shape)
            digits = self.digits
            cells = ",".join(f"{float(v) + 0.0:.{digits}g}" for v in value.reshape(-1))
            found = hashlib.sha1(cells.encode()).hexdigest()
            self._fingerprints[text] = found
        return found

    def get(self, tree) -> dict | None:
        """The stored record for ``tree`` or an equivalent one, or None; counts a hit or a
        miss (see the class docstring)."""
        record = self.entries.get(self.key(tree))
        if record is None:
            self.misses += 1
        else:
            self.hits += 1
        return record

    def add(self, tree, record: dict) -> dict:
        """Store ``record`` (plain data, e.g. from ``record_of``) for ``tree``; the first
        writer wins. Returns the stored record."""
        return self.entries.setdefault(self.key(tree), dict(record))

    def __contains__(self, tree) -> bool:
        return self.key(tree) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def rejected(self) -> int:
        """Number of stored candidates whose fitness is not finite (rejected or failed)."""
        return sum(1 for r in self.entries.values() if not r.get("fitness", 0) < float("inf"))

    def state(self) -> dict:
        """Checkpoint-safe snapshot (plain data only)."""
        return {"task": self.task, "num_classes": self.num_classes, "digits": self.digits,
                "n_probe": self.n_probe, "seed": self.seed, "by": self.by,
                "entries": dict(self.entries),
                "hits": self.hits, "misses": self.misses}

    @classmethod
    def from_state(cls, state: dict, pset=None) -> LossArchive:
        """The archive that :meth:`state` saved (trees parsed with ``pset``; a state saved
        before the archive had a ``by`` was keyed by fingerprint)."""
        archive = cls(state["task"], state["num_classes"], state["n_probe"], state["digits"],
                      state["seed"], pset, state.get("by", "fingerprint"))
        return archive.load_state(state)

    def load_state(self, state: dict) -> LossArchive:
        """Restore a :meth:`state` snapshot in place (its probe settings must match this one's)."""
        mine = (self.task, self.num_classes, self.n_probe, self.digits, self.seed, self.by)
        theirs = (state["task"], state["num_classes"], state["n_probe"], state["digits"],
                  state["seed"], state.get("by", "fingerprint"))
        if mine != theirs:
            raise ValueError(f"archive state was built with {theirs}, this archive with {mine}")
        self.entries = dict(state["entries"])
        self.hits, self.misses = state["hits"], state["misses"]
        return self


def to_sympy(tree, pset=None):
    """A sympy expression for ``tree`` (symbols ``y``, ``f(x)``), for reports.

    The protected log/sqrt are written as log|x| / sqrt|x| (the 1e-7 guard is omitted) and the
    analytic quotient as a/sqrt(1+b²); sympy's automatic canonicalisation orders commutative
    arguments, so ``add(y, fx)`` and ``add(fx, y)`` print alike.
    """
    import sympy as sp
    y, fx = sp.Symbol("y"), sp.Symbol("f(x)")
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / sp.sqrt(1 + b ** 2), "min": sp.Min, "max": sp.Max,
           "sign": sp.sign, "square": lambda a: a ** 2, "abs": sp.Abs,
           "log": lambda a: sp.log(sp.Abs(a)), "sqrt": lambda a: sp.sqrt(sp.Abs(a)),
           "tanh": sp.tanh}
    leaves = {"y": y, "fx": fx, "1": sp.Integer(1), "-1": sp.Integer(-1)}
    tree = as_tree(tree, pset or default_pset())
    stack: list[tuple[object, list]] = []
    for node in tree:
        stack.append((node, []))
        while len(stack[-1][1]) == stack[-1][0].arity:
            prim, args = stack.pop()
            value = ops[prim.name](*args) if prim.arity else leaves[prim.value]
            if not stack:
                return value
            stack[-1][1].append(value)
    raise ValueError("empty tree")
