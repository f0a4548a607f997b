"""Informed down-sampled lexicase selection as a stateful DEAP operator (Boldi et al. 2024).

The paper's schedule keeps state between generations (a generation counter, the case distances of
the last parent sample): :class:`selInformedDownsampledLexicase` holds it, picklable for SCOOP and
for checkpoints.  The semantics (solve status, case distance, farthest-first traversal, schedule)
are those of :mod:`deapnn.operators.lexicase_informed`.
"""
from __future__ import annotations

import numbers
import random
import warnings
from typing import Any

import numpy as np

from .lexicase import lexicase
from .lexicase_deap import select_individuals
from .lexicase_informed import (CaseGroups, check_epsilon_shape, check_fraction, check_threshold,
                                downsample_size, parent_distances, select_on_cases)
from .lexicase_util import as_generator, check_population, validate_errors, validate_k

__all__ = ["selInformedDownsampledLexicase"]

_STATE_FORMAT = 1


class selInformedDownsampledLexicase:
    """Informed down-sampled lexicase selection (Boldi et al. 2024) as a stateful DEAP operator.

    An instance is the selection operator: ``toolbox.register("select",
    selInformedDownsampledLexicase())``; each call ``sel(individuals, k)`` is one generation. It
    draws that generation's down-sample by farthest-first traversal of the case distances last
    computed (a uniformly random one before the first), selects ``k`` individuals by lexicase
    selection on it, and at generations 0, ``interval``, 2 ``interval`` ... recomputes the
    distances from a ``parent_sample`` fraction of the individuals (the semantics are in the module
    docstring of :mod:`deapnn.operators.lexicase_informed`).

    The state (generation counter, distances, random state) survives a checkpoint: pickle the
    instance (or the toolbox holding it), or save :meth:`state_dict` and restore it with
    :meth:`load_state_dict`; a resumed run then makes the selections an uninterrupted one makes.
    With ``rng=None`` randomness comes from Python's ``random`` module: checkpoint
    ``random.getstate()`` too, as DEAP's checkpointing recipe does.  Register an instance, not the
    class: a new instance per call would forget the distances.

    Parameters
    ----------
    downsample : float, optional
        Fraction of the cases per generation, in (0, 1] (default 0.1; the paper's r).
    parent_sample : float, optional
        Fraction of the individuals whose errors on every case give the distances, in (0, 1]
        (default 0.01, at least one individual; the paper's rho).
    interval : int, optional
        Generations between distance computations (>= 1, default 100; the paper's k).
    threshold : float, optional
        An error ``<= threshold`` solves its case (default 0: error zero). Errors are the negated
        values on maximised cases, so a maximised 0/1 fitness (1 = right) needs
        ``threshold=-0.5``.
    epsilon : None, float, array_like or "auto", optional
        Exact lexicase on the down-sample (``None``, default) or epsilon-lexicase, as in
        :func:`deapnn.operators.lexicase.lexicase`.
    epsilon_mode : {"semi-dynamic", "dynamic"}, optional
        As in :func:`deapnn.operators.lexicase.lexicase`.
    key : callable, optional
        ``ind -> per-case errors`` instead of fitness values (must pickle for checkpoints).
    key_weights : float or sequence of float, optional
        With ``key``: > 0 marks maximised cases, as ``fitness.weights`` does.
    rng : None, int, numpy.random.Generator or random.Random, optional
        ``None``: Python's ``random`` module, drawn from at every call. An int seeds a generator
        of this instance once; a generator is kept (and pickled) with the instance.

    Attributes
    ----------
    generation : int
        Calls so far (generations selected).
    cases : numpy.ndarray or None
        The down-sample of the last call (sorted case indices), e.g. to log it.

    Examples
    --------
    >>> import pickle
    >>> import numpy as np
    >>> from deap import base
    >>> from deapnn.operators import selInformedDownsampledLexicase
    >>> toolbox = base.Toolbox()
    >>> toolbox.register("select", selInformedDownsampledLexicase())          # the defaults
    >>> sel = selInformedDownsampledLexicase(downsample=0.25, parent_sample=0.1, interval=2,
    ...                                      rng=0)
    >>> errors = np.random.default_rng(1).integers(0, 2, size=(40, 16))
    >>> first = [sel.select(errors, 5) for _ in range(3)]
    >>> sel.generation, sel.select(errors, 5).shape
    (3, (5,))
    >>> copy = pickle.loads(pickle.dumps(sel))             # a checkpoint
    >>> bool((copy.select(errors, 5) == sel.select(errors, 5)).all())
    True

    References
    ----------
    Boldi, Briesch, Sobania, Lalejini, Helmuth, Rothlauf, Ofria & Spector 2024, "Informed
    down-sampled lexicase selection: identifying productive training cases for efficient problem
    solving" (Evolutionary Computation 32(4)), Algorithm 2 (parameters r, rho, k); the authors'
    propeller code (``downsample.cljc``) for the order of updates and the initial distances.
    """

    def __init__(self, downsample: float = 0.1, parent_sample: float = 0.01, interval: int = 100,
                 *, threshold: float = 0.0, epsilon=None, epsilon_mode="semi-dynamic", key=None,
                 key_weights=None, rng=None):
        if not isinstance(downsample, numbers.Real) or isinstance(downsample, bool):
            raise TypeError("selInformedDownsampledLexicase is stateful: register an instance, "
                            "toolbox.register('select', selInformedDownsampledLexicase(...)), "
                            f"not the class (it was called with {type(downsample).__name__} "
                            "as downsample)")
        self.downsample: float = check_fraction(downsample, "downsample")
        self.parent_sample: float = check_fraction(parent_sample, "parent_sample")
        if isinstance(interval, bool) or not isinstance(interval, numbers.Integral) \
                or interval < 1:
            raise ValueError(f"interval must be an integer >= 1, got {interval!r}")
        self.interval: int = int(interval)
        self.threshold: float = check_threshold(threshold)
        if epsilon_mode not in ("semi-dynamic", "dynamic"):
            raise ValueError(f"epsilon_mode must be 'semi-dynamic' or 'dynamic', got "
                             f"{epsilon_mode!r}")
        self.epsilon: Any = epsilon
        self.epsilon_mode: str = epsilon_mode
        self.key: Any = key
        self.key_weights: Any = key_weights
        if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
            rng = as_generator(rng)          # seeded once: this instance's own stream
        elif rng is not None and not isinstance(rng, (np.random.Generator, np.random.RandomState)) \
                and not hasattr(rng, "getrandbits"):
            raise ValueError(f"rng must be None, an int seed, a numpy Generator or a "
                             f"random.Random, got {type(rng).__name__}")
        self.rng: Any = rng
        self.generation: int = 0
        self.n_cases: int | None = None
        self.cases: np.ndarray | None = None
        self._distances: CaseGroups | None = None
        self._warned: bool = False

    def __call__(self, individuals, k):
        return select_individuals(individuals, k, self.key, None,
                                  lambda E, k, rng: self.select(E, k), key_weights=self.key_weights)

    def select(self, errors, k):
        """One generation on an error matrix: ``k`` row indices (and the state moves on).

        Parameters
        ----------
        errors : array_like
            (n_individuals, n_cases) numeric errors, lower is better; the same number of cases at
            every call.
        k : int
            Number of selection events (>= 0); 0 selects nothing and leaves the state as it is.

        Returns
        -------
        numpy.ndarray
            ``k`` row indices (dtype ``intp``).
        """
        X = validate_errors(errors)
        k = validate_k(k)
        check_population(X, k)
        n, m = X.shape
        if self.n_cases is not None and m != self.n_cases:
            raise ValueError(f"errors have {m} cases but earlier generations had "
                             f"{self.n_cases}: the case distances are per case")
        check_epsilon_shape(self.epsilon, m)
        if k == 0:
            return np.empty(0, dtype=np.intp)
        gen = as_generator(random if self.rng is None else self.rng)
        size = downsample_size(self.downsample, m)
        if self._distances is None:
            cases = gen.choice(m, size=size, replace=False) if m else np.empty(0, np.intp)
        else:
            cases = self._distances.downsample(size, gen)
        self.cases = np.sort(cases)
        out = select_on_cases(X, k, cases, gen, self.epsilon, self.epsilon_mode) if m else \
            lexicase(X, k, rng=gen)
        if self.generation % self.interval == 0 and n and m:
            self._distances = parent_distances(X, self.parent_sample, self.threshold, gen)
            self._check_split(X)
        self.n_cases = m
        self.generation += 1
        return out

    def _check_split(self, X):
        """Warn once when the threshold marks everything solved although the errors differ: the
        tell-tale of negated maximised values (0/1 fitness gives errors -1/0, all <= 0)."""
        d = self._distances
        if self._warned or d is None or not d.group_solve.all():
            return
        V = X[np.isfinite(X)] if X.dtype.kind == "f" else X
        if V.size and V.min() != V.max():
            self._warned = True
            warnings.warn(f"threshold={self.threshold} counts every sampled error as solving its "
                          "case, so all case distances are 0 and the down-sample is random; on "
                          "maximised fitness values (errors are their negatives) pass e.g. "
                          "threshold=-0.5 for 0/1 values", UserWarning, stacklevel=3)

    def state_dict(self):
        """The state a checkpoint needs (hyper-parameters are the constructor's arguments).

        Returns
        -------
        dict
            Plain data: format, generation counter, number of cases, the distances (case groups
            and their solve vectors), the last down-sample and the state of ``rng`` when it is
            an object of this instance (a numpy generator or a ``random.Random``).
        """
        rng = self.rng
        rstate = rng.bit_generator.state if isinstance(rng, np.random.Generator) else \
            rng.get_state() if isinstance(rng, np.random.RandomState) else \
            rng.getstate() if isinstance(rng, random.Random) else None
        d = self._distances
        return {"format": _STATE_FORMAT, "generation": self.generation, "n_cases": self.n_cases,
                "case_group": None if d is None else d.case_group.copy(),
                "group_solve": None if d is None else d.group_solve.copy(), "rng": rstate,
                "cases": None if self.cases is None else self.cases.copy()}

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` (of an instance built with the same arguments).

        Parameters
        ----------
        state : dict
            What :meth:`state_dict` returned.
        """
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a state_dict of selInformedDownsampledLexicase (format "
                             f"{_STATE_FORMAT}): {str(state)[:80]}")
        self.generation = int(state["generation"])
        self.n_cases = state["n_cases"]
        self.cases = None if state.get("cases") is None else np.asarray(state["cases"], np.intp)
        self._distances = None if state["case_group"] is None else CaseGroups(
            np.asarray(state["case_group"], dtype=np.intp),
            np.asarray(state["group_solve"], dtype=bool))
        if state["rng"] is not None:
            if isinstance(self.rng, np.random.Generator):
                self.rng.bit_generator.state = state["rng"]
            elif isinstance(self.rng, np.random.RandomState):
                self.rng.set_state(state["rng"])
            elif isinstance(self.rng, random.Random):
                self.rng.setstate(state["rng"])

    def __repr__(self):
        return (f"selInformedDownsampledLexicase(downsample={self.downsample}, "
                f"parent_sample={self.parent_sample}, interval={self.interval}, "
                f"threshold={self.threshold}, generation={self.generation})")
