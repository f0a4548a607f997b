"""The slot layout of an NLFS loss genome and the structural checks on its node table.

Morgan & Hougen 2024, §3.1: slots 0..3 are the inputs y (one-hot label), ŷ (softmax output) and
the constants 1 and −1, slots 4..7 the hidden nodes h0..h3; the root (``nodes[ROOT]``) is never
read.  A node table is a list of ``[unary, binary, is_binary, in_a, in_b]`` rows, hidden nodes
first, the root last.

Both :mod:`deapnn.losses.graph` (the genome) and :mod:`deapnn.losses.graph_expr` (formulas to
and from genomes) need the layout and the "acyclic, reaches y and ŷ" check; they live here, on
plain node tables, so ``graph_expr`` never imports ``graph`` (which imports ``graph_expr`` for its
formula methods): no import circle between the two.
"""
from __future__ import annotations

Y, YHAT, ONE, MONE = 0, 1, 2, 3
N_INPUTS = 4
N_HIDDEN = 4
ROOT = N_HIDDEN                     # index of the root in ``nodes``
N_SLOTS = N_INPUTS + N_HIDDEN       # slots a node may read (the root is never read)
SLOT_NAMES = ["y", "yhat", "1", "-1"] + [f"h{i}" for i in range(N_HIDDEN)]


class GraphError(ValueError):
    """A genome that breaks the grammar (bad index, cycle, missing y or ŷ)."""


def active_order(nodes) -> list[int]:
    """Active node indices of a node table ``nodes`` in evaluation order (inputs first, root
    last); raises :class:`GraphError` on a cycle."""
    order, state = [], {}

    def visit(i):
        st = state.get(i)
        if st == 1:
            raise GraphError(f"cycle through node h{i}" if i < ROOT else "cycle through the root")
        if st == 2:
            return
        state[i] = 1
        u, b, binary, a, c = nodes[i]
        for s in ((a, c) if binary else (a,)):
            if s >= N_INPUTS:
                visit(s - N_INPUTS)
        state[i] = 2
        order.append(i)

    visit(ROOT)
    return order


def reached_inputs(nodes, order) -> set:
    """The input slots (y, ŷ, 1, −1) read by the nodes ``order`` of the node table ``nodes``."""
    seen = set()
    for i in order:
        u, b, binary, a, c = nodes[i]
        for s in ((a, c) if binary else (a,)):
            if s < N_INPUTS:
                seen.add(s)
    return seen


def check_active(nodes) -> None:
    """Raise :class:`GraphError` unless the active subgraph of the node table ``nodes`` (what the
    root reaches) is acyclic and reads both y and ŷ."""
    missing = {Y, YHAT} - reached_inputs(nodes, active_order(nodes))
    if missing:
        names = " and ".join(SLOT_NAMES[s] for s in sorted(missing))
        raise GraphError(f"the active graph does not reach {names}")
