"""DEAP operators for NLFS loss-graph genomes (Morgan & Hougen 2024, §3.2–3.3).

* :func:`checkIntegrity` — the probe-curve test that rejects degenerate losses and decides
  whether a loss must be negated ("flip"), returning the phenotype fingerprint.
* :func:`isDuplicate` / :class:`PopulationIndex` — fingerprint (L2 ≤ 0.01) or identical-expression
  duplicate test against a population.
* :func:`samePhenotype` — the same relation between two genomes (hall-of-fame de-duplication).
* :func:`mutGraph` — exactly one mutation per child (op change 70 % / rewire 15 % / arity toggle
  15 %), retried until the child is valid, passes the integrity check and is not a duplicate;
  :func:`neighbourhood` lists the children of one mutation with their probabilities.
"""
from __future__ import annotations

import math
import random as _random
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from deapnn.losses.graph import (LossGraph, N_BINARY, N_SLOTS, N_UNARY, GraphError,
                                 allowed_inputs, active_order, check_wiring, random_node,
                                 reached_inputs, Y, YHAT)

PROBE_ROWS = 1000
PROBE_LOW, PROBE_HIGH = 1e-7, 1.0 - 1e-7
CENTRE = (0.49, 0.51)
MAX_FLAT = 10
MAX_SIGN_CHANGES = 2
FLAT_RTOL, FLAT_ATOL = 1e-9, 1e-12
DUPLICATE_L2 = 0.01

P_OP_CHANGE, P_REWIRE = 0.70, 0.15          # the rest (0.15) toggles unary <-> binary
P_TOGGLE = 1.0 - P_OP_CHANGE - P_REWIRE
P_SWAP = 0.20                                # share of binary rewires that swap the two inputs
#: Columns of a node's row in the reference's adjacency matrix (the 8 slots and the root's
#: column). A new input is drawn uniformly among the columns the node does not read yet; the
#: node's own column and (for a hidden node) the root's always close a cycle, so those draws
#: are always rejected and have no child here.
REFERENCE_COLUMNS = N_SLOTS + 1


class IntegrityResult(NamedTuple):
    """Outcome of :func:`checkIntegrity` (a named tuple).

    Parameters
    ----------
    accept : bool
        Whether the loss passes the integrity check.
    flip : bool
        Whether the loss must be negated so that it grows as the prediction gets worse.
    fingerprint : numpy.ndarray or None
        The min–max-normalised probe curve *after* the flip (float32, 1,000 values), or ``None``
        when the curve is not finite or is constant.
    reason : str
        Why the loss was rejected, or the curve's shape when accepted (``"monotone"``, ``"U"``,
        ``"inverted U, flipped"`` ...).

    Examples
    --------
    >>> from operators import IntegrityResult
    >>> IntegrityResult(False, False, None, "flat (constant) curve").accept
    False

    References
    ----------
    Morgan & Hougen 2024, "Neural loss function evolution for large-scale image classifier
    convolutional neural networks" (arXiv 2403.08793), §3.3.
    """
    accept: bool
    flip: bool
    fingerprint: np.ndarray | None
    reason: str


@lru_cache(maxsize=2)
def probe(dtype=torch.float64):
    """The probe batch ``(y, ŷ, p)``: ŷ = [p, 1−p], y = [0, 1], p from 1e-7 to 1−1e-7."""
    p = torch.linspace(PROBE_LOW, PROBE_HIGH, PROBE_ROWS, dtype=dtype)
    yhat = torch.stack([p, 1.0 - p], 1)
    y = torch.zeros_like(yhat)
    y[:, 1] = 1.0
    return y, yhat, p.numpy()


def probe_curve(genome_or_fn) -> np.ndarray:
    """The raw (un-flipped) loss of every probe row: ``sum_classes root(y, ŷ)``, float64."""
    y, yhat, _ = probe()
    fn = genome_or_fn.raw_fn() if isinstance(genome_or_fn, LossGraph) else genome_or_fn
    with torch.no_grad():
        out = torch.as_tensor(fn(y, yhat), dtype=torch.float64)
    if out.dim() == 2:
        out = out.sum(1)
    return out.expand(PROBE_ROWS).numpy().astype(np.float64, copy=True)


def analyse_curve(curve: np.ndarray) -> IntegrityResult:
    """Apply the integrity rules (Morgan & Hougen 2024 §3.3) to a probe curve (see :func:`checkIntegrity`)."""
    curve = np.asarray(curve, dtype=np.float64)
    if not np.all(np.isfinite(curve)):
        return IntegrityResult(False, False, None, "non-finite values on the probe")
    _, _, p = probe()
    d = np.diff(curve)
    scale = np.maximum(np.abs(curve[:-1]), np.abs(curve[1:]))
    flat = np.abs(d) <= FLAT_ATOL + FLAT_RTOL * scale
    n_flat = int(flat.sum())
    if n_flat == len(d):
        return IntegrityResult(False, False, None, "flat (constant) curve")
    lo, hi = CENTRE
    for which, idx in (("minimum", int(np.argmin(curve))), ("maximum", int(np.argmax(curve)))):
        if lo <= p[idx] <= hi:
            return IntegrityResult(False, False, None, f"{which} at p={p[idx]:.3f} (≈0.5)")
    if n_flat > MAX_FLAT:
        return IntegrityResult(False, False, None, f"{n_flat} flat steps (> {MAX_FLAT})")
    signs = np.sign(d[~flat])
    changes = int(np.count_nonzero(signs[1:] != signs[:-1]))
    if changes > MAX_SIGN_CHANGES:
        return IntegrityResult(False, False, None,
                               f"slope changes sign {changes} times (> {MAX_SIGN_CHANGES})")
    # increasing -> keep; decreasing -> flip; U (down then up) -> keep; inverted U -> flip:
    # i.e. flip exactly when the curve ends going down, so the loss grows as p (wrong class) -> 1.
    flip = bool(signs[-1] < 0)
    shape = {0: "monotone", 1: "U" if signs[0] < 0 else "inverted U"}.get(changes, "two-bend")
    eff = -curve if flip else curve
    span = eff.max() - eff.min()
    fp = ((eff - eff.min()) / span).astype(np.float32)
    return IntegrityResult(True, flip, fp, f"{shape}{', flipped' if flip else ''}")


@lru_cache(maxsize=4096)
def _integrity_cached(key) -> IntegrityResult:
    from deapnn.losses.graph import compile_key
    try:
        return analyse_curve(probe_curve(compile_key(key, False)[0]))
    except (RuntimeError, ValueError) as exc:      # e.g. an op rejecting float64 input
        return IntegrityResult(False, False, None, f"probe failed: {exc}")


def checkIntegrity(genome_or_fn) -> IntegrityResult:
    """Integrity check of a loss (Morgan & Hougen 2024 §3.3).

    The raw loss is evaluated on a 1,000-row two-class probe ŷ = [p, 1−p], y = [0, 1] with
    p from 1e-7 to 1−1e-7 (float64; the loss of a row is the sum over both classes). Rejected:
    non-finite values; argmin or argmax at p ∈ [0.49, 0.51]; a flat curve or more than 10 flat
    steps (``|Δ| ≤ 1e-12 + 1e-9·|value|``); more than 2 slope sign changes. Accepted with
    ``flip`` when the curve ends decreasing (monotone decreasing, inverted U), without when it
    ends increasing (monotone increasing, U).

    Parameters
    ----------
    genome_or_fn : LossGraph or callable
        A :class:`~deapnn.losses.LossGraph` (results cached per active structure) or a callable
        ``f(y, ŷ)`` returning ``(N, 2)`` element-wise or ``(N,)`` per-row losses.

    Returns
    -------
    IntegrityResult
        ``(accept, flip, fingerprint, reason)``; a genome that is invalid or a probe that raises
        gives a rejection with the reason, never an exception.

    Examples
    --------
    >>> from deapnn.losses import LossGraph
    >>> from operators import checkIntegrity
    >>> checkIntegrity(LossGraph.from_expression("-(y * log(yhat))")).accept
    True
    >>> checkIntegrity(lambda y, yhat: (y - yhat) ** 2).reason
    'monotone'

    References
    ----------
    Morgan & Hougen 2024, "Neural loss function evolution for large-scale image classifier
    convolutional neural networks" (arXiv 2403.08793), §3.3 (integrity check).
    """
    if isinstance(genome_or_fn, LossGraph):
        try:
            key = genome_or_fn.key()
        except GraphError as exc:
            return IntegrityResult(False, False, None, f"invalid genome: {exc}")
        return _integrity_cached(key)
    try:
        curve = probe_curve(genome_or_fn)
    except (RuntimeError, ValueError, TypeError) as exc:
        return IntegrityResult(False, False, None, f"probe failed: {exc}")
    return analyse_curve(curve)


def fingerprint(genome: LossGraph) -> np.ndarray | None:
    """The effective (flip-aware) fingerprint of a genome as it stands.

    Parameters
    ----------
    genome : LossGraph
        A loss-graph genome; its own ``flip`` is honoured (the curve is mirrored when it differs
        from the flip :func:`checkIntegrity` would choose).

    Returns
    -------
    numpy.ndarray or None
        The normalised probe curve (1,000 float32 values), or ``None`` when the curve is not
        finite or is constant.

    Examples
    --------
    >>> from deapnn.losses import LossGraph
    >>> from operators import fingerprint
    >>> fingerprint(LossGraph.from_expression("-(y * log(yhat))")).shape
    (1000,)

    References
    ----------
    Morgan & Hougen 2024 (arXiv 2403.08793), §3.3 (duplicates are judged on the probe curve).
    """
    res = checkIntegrity(genome)
    if res.fingerprint is None:
        return None
    return 1.0 - res.fingerprint if genome.flip != res.flip else res.fingerprint


class PopulationIndex:
    """Fingerprints and expression strings of a population, built once for many duplicate tests.

    Pass it as ``population`` to :func:`isDuplicate` or :func:`mutGraph` instead of a list when
    many genomes are tested against the same population.

    Parameters
    ----------
    population : iterable of LossGraph, optional
        The members; invalid genomes are skipped.
    threshold : float, optional
        L2 distance between fingerprints at or below which two losses are duplicates (default
        0.01).

    Examples
    --------
    >>> from deapnn.losses import LossGraph
    >>> from operators import PopulationIndex, fingerprint
    >>> g = LossGraph.from_expression("-(y * log(yhat))")
    >>> index = PopulationIndex([g])
    >>> index.contains(fingerprint(g), g.to_expression())
    True

    References
    ----------
    Morgan & Hougen 2024 (arXiv 2403.08793), §3.3 (duplicate removal).
    """

    def __init__(self, population=(), threshold: float = DUPLICATE_L2):
        self.threshold = threshold
        fps, self.expressions = [], set()
        for ind in population:
            try:
                self.expressions.add(ind.to_expression())
            except GraphError:
                continue
            fp = fingerprint(ind)
            if fp is not None:
                fps.append(fp)
        self.matrix = np.stack(fps) if fps else np.zeros((0, PROBE_ROWS), np.float32)

    def contains(self, fp: np.ndarray | None, expression: str) -> bool:
        """Whether a loss with fingerprint ``fp`` (or ``None``) and ``expression`` duplicates a
        member: the same expression string, or a fingerprint within the threshold of one."""
        if expression in self.expressions:
            return True
        if fp is None or not len(self.matrix):
            return False
        return bool(np.any(np.linalg.norm(self.matrix - fp, axis=1) <= self.threshold))

    def add(self, fp, expression: str) -> None:
        """Add a member by its fingerprint (or ``None``) and expression string."""
        self.expressions.add(expression)
        if fp is not None:
            self.matrix = np.vstack([self.matrix, fp[None]])


def isDuplicate(genome: LossGraph, population, threshold: float = DUPLICATE_L2) -> bool:
    """Whether ``genome`` duplicates a member of ``population`` (Morgan & Hougen 2024 §3.3).

    A duplicate has the expression string of a member, or a fingerprint within L2 ≤ ``threshold``
    of one.

    Parameters
    ----------
    genome : LossGraph
        The candidate.
    population : list of LossGraph or PopulationIndex
        The members to compare with (a :class:`PopulationIndex` is used as is).
    threshold : float, optional
        Fingerprint distance for a duplicate (default 0.01; ignored for a
        :class:`PopulationIndex`, which carries its own).

    Returns
    -------
    bool
        ``True`` when ``genome`` duplicates a member.

    Examples
    --------
    >>> from deapnn.losses import LossGraph
    >>> from operators import isDuplicate
    >>> ce = LossGraph.from_expression("-(y * log(yhat))")
    >>> isDuplicate(ce.copy(), [ce])
    True

    References
    ----------
    Morgan & Hougen 2024, "Neural loss function evolution for large-scale image classifier
    convolutional neural networks" (arXiv 2403.08793), §3.3.
    """
    index = population if isinstance(population, PopulationIndex) else \
        PopulationIndex(population, threshold)
    return index.contains(fingerprint(genome), genome.to_expression())


def samePhenotype(a: LossGraph, b: LossGraph, threshold: float = DUPLICATE_L2) -> bool:
    """The duplicate relation (Morgan & Hougen 2024 §3.3) between two genomes: identical expression strings or
    effective fingerprints within L2 ≤ ``threshold`` (use as a hall of fame's ``similar``)."""
    try:
        if a.to_expression() == b.to_expression():
            return True
    except GraphError:
        return False
    fa, fb = fingerprint(a), fingerprint(b)
    return fa is not None and fb is not None and \
        float(np.linalg.norm(fa - fb)) <= threshold


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
    from deapnn.losses.graph import P_HIDDEN_UNARY
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
             max_drifts: int = 200, wiring: str = "reference"):
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
    >>> from operators import mutGraph
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
                res = checkIntegrity(child)
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
