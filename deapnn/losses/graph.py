"""NLFS loss genomes: a small DAG over (y, ŷ, 1, −1) compiled to a torch loss.

Morgan & Hougen 2024 ("Neural loss function evolution for large-scale image classifier
convolutional neural networks", arXiv 2403.08793), §3.1: a loss is a computational graph of
4 hidden nodes and a root over the input slots y (one-hot label), ŷ (softmax output) and the
constants 1 and −1.  Every node stores *both* a unary and a binary op index plus an arity flag and
two input slots, so a mutation can toggle the arity without losing information (§3.2).

Slots: 0 = y, 1 = ŷ, 2 = 1, 3 = −1, 4..7 = hidden nodes h0..h3.  The root (``nodes[4]``) reads
any of slots 0..7; hidden node ``hi`` reads any slot except itself.  A genome is **valid** when its
*active* subgraph (what the root reaches) is acyclic and reaches both y and ŷ; inactive nodes may
hold anything, cycles included.

The loss of a batch is ``mean_batch(sum_classes(root(y, ŷ)))``, times −1 when ``flip`` is set
(the integrity check of :mod:`deapnn.operators.graph_integrity` decides ``flip``, Morgan & Hougen
2024 §3.3).  Compilation emits straight-line Python over the active nodes only, cached per
structure, so a compiled loss costs the same tensor ops as the hand-written formula.
"""
from __future__ import annotations

import json
import numbers
import random as _random
from functools import lru_cache

import torch
import torch.nn.functional as F

from . import graph_expr
from .graph_ops import BINARY, N_BINARY, N_UNARY, UNARY
# the slot layout and node-table checks, shared with graph_expr; importable from here too
from .graph_slots import (MONE, N_HIDDEN, N_INPUTS, N_SLOTS, ONE, ROOT, Y, YHAT, GraphError,
                          active_order, check_active)
from .graph_slots import reached_inputs as reached_inputs   # re-exported, unused here

FORMAT = "deapnn-lossgraph-1"
P_HIDDEN_UNARY = 0.7
P_ROOT_BINARY = 0.8


WIRINGS = ("reference", "free")


def check_wiring(wiring: str) -> None:
    """Raise ``ValueError`` unless ``wiring`` is one of :data:`WIRINGS`."""
    if wiring not in WIRINGS:
        raise ValueError(f"wiring must be one of {', '.join(WIRINGS)}, got {wiring!r}")


FIELDS = ("unary", "binary", "is_binary", "in_a", "in_b")


def _node_row(i: int, row) -> list[int]:
    """Node ``i`` as a list of 5 Python ints; a non-integer field (``0.99``, ``True``, ``"1"``)
    raises :class:`GraphError` naming it rather than being truncated."""
    try:
        values = list(row) if not isinstance(row, (str, bytes, dict)) else None
    except TypeError:
        values = None
    if values is None or len(values) != 5:
        raise GraphError(f"node {i} must be [unary, binary, is_binary, in_a, in_b], got {row!r}")
    out = []
    for name, v in zip(FIELDS, values):
        if type(v) is not int:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise GraphError(f"node {i}: {name} must be an integer, got {v!r} "
                                 f"({type(v).__name__})")
            v = int(v)
        out.append(v)
    return out


def allowed_inputs(node: int) -> list[int]:
    """Slots node ``node`` may read: the four inputs and every hidden node but itself."""
    return [s for s in range(N_SLOTS) if s != N_INPUTS + node]


def initial_inputs(node: int) -> list[int]:
    """Slots node ``node`` may read in a random genome of the reference wiring (Morgan &
    Hougen's implementation): the root reads hidden nodes only, a hidden node any slot but
    itself."""
    if node == ROOT:
        return list(range(N_INPUTS, N_SLOTS))
    return allowed_inputs(node)


def random_node(rng, node: int, binary: bool) -> list[int]:
    """A random ``[unary, binary, is_binary, in_a, in_b]`` for node ``node`` wired as the
    reference does: inputs from :func:`initial_inputs`, the two distinct."""
    ok = initial_inputs(node)
    a = rng.choice(ok)
    return [rng.randrange(N_UNARY), rng.randrange(N_BINARY), int(binary), a,
            rng.choice([s for s in ok if s != a])]


class LossGraph:
    """A loss genome (Morgan & Hougen 2024 §3.1).

    ``nodes`` is a list of 5 lists ``[unary_op, binary_op, is_binary, in_a, in_b]`` (hidden
    h0..h3, then the root); ``flip`` negates the loss.  Unary nodes read ``in_a`` only.
    Works as a DEAP base class: ``creator.create("Ind", LossGraph, fitness=...)``.
    """

    def __init__(self, nodes=None, flip: bool = False):
        if nodes is None:
            nodes = [[0, 0, 0, Y, YHAT] for _ in range(N_HIDDEN + 1)]
        if isinstance(nodes, (str, bytes, dict)) or not hasattr(nodes, "__iter__"):
            raise GraphError(f"a loss graph's nodes must be a list of {N_HIDDEN + 1} nodes, "
                             f"got {type(nodes).__name__}")
        self.nodes = [_node_row(i, n) for i, n in enumerate(nodes)]
        if isinstance(flip, str) or flip not in (True, False):
            raise GraphError(f"flip must be a boolean, got {flip!r}")
        self.flip = bool(flip)
        self.check_format()

    # --- structure -------------------------------------------------------------------------
    def check_format(self) -> None:
        """Raise :class:`GraphError` on a malformed node table (indices out of range)."""
        if len(self.nodes) != N_HIDDEN + 1:
            raise GraphError(f"a loss graph has {N_HIDDEN + 1} nodes, got {len(self.nodes)}")
        for i, n in enumerate(self.nodes):
            if len(n) != 5:
                raise GraphError(f"node {i} must be [unary, binary, is_binary, in_a, in_b], "
                                 f"got {n}")
            u, b, binary, a, c = n
            if not 0 <= u < N_UNARY:
                raise GraphError(f"node {i}: unary op {u} out of range 0..{N_UNARY - 1}")
            if not 0 <= b < N_BINARY:
                raise GraphError(f"node {i}: binary op {b} out of range 0..{N_BINARY - 1}")
            if binary not in (0, 1):
                raise GraphError(f"node {i}: arity flag must be 0 or 1, got {binary}")
            ok = allowed_inputs(i)
            for s in (a, c):
                if s not in ok:
                    raise GraphError(f"node {i}: input slot {s} not allowed (valid: {ok})")

    def active_nodes(self) -> list[int]:
        """Active node indices in evaluation order, root last (raises :class:`GraphError` on a
        cycle)."""
        return active_order(self.nodes)

    def validate(self) -> None:
        """Raise :class:`GraphError` unless the active subgraph is acyclic and reaches y and ŷ."""
        self.check_format()
        check_active(self.nodes)

    def is_valid(self) -> bool:
        """Whether :meth:`validate` accepts the genome."""
        try:
            self.validate()
        except GraphError:
            return False
        return True

    def key(self) -> tuple:
        """Hashable description of the active computation (flip excluded)."""
        order = self.active_nodes()
        out = []
        for i in order:
            u, b, binary, a, c = self.nodes[i]
            out.append((i, 1, b, a, c) if binary else (i, 0, u, a, -1))
        return tuple(out)

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def random(cls, rng=None, p_hidden_unary: float = P_HIDDEN_UNARY,
               p_root_binary: float = P_ROOT_BINARY, max_tries: int = 10_000,
               wiring: str = "reference", **kwargs):
        """A random *valid* genome (hidden nodes unary with p=0.7, root binary with p=0.8).

        ``wiring="reference"`` (Morgan & Hougen's implementation of §3.1): a hidden node reads
        any slot but itself, the root reads hidden nodes only, and a binary node's two inputs
        are distinct (a unary node's unused second input is drawn distinct too).
        ``wiring="free"`` (deapnn before it followed the reference): every input, the root's
        included, is any allowed slot, and the two inputs may coincide.

        ``rng`` is a ``random.Random``-like object (default: the ``random`` module).
        Extra keyword arguments go to the constructor (e.g. for DEAP creator classes).
        """
        check_wiring(wiring)
        rng = rng or _random
        for _ in range(max_tries):
            nodes = []
            for i in range(N_HIDDEN + 1):
                binary = rng.random() < (p_root_binary if i == ROOT else 1.0 - p_hidden_unary)
                if wiring == "free":
                    ok = allowed_inputs(i)
                    nodes.append([rng.randrange(N_UNARY), rng.randrange(N_BINARY), int(binary),
                                  rng.choice(ok), rng.choice(ok)])
                else:
                    nodes.append(random_node(rng, i, binary))
            g = cls(nodes, **kwargs)
            if g.is_valid():
                return g
        raise RuntimeError(f"no valid random loss graph in {max_tries} tries")

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The genome as plain data (what :meth:`to_json` writes)."""
        return {"format": FORMAT, "nodes": [list(n) for n in self.nodes], "flip": self.flip}

    def to_json(self) -> str:
        """Compact JSON text; :meth:`from_json` reads it back exactly."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data, validate: bool = True, **kwargs):
        """Genome from :meth:`to_json` text or its dict; ``validate`` rejects cycles / missing
        inputs."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise GraphError(f"not a loss-graph JSON document: {exc}") from None
        if not isinstance(data, dict) or "nodes" not in data:
            raise GraphError("a loss-graph JSON document needs a 'nodes' list")
        if data.get("format", FORMAT) != FORMAT:
            raise GraphError(f"unknown loss-graph format {data.get('format')!r}; expected {FORMAT}")
        flip = data.get("flip", False)
        if not isinstance(flip, bool):
            raise GraphError(f"a loss-graph document's flip must be true or false, got {flip!r}")
        g = cls(data["nodes"], flip=flip, **kwargs)
        if validate:
            g.validate()
        return g

    def copy(self) -> LossGraph:
        """An independent copy of the genome."""
        return LossGraph(self.nodes, self.flip)

    def __eq__(self, other):
        if not isinstance(other, LossGraph):
            return NotImplemented
        return self.nodes == other.nodes and self.flip == other.flip

    __hash__ = None

    def __repr__(self):
        try:
            expr = self.to_expression()
        except GraphError as exc:
            expr = f"<invalid: {exc}>"
        return f"LossGraph({expr!r}{', flip' if self.flip else ''})"

    # --- compilation -----------------------------------------------------------------------
    def compile(self):
        """The loss ``f(logits, targets) -> scalar`` (targets: int64 class indices, or an
        ``(N, C)`` float target distribution used as y)."""
        self.validate()
        return compile_key(self.key(), self.flip)[1]

    def raw_fn(self):
        """The element-wise root ``f(y, ŷ) -> (N, C)`` without flip (what the integrity probe
        sees)."""
        self.validate()
        return compile_key(self.key(), False)[0]

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of ``logits`` against ``targets``: ``self.compile()(logits, targets)``."""
        return self.compile()(logits, targets)

    def source(self) -> str:
        """The generated Python source of the compiled loss (for inspection)."""
        self.validate()
        return _source(self.key(), self.flip)

    # --- formulas (graph_expr) -------------------------------------------------------------
    def to_expression(self, flip: bool = True) -> str:
        """Readable formula over ``y`` and ``yhat`` with the op names of ``deapnn.losses.graph_ops``
        (``flip`` wraps a flipped genome in ``-(...)``)."""
        return graph_expr.to_expression(self, flip=flip)

    def to_sympy(self, eps=0, flip: bool = True):
        """Per-element term as a sympy expression in ``y``, ``yhat``; ``eps=0`` gives the
        idealised formula, ``eps=1e-7`` (or a Symbol) the exact protected one."""
        return graph_expr.to_sympy(self, eps=eps, flip=flip)

    def to_latex(self, eps=0, simplify: bool = False) -> str:
        """LaTeX of the loss: ``\\frac{1}{N}\\sum_{n}\\sum_{c}`` of the per-element term."""
        return graph_expr.to_latex(self, eps=eps, simplify=simplify)

    @classmethod
    def from_expression(cls, text: str, **kwargs):
        """Parse a formula written with the op names into a genome (see
        ``deapnn.losses.graph_expr``)."""
        d = graph_expr.from_expression(text)
        return cls(d["nodes"], flip=d["flip"], **kwargs)


# --- code generation --------------------------------------------------------------------------
def _ref(slot: int) -> str:
    return ("y", "yhat", "one", "mone")[slot] if slot < N_INPUTS else f"h{slot - N_INPUTS}"


def _body(key) -> tuple[list[str], str]:
    lines, uses_const = [], set()
    for i, binary, op, a, c in key:
        out = "r" if i == ROOT else f"h{i}"
        if binary:
            lines.append(f"    {out} = B{op}({_ref(a)}, {_ref(c)})")
            uses_const.update(s for s in (a, c) if s in (ONE, MONE))
        else:
            lines.append(f"    {out} = U{op}({_ref(a)})")
            uses_const.update(s for s in (a,) if s in (ONE, MONE))
    head = []
    if uses_const:
        head.append("    one = yhat.new_ones(())")
        if MONE in uses_const:
            head.append("    mone = -one")
    return head + lines, "r"


@lru_cache(maxsize=4096)
def _source(key, flip: bool) -> str:
    body, r = _body(key)
    src = ["def raw(y, yhat):", *body, f"    return {r}", "",
           "def loss(logits, targets):",
           "    yhat = softmax(logits, 1)",
           "    if targets.dtype.is_floating_point:",
           "        y = targets.to(yhat.dtype)",
           "    else:",
           "        y = one_hot(targets, logits.shape[1]).to(yhat.dtype)",
           *body,
           f"    return {'-' if flip else ''}{r}.sum(1).mean()"]
    return "\n".join(src) + "\n"


@lru_cache(maxsize=4096)
def compile_key(key, flip: bool):
    """``(raw, loss)`` compiled from an active-structure ``key`` (:meth:`LossGraph.key`):
    ``raw(y, yhat)`` the element-wise root without flip, ``loss(logits, targets)`` the batch loss
    (negated when ``flip``). Cached per structure."""
    namespace = {"softmax": torch.softmax, "one_hot": F.one_hot}
    namespace.update({f"U{i}": fn for i, (_, fn, _) in enumerate(UNARY)})
    namespace.update({f"B{i}": fn for i, (_, fn, _) in enumerate(BINARY)})
    code = compile(_source(key, flip), f"<lossgraph {key}>", "exec")
    exec(code, namespace)
    return namespace["raw"], namespace["loss"]

