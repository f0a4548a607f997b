"""DEAP drop-in lexicase selection operators (``deap.tools`` signatures and semantics).

Each wrapper builds the (individuals x cases) error matrix once per call and runs the exact,
vectorised :func:`deapnn.operators.lexicase.lexicase` (or :func:`deapnn.operators.dalex.dalex`).

**Per-case values.** By default they are ``ind.fitness.values``, one per case, with the sign of each
weight honoured as DEAP does (weight > 0: maximised, so its error is ``-value``).  ``key=`` gives
lower-is-better errors instead, e.g. ``key=operator.attrgetter("case_errors")`` beside a scalar
fitness.  Under SCOOP or multiprocessing, evaluation runs in another process and only the value
``evaluate`` *returns* comes back: an attribute set on the individual inside ``evaluate`` is lost
(the main process's individual keeps no value, or a stale one cloned from its parent).  Keep the
per-case values in ``fitness.values``, or return them from ``evaluate`` and assign them to the
individual in the main process (both shown in ``examples/lexicase_symbreg.py``).

**Non-finite values** follow DEAP's order: on a minimised case ``-inf`` is the best value and
``+inf`` the worst; on a maximised case the reverse.  NaN always ranks worst (tied with the worst
infinity): DEAP's own operators crash on it or let it win.

**Randomness** comes from Python's ``random`` module by default, so ``random.seed`` reproduces a
run as with ``deap.tools``.  To use a separate stream, register a ``numpy.random.Generator`` once:
``toolbox.register("select", selLexicase, rng=np.random.default_rng(0))``.  An int ``rng`` would
re-seed every call (every generation would repeat the same case orders), so it draws a warning.

**Names.** One vocabulary with the array API: ``epsilon``, ``epsilon_mode``, ``downsample``,
``std``, ``key``, ``key_weights``, ``rng``; every operator has defaults, so
``toolbox.register("select", op)`` works.  ``key=`` values are errors (minimised) unless
``key_weights=`` says otherwise, as ``fitness.weights`` does for fitness values: a weight > 0
maximises its case (``key_weights=1.0``: every case).  ``mode=`` (selAutomaticEpsilonLexicase) and
``rate=`` (selDownsampledLexicase) are deprecated aliases of ``epsilon_mode=`` and ``downsample=``;
giving a former name together with its new one is a ``TypeError``.  As in ``deap.tools``, ``k <= 0``
selects nothing (``[]``).

References: Spector 2012 (lexicase); La Cava, Spector & Danai 2016 (epsilon-lexicase, MAD epsilon);
Hernandez, Lalejini, Dolson & Ofria 2019 (down-sampled lexicase); Ni, Ding & Spector 2024 (DALex).
"""
from __future__ import annotations

import numbers
import random
import warnings

import numpy as np

from ..deprecation import former_keywords
from .dalex import dalex
from .lexicase import lexicase
from .lexicase_util import case_signs, rows_matrix, validate_k

__all__ = ["selLexicase", "selEpsilonLexicase", "selAutomaticEpsilonLexicase",
           "selDownsampledLexicase", "selDALex", "case_errors"]

_REMOTE = ("Per-case errors stored as an attribute inside evaluate are lost when evaluate runs in "
           "another process (SCOOP, multiprocessing): only its return value comes back. Keep them "
           "in fitness.values (one value per case, no key=), or return them from evaluate and "
           "assign them to the individual in the main process (examples/lexicase_symbreg.py "
           "--fitness mean shows how).")


def case_errors(individuals, key=None, key_weights=None):
    """The (individuals x cases) error matrix the lexicase operators select on, lower is better.

    Parameters
    ----------
    individuals : sequence
        Evaluated individuals.
    key : callable, optional
        ``ind -> per-case values``, errors (lower is better) unless ``key_weights`` says
        otherwise. Without it the values are ``ind.fitness.values``, negated on cases whose weight
        is > 0 (DEAP maximises those).
    key_weights : float or sequence of float, optional
        Only with ``key``: one number for every case or one per case, read as
        ``fitness.weights`` is: > 0 maximises the case (its values are negated), < 0 minimises it;
        only the sign counts. ``None`` (default): every ``key`` value is an error.

    Returns
    -------
    numpy.ndarray
        Float64 matrix of shape ``(len(individuals), n_cases)``; ``(0, 0)`` for no individuals.

    Raises
    ------
    ValueError
        Naming the first individual at fault: not evaluated, a wrong number of values, ``key``
        returned ``None``; or ``key_weights`` without ``key``, of the wrong length, or zero.

    Examples
    --------
    >>> from deap import base, creator
    >>> from deapnn.operators import case_errors
    >>> creator.create("FitnessErrMax", base.Fitness, weights=(-1.0, 1.0))
    >>> creator.create("IndErrMax", list, fitness=creator.FitnessErrMax)
    >>> ind = creator.IndErrMax([0]); ind.fitness.values = (0.5, 2.0)
    >>> case_errors([ind])                  # the maximised second case is negated
    array([[ 0.5, -2. ]])

    References
    ----------
    Spector 2012 (lexicase selection reads one error per training case).
    """
    if key_weights is not None and key is None:
        raise ValueError("key_weights= applies to key= values; fitness.values are read with "
                         "their fitness.weights")
    if len(individuals) == 0:
        return np.empty((0, 0))
    if key is not None:
        rows = []
        for i, ind in enumerate(individuals):
            try:
                row = key(ind)
            except AttributeError as exc:
                raise AttributeError(f"key failed on individual {i}: {exc}. {_REMOTE}") from exc
            if row is None:
                raise ValueError(f"key returned None for individual {i}. {_REMOTE}")
            rows.append(row)
        E = rows_matrix(rows, "key values",
                        "key returned no values for individual {i}: was it evaluated?")
        if E.shape[1] == 0:
            raise ValueError("key returned no values for individual 0: was it evaluated?")
        if key_weights is not None:
            np.negative(E, out=E, where=case_signs(key_weights, E.shape[1]) > 0)
        return E
    weights = np.asarray(individuals[0].fitness.weights, dtype=np.float64)
    E = rows_matrix([ind.fitness.values for ind in individuals], "fitness values",
                    "individual {i} has no fitness values: was it evaluated?")
    if E.shape[1] != weights.size:
        for i, ind in enumerate(individuals):
            if len(ind.fitness.values) == 0:
                raise ValueError(f"individual {i} has no fitness values: was it evaluated?")
        raise ValueError(f"individuals have {E.shape[1]} fitness values but fitness.weights has "
                         f"{weights.size}: lexicase needs one value (and one weight) per case")
    np.negative(E, out=E, where=weights > 0)
    return E


def _rng(rng):
    if rng is None:
        return random
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        warnings.warn(f"rng={rng} re-seeds every call, so every generation repeats the same case "
                      f"orders; register a generator once instead: "
                      f"rng=np.random.default_rng({rng})", UserWarning, stacklevel=4)
    return rng


def select_individuals(individuals, k, key, rng, select, *, key_weights=None, **kw):
    """The DEAP-side half of every wrapper: ``select(errors, k, rng=..., **kw)`` (an array
    operator of this package) on :func:`case_errors`; ``k <= 0`` selects nothing, as in
    ``deap.tools`` (``range(k)`` is empty)."""
    if isinstance(k, numbers.Integral) and not isinstance(k, bool) and k < 0:
        k = 0
    k = validate_k(k)
    if len(individuals) == 0:
        if k == 0:
            return []
        raise ValueError(f"empty population: cannot select {k} from 0 individuals")
    idx = select(case_errors(individuals, key, key_weights), k, rng=_rng(rng), **kw)
    return [individuals[i] for i in idx]


_select = select_individuals        # the former private name


def selLexicase(individuals, k, *, key=None, key_weights=None, rng=None):
    """Lexicase selection (Spector 2012); ``key=`` errors, or scores with ``key_weights=1``.

    Exact and vectorised; a drop-in for ``deap.tools.selLexicase``.

    Each of the ``k`` selections filters ``individuals`` through the cases in a fresh random order,
    keeping those best on each case, until one individual or no case is left, then draws among the
    survivors. Same distribution as ``deap.tools.selLexicase``, much faster (see
    :func:`deapnn.operators.lexicase.lexicase`).

    Parameters
    ----------
    individuals : list
        Individuals to select from (may be empty when ``k == 0``); one fitness value per case,
        maximised where its weight is > 0.
    k : int
        Number of individuals to select.
    key : callable, optional
        ``ind -> per-case errors`` (lower is better) instead of fitness values, e.g.
        ``operator.attrgetter("case_errors")`` beside a scalar fitness.
    key_weights : float or sequence of float, optional
        Only with ``key``: the sign of one number for every case, or of one per case, as
        ``fitness.weights``: > 0 maximises (``1.0``: higher-is-better scores), < 0 minimises.
        Default ``None``: ``key`` values are errors (minimised).
    rng : None, numpy.random.Generator or random.Random, optional
        ``None`` (Python's ``random`` state, reproducible by ``random.seed``), a
        ``numpy.random.Generator`` created once at registration, or a ``random.Random``.

    Returns
    -------
    list
        The ``k`` selected individuals (references, as in DEAP).

    Examples
    --------
    >>> import random
    >>> from deap import base, creator
    >>> from deapnn.operators import selLexicase
    >>> creator.create("ErrorsOn3Cases", base.Fitness, weights=(-1.0, -1.0, -1.0))
    >>> creator.create("IndOn3Cases", list, fitness=creator.ErrorsOn3Cases)
    >>> pop = [creator.IndOn3Cases([i]) for i in range(3)]
    >>> for ind, errors in zip(pop, [(0, 1, 2), (1, 0, 2), (2, 2, 0)]):
    ...     ind.fitness.values = errors
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selLexicase)
    >>> random.seed(0)
    >>> len(toolbox.select(pop, 4))
    4

    References
    ----------
    Spector 2012, "Assessment of problem modality by differential performance of lexicase
    selection in genetic programming" (GECCO companion).
    """
    return select_individuals(individuals, k, key, rng, lexicase, key_weights=key_weights)


def selEpsilonLexicase(individuals, k, epsilon="auto", *, epsilon_mode="semi-dynamic", key=None,
                       key_weights=None, rng=None):
    """epsilon-lexicase (La Cava 2016); ``key=`` errors, or scores with ``key_weights=1``.

    A drop-in for ``deap.tools.selEpsilonLexicase``.

    Survivors of a case are those within ``epsilon`` of the pool's best value on it.
    ``deap.tools.selEpsilonLexicase(individuals, k, epsilon)`` calls work unchanged.

    Parameters
    ----------
    individuals : list
        Individuals to select from; one fitness value per case (or ``key``).
    k : int
        Number of individuals to select.
    epsilon : float, array_like or "auto", optional
        A number, one number per case, or ``"auto"`` (default): the median absolute deviation of
        each case.
    epsilon_mode : {"semi-dynamic", "dynamic"}, optional
        For ``"auto"``: the MAD over the whole population (``"semi-dynamic"``, default) or over
        the current pool (``"dynamic"``).
    key : callable, optional
        ``ind -> per-case errors`` instead of fitness values, as in :func:`selLexicase`.
    key_weights : float or sequence of float, optional
        Only with ``key``: > 0 maximises, as in :func:`selLexicase`.
    rng : None, numpy.random.Generator or random.Random, optional
        Source of randomness, as in :func:`selLexicase`.

    Returns
    -------
    list
        The ``k`` selected individuals (references).

    Examples
    --------
    >>> from deap import base
    >>> from deapnn.operators import selEpsilonLexicase
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selEpsilonLexicase, epsilon=0.05)   # fixed epsilon

    References
    ----------
    La Cava, Spector & Danai 2016, "Epsilon-lexicase selection for regression" (GECCO);
    La Cava, Helmuth, Spector & Moore 2019 (Evolutionary Computation 27(3)): the semi-dynamic
    and dynamic variants.
    """
    return select_individuals(individuals, k, key, rng, lexicase, key_weights=key_weights,
                              epsilon=epsilon, epsilon_mode=epsilon_mode)


@former_keywords(mode="epsilon_mode")
def selAutomaticEpsilonLexicase(individuals, k, *, epsilon_mode="dynamic", key=None,
                                key_weights=None, rng=None, mode=None):
    """MAD epsilon-lexicase (La Cava 2016); ``key=`` errors, or scores with ``key_weights=1``.

    epsilon = the median absolute deviation (MAD) of each case. The default
    ``epsilon_mode="dynamic"`` matches ``deap.tools.selAutomaticEpsilonLexicase``: the
    MAD and the best value are taken over the current pool, each case is used once.

    Parameters
    ----------
    individuals : list
        Individuals to select from; one fitness value per case (or ``key``).
    k : int
        Number of individuals to select.
    epsilon_mode : {"dynamic", "semi-dynamic"}, optional
        ``"dynamic"`` (default, DEAP's variant) or ``"semi-dynamic"``: the MAD over the whole
        population (cheaper; the variant La Cava et al. 2019 recommend).
    key : callable, optional
        ``ind -> per-case errors`` instead of fitness values, as in :func:`selLexicase`.
    key_weights : float or sequence of float, optional
        Only with ``key``: > 0 maximises, as in :func:`selLexicase`.
    rng : None, numpy.random.Generator or random.Random, optional
        Source of randomness, as in :func:`selLexicase`.
    mode : str, optional
        Deprecated alias of ``epsilon_mode`` (both together: ``TypeError``).

    Returns
    -------
    list
        The ``k`` selected individuals (references).

    Examples
    --------
    >>> import numpy as np
    >>> from deap import base
    >>> from deapnn.operators import selAutomaticEpsilonLexicase
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selAutomaticEpsilonLexicase, rng=np.random.default_rng(0))

    References
    ----------
    La Cava, Spector & Danai 2016, "Epsilon-lexicase selection for regression" (GECCO);
    La Cava, Helmuth, Spector & Moore 2019 (Evolutionary Computation 27(3)): the dynamic and
    semi-dynamic variants.
    """
    return select_individuals(individuals, k, key, rng, lexicase, key_weights=key_weights,
                              epsilon="auto", epsilon_mode=epsilon_mode)


@former_keywords(rate="downsample")
def selDownsampledLexicase(individuals, k, downsample=0.1, *, epsilon=None,
                           epsilon_mode="semi-dynamic", key=None, key_weights=None, rng=None,
                           rate=None):
    """Down-sampled lexicase (Hernandez 2019); ``key=`` errors, or scores with ``key_weights=1``.

    One random ``downsample`` fraction of the cases (at least one) is drawn per call, i.e. per
    generation, and used for all ``k`` selections.

    Parameters
    ----------
    individuals : list
        Individuals to select from; one fitness value per case (or ``key``).
    k : int
        Number of individuals to select.
    downsample : float, optional
        Fraction of the cases in (0, 1] (default 0.1).
    epsilon : None, float, array_like or "auto", optional
        As in :func:`selEpsilonLexicase`; default ``None`` (exact).
    epsilon_mode : {"semi-dynamic", "dynamic"}, optional
        As in :func:`selEpsilonLexicase`.
    key : callable, optional
        ``ind -> per-case errors`` instead of fitness values, as in :func:`selLexicase`.
    key_weights : float or sequence of float, optional
        Only with ``key``: > 0 maximises, as in :func:`selLexicase`.
    rng : None, numpy.random.Generator or random.Random, optional
        Source of randomness, as in :func:`selLexicase`.
    rate : float, optional
        Deprecated alias of ``downsample`` (both together: ``TypeError``).

    Returns
    -------
    list
        The ``k`` selected individuals (references).

    Examples
    --------
    >>> from deap import base
    >>> from deapnn.operators import selDownsampledLexicase
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selDownsampledLexicase, downsample=0.25)

    References
    ----------
    Hernandez, Lalejini, Dolson & Ofria 2019, "Random subsampling improves performance in
    lexicase selection" (GECCO companion).
    """
    return select_individuals(individuals, k, key, rng, lexicase, key_weights=key_weights,
                              epsilon=epsilon, epsilon_mode=epsilon_mode,
                   downsample=downsample)


def selDALex(individuals, k, std=200.0, *, key=None, key_weights=None, rng=None):
    """DALex (Ni, Ding & Spector 2024); ``key=`` errors, or scores with ``key_weights=1``.

    Per selection, importance scores ~ N(0, ``std``) per case are softmaxed into weights and the
    individual with the least weighted error sum is chosen (see
    :func:`deapnn.operators.dalex.dalex`).

    Parameters
    ----------
    individuals : list
        Individuals to select from; one fitness value per case (or ``key``).
    k : int
        Number of individuals to select.
    std : float, optional
        Particularity pressure (> 0): a large one (default 200) behaves like lexicase selection, a
        small one like selection on the mean error.
    key : callable, optional
        ``ind -> per-case errors`` instead of fitness values, as in :func:`selLexicase`.
    key_weights : float or sequence of float, optional
        Only with ``key``: > 0 maximises, as in :func:`selLexicase`.
    rng : None, numpy.random.Generator or random.Random, optional
        Source of randomness, as in :func:`selLexicase`.

    Returns
    -------
    list
        The ``k`` selected individuals (references).

    Examples
    --------
    >>> from deap import base
    >>> from deapnn.operators import selDALex
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selDALex, std=20.0)

    References
    ----------
    Ni, Ding & Spector 2024, "DALex: Lexicase-like selection via diverse aggregation" (EuroGP).
    """
    return select_individuals(individuals, k, key, rng, dalex, key_weights=key_weights, std=std)
