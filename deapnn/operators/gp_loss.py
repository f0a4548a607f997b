"""DEAP operators for EvoMAL loss trees (Raymond et al. 2023, TPAMI §4.2 and Table 2).

``mutCorrectArguments`` is the argument correction as a DEAP mutation (returns ``(ind,)``);
``heightLimit`` is ``gp.staticLimit`` on tree height [10]; ``mutUniformLoss`` is ``gp.mutUniform``
with half-and-half subtrees of depth 0-2, the EvoMAL mutation.
"""
from __future__ import annotations

import operator
import random

from deap import gp

from deapnn.losses.tree import correctArguments, default_pset

__all__ = ["correctArguments", "mutCorrectArguments", "heightLimit", "mutUniformLoss"]


def mutCorrectArguments(individual, pset=None, rng=random):
    """:func:`~deapnn.losses.correctArguments` in DEAP mutation form.

    Parameters
    ----------
    individual : deap.gp.PrimitiveTree
        The loss tree, repaired in place.
    pset : deap.gp.PrimitiveSet, optional
        The primitive set (default: the EvoMAL set, :func:`~deapnn.losses.lossPrimitiveSet`).
    rng : random.Random, optional
        Source of the draws (default: the ``random`` module).

    Returns
    -------
    tuple
        ``(individual,)``.

    Examples
    --------
    >>> import random
    >>> from deap import gp
    >>> from deapnn.losses import lossPrimitiveSet
    >>> from deapnn.operators import mutCorrectArguments
    >>> pset = lossPrimitiveSet()
    >>> tree, = mutCorrectArguments(gp.PrimitiveTree.from_string("log(y)", pset), pset,
    ...                             random.Random(0))
    >>> str(tree)
    'log(div(y, fx))'

    References
    ----------
    Raymond, Chen, Xue & Zhang 2023 (TPAMI, arXiv 2209.08907), §4.2.
    """
    return (correctArguments(individual, pset or default_pset(), rng),)


def heightLimit(max_height: int = 10):
    """Decorator for ``mate``/``mutate``: children taller than ``max_height`` are replaced by a copy
    of their parent (``gp.staticLimit`` on ``height``).

    Parameters
    ----------
    max_height : int, optional
        The largest tree height kept (>= 1; default 10, Table 2).

    Returns
    -------
    callable
        A decorator for ``toolbox.decorate``.

    Raises
    ------
    ValueError
        When ``max_height`` is not an integer >= 1.

    Examples
    --------
    >>> from deap import base, gp
    >>> from deapnn.losses import lossPrimitiveSet
    >>> from deapnn.operators import heightLimit
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("mate", gp.cxOnePoint)
    >>> toolbox.decorate("mate", heightLimit(10))

    References
    ----------
    Raymond, Chen, Xue & Zhang 2023 (TPAMI, arXiv 2209.08907), §4.2 and Table 2 (maximum tree
    height 10).
    """
    if not isinstance(max_height, int) or max_height < 1:
        raise ValueError(f"max_height must be an integer >= 1, got {max_height!r}")
    return gp.staticLimit(key=operator.attrgetter("height"), max_value=max_height)


def mutUniformLoss(individual, pset=None, min_: int = 0, max_: int = 2):
    """The EvoMAL mutation: ``gp.mutUniform`` with a ``gp.genHalfAndHalf`` subtree of depth
    ``min_`` to ``max_``.

    Parameters
    ----------
    individual : deap.gp.PrimitiveTree
        The loss tree, mutated in place.
    pset : deap.gp.PrimitiveSet, optional
        The primitive set (default: the EvoMAL set, :func:`~deapnn.losses.lossPrimitiveSet`).
    min_ : int, optional
        Least depth of the new subtree (default 0, as in the reference code).
    max_ : int, optional
        Greatest depth of the new subtree (default 2, as in the reference code).

    Returns
    -------
    tuple
        ``(individual,)`` (DEAP mutation convention).

    Examples
    --------
    >>> import random
    >>> from deap import gp
    >>> from deapnn.losses import lossPrimitiveSet
    >>> from deapnn.operators import mutUniformLoss
    >>> pset = lossPrimitiveSet()
    >>> random.seed(1)
    >>> tree, = mutUniformLoss(gp.PrimitiveTree.from_string("mul(y, log(fx))", pset), pset)
    >>> isinstance(tree, gp.PrimitiveTree)
    True

    References
    ----------
    Raymond, Chen, Xue & Zhang 2023 (TPAMI, arXiv 2209.08907), §4.2 and Table 2 (uniform
    mutation); the subtree depths 0–2 are the reference code's (``docs/faithfulness.md``).
    """
    pset = pset or default_pset()
    return gp.mutUniform(individual, lambda pset, type_: gp.genHalfAndHalf(pset, min_, max_, type_),
                         pset)
