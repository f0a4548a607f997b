"""DEAP operators for NLFS loss-graph genomes (Morgan & Hougen 2024, §3.2–3.3).

* :func:`mutGraph` — exactly one mutation per child (op change 70 % / rewire 15 % / arity toggle
  15 %), retried until the child is valid, passes the integrity check and is not a duplicate;
  :func:`neighbourhood` lists the children of one mutation with their probabilities.
* :func:`checkIntegrity` (:mod:`deapnn.operators.graph_integrity`) — the probe-curve test that
  rejects degenerate losses and decides whether a loss must be negated ("flip").
* :func:`isDuplicate`, :class:`PopulationIndex`, :func:`fingerprint` and :func:`samePhenotype`
  (:mod:`deapnn.operators.graph_phenotype`) — the duplicate test against a population.

The integrity and duplicate names are re-exported here, so ``deapnn.operators.graph`` stays the
one import path for every loss-graph operator.
"""
from __future__ import annotations

import math
import random as _random

from deapnn.losses.graph import (LossGraph, N_BINARY, N_SLOTS, N_UNARY, P_HIDDEN_UNARY,
                                 GraphError, allowed_inputs, active_order, check_wiring,
                                 random_node, reached_inputs, Y, YHAT)

from .graph_integrity import IntegrityResult, check_flip_rule, checkIntegrity
from .graph_phenotype import PopulationIndex, fingerprint, isDuplicate, samePhenotype

#: The mutation operators, and the integrity and duplicate names re-exported for one import path.
__all__ = ["mutGraph", "neighbourhood", "REFERENCE_COLUMNS", "checkIntegrity", "IntegrityResult",
           "isDuplicate", "PopulationIndex", "fingerprint", "samePhenotype"]

P_OP_CHANGE, P_REWIRE = 0.70, 0.15          # the rest (0.15) toggles unary <-> binary
P_TOGGLE = 1.0 - P_OP_CHANGE - P_REWIRE
P_SWAP = 0.20                                # share of binary rewires that swap the two inputs
#: Columns of a node's row in the reference's adjacency matrix (the 8 slots and the root's
#: column). A new input is drawn uniformly among the columns the node does not read yet; the
#: node's own column and (for a hidden node) the root's always close a cycle, so those draws
#: are always rejected and have no child here.
REFERENCE_COLUMNS = N_SLOTS + 1


def neighbourhood(nodes, active=None, wiring: str = "reference"):
    """Every child one mutation away from ``nodes``, with the probability one mutation draws
    it: a list of ``(nodes, kind, weight)`` (children that would leave the genome unchanged,
    e.g. swapping equal inputs, are dropped; identical children are merged).

    Morgan & Hougen 2024 §3.2: an active node uniformly, then with p = 0.70 a different op of
    the same arity, p = 0.15 a rewire (binary: 20 % swap the two inputs, else the first or
    the second input, 50/50), p = 0.15 an arity toggle.

    ``wiring="reference"`` (Morgan & Hougen's implementation): a rewire or a unary → binary
    toggle draws the new input uniformly among the :data:`REFERENCE_COLUMNS` the node does not
    read yet (so a binary node's inputs stay distinct); the toggle then puts the old input
    first or second (50/50); binary → unary drops the first or the second input (50/50).  The
    weights of the draws that always close a cycle (see :data:`REFERENCE_COLUMNS`) are left
    out, so they sum to less than 1; trying children in weighted order is then exactly the
    reference's rejection of those draws.  ``wiring="free"`` (deapnn before): a rewire draws
    among all other allowed slots (the other input included), a toggle flips the arity flag
    and reuses the stored second input; weights sum to 1.
    """
    check_wiring(wiring)
    active = active_order(nodes) if active is None else active
    out = {}

    def add(i, col_vals, kind, w):
        child = [list(n) for n in nodes]
        for col, v in col_vals:
            child[i][col] = v
        if child != nodes:
            key = str(child)
            out[key] = (child, kind, out[key][2] + w if key in out else w)

    pa = 1.0 / len(active)
    for i in active:
        u, b, binary, a, c = nodes[i]
        if binary:
            for k in range(N_BINARY):
                if k != b:
                    add(i, [(1, k)], "op", pa * P_OP_CHANGE / (N_BINARY - 1))
            add(i, [(3, c), (4, a)], "swap", pa * P_REWIRE * P_SWAP)
        else:
            for k in range(N_UNARY):
                if k != u:
                    add(i, [(0, k)], "op", pa * P_OP_CHANGE / (N_UNARY - 1))
        if wiring == "free":
            _free_moves(add, i, nodes[i], pa)
        else:
            _reference_moves(add, i, nodes[i], pa)
    return list(out.values())


def _free_moves(add, i, node, pa):
    u, b, binary, a, c = node
    if binary:
        for col, cur in ((3, a), (4, c)):
            slots = [s for s in allowed_inputs(i) if s != cur]
            for s in slots:
                add(i, [(col, s)], "rewire", pa * P_REWIRE * (1 - P_SWAP) * 0.5 / len(slots))
    else:
        slots = [s for s in allowed_inputs(i) if s != a]
        for s in slots:
            add(i, [(3, s)], "rewire", pa * P_REWIRE / len(slots))
    add(i, [(2, 1 - binary)], "toggle", pa * P_TOGGLE)


def _reference_moves(add, i, node, pa):
    u, b, binary, a, c = node
    reads = {a, c} if binary else {a}
    new = [s for s in allowed_inputs(i) if s not in reads]
    z = REFERENCE_COLUMNS - len(reads)
    if binary:
        for s in new:
            add(i, [(3, s)], "rewire", pa * P_REWIRE * (1 - P_SWAP) * 0.5 / z)
            add(i, [(4, s)], "rewire", pa * P_REWIRE * (1 - P_SWAP) * 0.5 / z)
        add(i, [(2, 0)], "toggle", pa * P_TOGGLE * 0.5)                    # drop the second
        add(i, [(2, 0), (3, c), (4, a)], "toggle", pa * P_TOGGLE * 0.5)    # drop the first
    else:
        for s in new:
            add(i, [(3, s)], "rewire", pa * P_REWIRE / z)
            add(i, [(2, 1), (4, s)], "toggle", pa * P_TOGGLE * 0.5 / z)         # (old, new)
            add(i, [(2, 1), (3, s), (4, a)], "toggle", pa * P_TOGGLE * 0.5 / z)  # (new, old)


def _weighted_order(cands, rng):
    """``cands`` in the order of weighted sampling without replacement (Efraimidis–Spirakis):
    the first is drawn with probability ∝ weight, each next one likewise among the rest —
    i.e. repeated re-draws from the parent that never repeat an already-tried child."""
    keys = [-math.log(1.0 - rng.random()) / w for (_, _, w) in cands]
    return [cands[j] for j in sorted(range(len(cands)), key=keys.__getitem__)]


def _drift(nodes, active, rng, wiring: str = "reference"):
    """A copy of ``nodes`` with every *neutral* gene re-drawn: inactive hidden nodes (hidden
    unary with p = 0.7, wired as :meth:`LossGraph.random` wires them), the unused op index of
    active nodes and, with ``wiring="free"``, the unused second input of active unary nodes
    (with the reference wiring a toggle draws a new input, so that gene is never used).  The
    active computation (the phenotype) is unchanged; what changes is what a toggle or a rewire
    to an inactive node brings in."""
    nodes = [list(n) for n in nodes]
    act = set(active)                 # the root is always active
    for i, n in enumerate(nodes):
        ok = allowed_inputs(i)
        if i not in act:
            binary = rng.random() < 1.0 - P_HIDDEN_UNARY
            nodes[i] = random_node(rng, i, binary) if wiring == "reference" else \
                [rng.randrange(N_UNARY), rng.randrange(N_BINARY), int(binary),
                 rng.choice(ok), rng.choice(ok)]
        elif n[2]:
            n[0] = rng.randrange(N_UNARY)
        else:
            n[1] = rng.randrange(N_BINARY)
            if wiring == "free":
                n[4] = rng.choice(ok)
    return nodes


def mutGraph(individual, population=(), max_tries: int = 2500, integrity: bool = True,
             dedupe: bool = True, rng=None, on_failure: str = "keep", drift: bool = True,
             max_drifts: int = 200, wiring: str = "reference", flip_rule: str = "start"):
    """Mutate a :class:`~deapnn.losses.LossGraph` in place (Morgan & Hougen 2024 §3.2).

    Pick an active node; with p = 0.70 change its op to a different op of the same arity, with
    p = 0.15 rewire one input (for binary nodes 20 % of rewires swap the two arguments), with
    p = 0.15 toggle unary ↔ binary. A child counts only when it is valid (acyclic, reaches y and
    ŷ), passes :func:`checkIntegrity` (its ``flip`` is adopted) and is not a duplicate of
    ``population``.

    Retries re-draw the mutation from the parent — node, kind and change — with the
    probabilities above, **without repeating** a child already rejected: the one-mutation
    neighbourhood (:func:`neighbourhood`, ≤ ~200 children) is visited in weighted random order, so
    the first try has exactly the distribution of §3.2 and every node and mutation kind is reached
    before giving up. Children with an already-seen active structure cost no try. Small graphs (one
    or two active nodes) often have *no* acceptable neighbour (e.g. every op change of
    ``max(y, yhat)`` is linear in p, so its fingerprint duplicates the parent's); then, with
    ``drift=True``, the parent's neutral genes (inactive nodes, unused op index and, with
    ``wiring="free"``, the unused second input) are re-drawn — the phenotype is unchanged — and
    the new neighbourhood is visited, so a toggle or a rewire to an inactive node brings in new
    material (neutral drift as in Cartesian GP). Each child still differs from the parent's
    phenotype by one mutation.

    Parameters
    ----------
    individual : LossGraph
        The genome to mutate (changed in place).
    population : list of LossGraph or PopulationIndex, optional
        Members a child must not duplicate, e.g. the live list regularized evolution updates.
    max_tries : int, optional
        Bound on the distinct children examined (§3.2: 2,500, the default).
    integrity : bool, optional
        Require :func:`checkIntegrity` to accept a child (default ``True``).
    dedupe : bool, optional
        Reject children that duplicate ``population`` (default ``True``).
    rng : random.Random, optional
        Source of the draws (default: the ``random`` module).
    on_failure : {"keep", "raise"}, optional
        After ``max_tries`` children and ``max_drifts`` re-draws: ``"keep"`` (default) returns
        the parent unchanged with ``individual.mutation_failed = True``; ``"raise"`` raises
        ``RuntimeError``.
    drift : bool, optional
        Re-draw the neutral genes when a neighbourhood is exhausted (default ``True``).
    max_drifts : int, optional
        Bound on the neutral re-draws (default 200).
    wiring : {"reference", "free"}, optional
        How a rewire and a toggle pick inputs (:func:`neighbourhood`): ``"reference"`` (default)
        as Morgan & Hougen's implementation (a new input the node does not read yet; the toggle
        keeps the old input first or second, or drops either, 50/50), ``"free"`` as deapnn did
        before (the toggle reuses the stored second input).
    flip_rule : {"start", "end"}, optional
        How :func:`checkIntegrity` orients a child whose probe curve has two bends (default
        ``"start"``, the reference's rule; ``"end"`` as deapnn did before).

    Returns
    -------
    tuple
        ``(individual,)`` (DEAP mutation convention). Its fitness values are invalidated;
        ``individual.mutation`` records the kind of change (``None`` on failure),
        ``mutation_tries`` the children examined, ``mutation_drifts`` the neutral re-draws used,
        ``mutation_rejects`` a count of rejections by cause (invalid / integrity / duplicate) and
        ``mutation_failed`` whether no child was found.

    Examples
    --------
    >>> import random
    >>> from deapnn.losses import LossGraph
    >>> from deapnn.operators import mutGraph
    >>> parent = LossGraph.from_expression("-(y * log(yhat))")
    >>> child, = mutGraph(parent.copy(), population=[parent], rng=random.Random(0))
    >>> child.mutation_failed, child.to_expression() != parent.to_expression()
    (False, True)

    On a toolbox for :func:`~deapnn.algorithms.eaRegularizedEvolution`, against the live
    population::

        toolbox.register("mutate", mutGraph, population=pop)

    References
    ----------
    Morgan & Hougen 2024, "Neural loss function evolution for large-scale image classifier
    convolutional neural networks" (arXiv 2403.08793), §3.2 (mutation) and §3.3 (integrity and
    duplicate checks).
    """
    if on_failure not in ("keep", "raise"):
        raise ValueError(f"on_failure must be 'keep' or 'raise', got {on_failure!r}")
    check_wiring(wiring)
    check_flip_rule(flip_rule)
    rng = rng or _random
    parent = [list(n) for n in individual.nodes]
    active = active_order(parent)
    index = None
    if dedupe and population is not None:
        index = population if isinstance(population, PopulationIndex) else \
            PopulationIndex(population)
    rejects = {"invalid": 0, "integrity": 0, "duplicate": 0}
    seen = set()                  # active structures (keys) already judged
    tries, drifts, base = 0, 0, parent
    try:
        seen.add(LossGraph(parent).key())
    except GraphError:
        pass
    while tries < max_tries:
        for nodes, kind, _ in _weighted_order(neighbourhood(base, active, wiring), rng):
            try:
                order = active_order(nodes)
            except GraphError:
                key = None
            else:
                key = LossGraph(nodes).key() if {Y, YHAT} <= reached_inputs(nodes, order) \
                    else None
            if key is None:
                # invalid structures are cheap to recognise; count them but not as tries
                rejects["invalid"] += 1
                continue
            if key in seen:
                continue
            seen.add(key)
            if tries >= max_tries:
                break
            tries += 1
            child = LossGraph(nodes, individual.flip)
            if integrity:
                res = checkIntegrity(child, flip_rule)
                if not res.accept:
                    rejects["integrity"] += 1
                    continue
                child.flip = res.flip
                fp = res.fingerprint
            else:
                fp = fingerprint(child)
            if index is not None and index.contains(fp, child.to_expression()):
                rejects["duplicate"] += 1
                continue
            individual.nodes, individual.flip = child.nodes, child.flip
            individual.mutation, individual.mutation_tries = kind, tries
            individual.mutation_drifts, individual.mutation_rejects = drifts, rejects
            individual.mutation_failed = False
            if hasattr(individual, "fitness"):
                del individual.fitness.values
            return (individual,)
        if not drift or drifts >= max_drifts:
            break
        drifts += 1
        base = _drift(parent, active, rng, wiring)
    if on_failure == "raise":
        raise RuntimeError(f"mutGraph: no valid, integrity-passing, non-duplicate child in "
                           f"{tries} tries and {drifts} neutral re-draws from {individual!r}")
    individual.mutation, individual.mutation_tries = None, tries
    individual.mutation_drifts, individual.mutation_rejects = drifts, rejects
    individual.mutation_failed = True
    return (individual,)
