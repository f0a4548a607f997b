"""Phenotype duplicates of NLFS loss graphs (Morgan & Hougen 2024, §3.3).

Two losses are duplicates when their expression strings are identical or their effective
(flip-aware) probe fingerprints lie within L2 ≤ 0.01. :func:`isDuplicate` tests a genome against
a population, :class:`PopulationIndex` builds that population's fingerprints once for many tests,
and :func:`samePhenotype` is the relation between two genomes (a hall of fame's ``similar``).
"""
from __future__ import annotations

import numpy as np

from deapnn.losses.graph import LossGraph, GraphError

from .graph_integrity import PROBE_ROWS, checkIntegrity

DUPLICATE_L2 = 0.01


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
    >>> from deapnn.operators import fingerprint
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

    Pass it as ``population`` to :func:`isDuplicate` or :func:`deapnn.operators.graph.mutGraph`
    instead of a list when many genomes are tested against the same population.

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
    >>> from deapnn.operators import PopulationIndex, fingerprint
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
    >>> from deapnn.operators import isDuplicate
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
    """The duplicate relation (Morgan & Hougen 2024 §3.3) between two genomes: identical
    expression strings or effective fingerprints within L2 ≤ ``threshold`` (use as a hall of
    fame's ``similar``)."""
    try:
        if a.to_expression() == b.to_expression():
            return True
    except GraphError:
        return False
    fa, fb = fingerprint(a), fingerprint(b)
    return fa is not None and fb is not None and \
        float(np.linalg.norm(fa - fb)) <= threshold
