"""Operators of Gradient Lexicase Selection (Ding & Spector, ICLR 2022, §3).

* :func:`mutSubGD` — the mutation: subset gradient descent. One shuffled pass over the training set;
  mini-batch ``b`` goes to child ``b mod p`` (§3.2), so the p children train on disjoint slices.
* :func:`selGradientLexicase` — lexicase selection over single training cases with pass/fail =
  top-1 correct (§3.3), evaluated lazily: only the survivors are evaluated, on chunks of cases of
  growing size, and evaluation stops as soon as one survivor is left (the reference code evaluates
  one case at a time; chunks give the same outcome with batched forward passes).
* :func:`selRandomChild` — the ablation's selection: a child drawn uniformly (SubGD + random
  selection, §4).

The per-case pass/fail and loss matrices are in :mod:`deapnn.operators.gls_cases`.
Individuals are ``torch.nn.Module`` children; both operators can be registered on a
``deap.base.Toolbox`` with ``functools.partial``-style keyword arguments.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F

from .gls_cases import (MAX_CHUNK_SIZE, LexicaseSettings, check_cases, check_labels,
                        check_model_takes, check_x, cpu_inference_layout, loss_matrix,
                        pass_matrix)
from .lexicase import lexicase_filter

def mutSubGD(children, x: torch.Tensor, y: torch.Tensor, *, optimizers, loss_fn=F.cross_entropy,
             batch_size: int = 64, generator: torch.Generator | None = None, augment=None,
             augment_generator: torch.Generator | None = None, fast=None):
    """Subset-gradient-descent mutation of ``p`` children (GLS §3.2).

    One shuffled pass over ``(x, y)`` (permutation drawn from ``generator``); mini-batch ``b`` is
    one SGD step of child ``b mod p`` with its own optimizer ``optimizers[b mod p]`` (which carries
    the learning rate and momentum state), so the children train on disjoint slices covering the
    epoch, each in batch order. The children are independent, so they are trained one after the
    other rather than interleaved step by step as in the reference code: every child gets exactly
    the same updates, and each model's weights stay in cache for its whole slice. Augmentation
    draws come from one generator per child, seeded from ``augment_generator``, so they do not
    depend on that execution order either. A child whose loss turns NaN/inf stops training and is
    marked diverged instead of raising.

    Parameters
    ----------
    children : sequence of torch.nn.Module
        The ``p`` children (copies of the parent), trained in place.
    x : torch.Tensor
        The training cases, on the children's device.
    y : torch.Tensor
        Their labels.
    optimizers : sequence of torch.optim.Optimizer
        One per child, over that child's parameters (keyword only).
    loss_fn : callable, optional
        ``loss_fn(logits, targets) -> scalar`` (default ``torch.nn.functional.cross_entropy``).
    batch_size : int, optional
        Mini-batch size (default 64).
    generator : torch.Generator, optional
        Source of the epoch's permutation.
    augment : str, optional
        An augmentation kind of :func:`deapnn.data.augment_batch` applied to each mini-batch
        (default none).
    augment_generator : torch.Generator, optional
        Seeds the per-child augmentation generators.
    fast : deapnn.fastpath.FastPath, optional
        Compiled steps and/or mixed precision (default eager float32). Compiled, the p children
        share one graph: it is compiled for the architecture, not for a child
        (:mod:`deapnn.compiled`), so every generation's new children reuse it.

    Returns
    -------
    tuple of torch.nn.Module
        The children (DEAP mutation convention). On each child: ``train_loss`` (mean loss over
        its steps, NaN when it diverged), ``diverged`` (a reason string, or ``None``),
        ``subgd_steps`` (its optimizer steps this generation: the regime a GLS run is in) and
        ``subgd_cases`` (the indices of the cases it trained on).

    Raises
    ------
    TypeError
        When ``x`` or ``y`` is not a tensor, ``x`` not of the children's floating dtype, ``y``
        not integer class indices (default ``loss_fn``) or ``batch_size`` not an integer.
    ValueError
        With no child, not one optimizer per child, ``batch_size`` < 1, ``len(x) != len(y)``,
        fewer mini-batches than children (some child would get no step), cases the children do
        not take, or (default ``loss_fn``) labels outside the children's outputs. Checked once
        per call: one min/max of ``y`` and one forward pass of one case.

    Examples
    --------
    >>> import torch
    >>> from deapnn.operators import mutSubGD
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> children = [torch.nn.Linear(4, 3) for _ in range(2)]
    >>> opts = [torch.optim.SGD(c.parameters(), lr=0.1) for c in children]
    >>> children = mutSubGD(children, x, y, optimizers=opts, batch_size=16)
    >>> [c.subgd_steps for c in children]            # 4 mini-batches shared by 2 children
    [2, 2]

    Registered on a toolbox for :func:`~deapnn.algorithms.eaGradientLexicase`, which passes
    ``optimizers``, ``generator`` and ``augment_generator`` itself::

        toolbox.register("mutate", mutSubGD, x=x, y=y, batch_size=64)

    References
    ----------
    Ding & Spector 2022, "Optimizing neural networks with gradient lexicase selection" (ICLR),
    §3.2 (subset gradient descent) and Algorithm 1.
    """
    from deapnn.training import train_steps

    p = len(children)
    if p < 1:
        raise ValueError("mutSubGD needs at least one child")
    if len(optimizers) != p:
        raise ValueError(f"need one optimizer per child: {p} children, "
                         f"{len(optimizers)} optimizers")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"mutSubGD: batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"mutSubGD: batch_size must be an integer >= 1, got {batch_size}")
    check_cases("mutSubGD", x, y)
    n_batches = -(-len(x) // batch_size)
    if n_batches < p:
        raise ValueError(f"mutSubGD: {len(x)} cases in batches of batch_size={batch_size} give "
                         f"{n_batches} mini-batch(es), fewer than the {p} children, so some "
                         f"children would get no training step; need len(x) > "
                         f"(children - 1) * batch_size = {(p - 1) * batch_size}")
    label_max = check_labels("mutSubGD", y) if loss_fn is F.cross_entropy else -1
    check_model_takes("mutSubGD", children[0], x, label_max)
    device = x.device
    batches = torch.randperm(len(x), generator=generator).split(batch_size)
    child_generators = [None] * p
    if augment:
        seeds = torch.randint(2**62, (p,), generator=augment_generator,
                              device=augment_generator.device if augment_generator else "cpu")
        child_generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    for i, child in enumerate(children):
        mean, reason = train_steps(child, optimizers[i], x, y, loss_fn, batches[i::p], augment,
                                   child_generators[i], fast)
        child.diverged = reason
        child.train_loss = math.nan if reason else mean
        child.subgd_steps = len(batches[i::p])
        child.subgd_cases = torch.cat(batches[i::p]) if batches[i::p] else torch.empty(0)
    return tuple(children)


def _reference_filter(pool: list, errors: np.ndarray) -> tuple[list, int]:
    """The reference code's loop (a replication option; docs/faithfulness.md, GLS tie
    semantics): on each case (column of ``errors``, in order) a failing child is removed from the
    list *while iterating over it*, so the child after it is not examined on that case and stays.
    The pool therefore never empties: the first child either passes or shields the second (a
    case all four children fail leaves children 1 and 3). Stops as soon as one child is left;
    ``pool`` must hold at least two children. Returns (pool, cases used)."""
    for j in range(errors.shape[1]):
        row = {c: r for r, c in enumerate(pool)}
        alive = list(pool)
        i = 0
        while i < len(alive):
            if errors[row[alive[i]], j]:
                alive.pop(i)
            i += 1
        pool = alive
        if len(pool) == 1:
            return pool, j + 1
        errors = errors[[row[c] for c in pool]]
    return pool, errors.shape[1]


def selGradientLexicase(individuals, k: int = 1, *, x: torch.Tensor, y: torch.Tensor,
                        rng: np.random.Generator | None = None, chunk_size: int = 8,
                        max_chunk_size: int = MAX_CHUNK_SIZE, max_cases: int | None = None,
                        eval_batch_size: int | None = None, semantics: str = "standard",
                        augment: str | None = None, case_metric: str = "error", epsilon=None,
                        info: dict | None = None, fast=None):
    """Lexicase selection over the training cases ``(x, y)``, lazily evaluated (GLS §3.3).

    Each of the ``k`` selection events visits the cases in a fresh random order (``rng``). The
    survivors are evaluated on the next chunk of cases (first ``chunk_size`` cases, doubling up to
    ``max_chunk_size``: selection usually ends within a few cases early in training, while late in
    training tens of thousands may be needed; a tail shorter than the next chunk joins the current
    one), the chunk's pass matrix is filtered in case order with
    :func:`deapnn.operators.lexicase.lexicase_filter`, and evaluation stops when one survivor is
    left. Chunking decides only which cases get evaluated, never the outcome. Children marked
    ``diverged`` by :func:`mutSubGD` do not enter the pool (all do when every child diverged).

    Parameters
    ----------
    individuals : list of torch.nn.Module
        The children to select from (put in eval mode while selecting, their mode restored).
    k : int, optional
        Number of selection events (default 1).
    x : torch.Tensor
        The training cases (keyword only).
    y : torch.Tensor
        Their labels (keyword only).
    rng : numpy.random.Generator, optional
        Source of the case orders and tie breaks (default: a fresh generator).
    chunk_size : int, optional
        The first chunk of cases evaluated at once (default 8).
    max_chunk_size : int, optional
        The largest chunk (default :data:`~deapnn.operators.gls_cases.MAX_CHUNK_SIZE`, 4096).
    max_cases : int, optional
        Bound on the cases one event may examine (default: all). With a bound the event is
        lexicase on a random down-sample of that many cases (down-sampled lexicase, Hernandez et
        al. 2019); survivors left when it is used up are treated as when the cases run out. An
        opt-in approximation for late training, when the children tie on nearly every case and
        exact selection must evaluate every child on the whole training set: a bound of ``m``
        cases caps an event at ``p·m`` forward passes.
    eval_batch_size : int, optional
        Forward-pass batch size; defaults to 256 on CPU (cache-friendly) and 2048 on CUDA.
    semantics : {"standard", "reference"}, optional
        ``"standard"`` (default): a case that every survivor fails removes nobody; if the cases
        run out, pick uniformly among the survivors. ``"reference"`` replicates the reference
        code's loop: a failing child is removed from the list being iterated, so the next child
        skips that case (a case every survivor fails keeps every second one, e.g. children 1
        and 3 of four; the pool never empties), and when the cases run out with several
        survivors, a child drawn uniformly from *all* children before selection began wins.
    augment : str, optional
        An augmentation kind of :func:`deapnn.data.augment_batch` (default none): the cases are
        augmented images, freshly drawn at every call, as in the reference code, whose selection
        loader reads the augmented training set (the paper selects on the training data as is).
        The draws come from a generator seeded from ``rng``, so a call is reproducible from its
        ``rng`` alone; all survivors see the same augmented copy of a case.
    case_metric : {"error", "loss"}, optional
        ``"error"`` (default, the paper): pass/fail = top-1 correct. ``"loss"`` (beyond the
        paper): the per-case values are cross-entropy losses, filtered with ``epsilon``. Late in
        training, when every child passes every case, the 0/1 matrix is uniform and selection a
        uniform draw; the losses still differ.
    epsilon : None, float or "auto", optional
        Only with ``case_metric="loss"``, as :func:`deapnn.operators.lexicase.lexicase_filter`
        takes it: ``None`` keeps the lowest loss only, a number keeps losses within it of the
        pool's best, ``"auto"`` takes epsilon = the median absolute deviation of the case's losses
        over the *current pool* ("dynamic" epsilon-lexicase, La Cava et al. 2016).
    info : dict, optional
        Receives ``cases_examined`` (cases consumed until the end of each event),
        ``survivors_per_chunk`` (pool sizes after each chunk) and ``deciding_case`` (the index in
        ``x`` of the case at which the pool became one child, ``None`` when it never did) of the
        last event.
    fast : deapnn.fastpath.FastPath, optional
        Compiled forward passes (one graph for every child) and/or mixed precision (default
        eager float32); the pass/fail and losses are computed from float32 logits either way.

    Returns
    -------
    list of torch.nn.Module
        The ``k`` selected individuals (references, as DEAP's selectors return).

    Raises
    ------
    TypeError
        When ``x`` or ``y`` is not a tensor (numpy arrays are not converted), ``x`` is not of
        the models' floating dtype, or ``y`` is not integer class indices.
    ValueError
        On an empty population, a negative ``k``, invalid chunk sizes or ``max_cases``, or an
        unknown or inconsistent ``semantics`` / ``case_metric`` / ``epsilon``; on empty ``x``,
        ``len(x) != len(y)``, cases the models do not take, labels outside the models'
        outputs, or NaN in an examined case.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from deapnn.operators import selGradientLexicase
    >>> x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> children = [torch.nn.Linear(4, 3) for _ in range(4)]
    >>> info = {}
    >>> winner, = selGradientLexicase(children, 1, x=x, y=y, rng=np.random.default_rng(0),
    ...                               info=info)
    >>> winner in children, sorted(info)
    (True, ['cases_examined', 'deciding_case', 'survivors_per_chunk'])

    On a toolbox for :func:`~deapnn.algorithms.eaGradientLexicase` (which passes ``rng`` and
    ``info``)::

        toolbox.register("select", selGradientLexicase, x=x, y=y)

    References
    ----------
    Ding & Spector 2022, "Optimizing neural networks with gradient lexicase selection" (ICLR),
    §3.3 (lexicase selection over training cases) and Algorithm 1.
    """
    LexicaseSettings(semantics, case_metric, epsilon, chunk_size, max_cases)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if max_chunk_size < chunk_size:
        raise ValueError(f"max_chunk_size must be >= chunk_size {chunk_size}, got "
                         f"{max_chunk_size}")
    n = len(individuals)
    if n == 0:
        raise ValueError("cannot select from an empty population")
    check_cases("selGradientLexicase", x, y)
    label_max = check_labels("selGradientLexicase", y)
    check_x("selGradientLexicase", individuals[0], x)     # feature count: at the first forward
    rng = rng if rng is not None else np.random.default_rng()
    if eval_batch_size is None:
        eval_batch_size = 2048 if x.device.type == "cuda" else 256
    was_training = [m.training for m in individuals]
    for m in individuals:
        m.eval()
    limit = len(x) if max_cases is None else min(max_cases, len(x))
    chosen = []
    try:
        with cpu_inference_layout(individuals, x) as layout:
            if augment:
                layout = _augmenting(layout, augment, rng, x.device)
            for _ in range(k):
                chosen.append(individuals[_select_one(individuals, x, y, rng, chunk_size,
                                                      max_chunk_size, limit, eval_batch_size,
                                                      semantics, info, layout, case_metric,
                                                      epsilon, label_max, fast)])
    finally:
        for m, t in zip(individuals, was_training):
            m.train(t)
    return chosen


def _augmenting(layout, augment: str, rng: np.random.Generator, device):
    """``layout`` preceded by a fresh augmentation of the batch of cases, its draws from a
    generator seeded from ``rng`` (selection on augmented data, the reference code's)."""
    from deapnn.data import augment_batch
    generator = torch.Generator(device=device).manual_seed(int(rng.integers(2**62)))
    return lambda xb: layout(augment_batch(xb, augment, generator))


def selRandomChild(children, k: int = 1, *, rng: np.random.Generator, info: dict | None = None):
    """``k`` children drawn uniformly with replacement: the selection of the SubGD +
    random-selection ablation.

    It has the keyword signature of :func:`selGradientLexicase`, so it can replace it in an
    :func:`~deapnn.algorithms.eaGradientLexicase` toolbox (DEAP's ``tools.selRandom`` does not take
    the loop's ``rng=`` and ``info=`` keywords).

    Parameters
    ----------
    children : list
        The children to draw from.
    k : int, optional
        Number of draws (default 1).
    rng : numpy.random.Generator
        Source of the draws (keyword only, required).
    info : dict, optional
        Accepted and left as is (no case is examined).

    Returns
    -------
    list
        The ``k`` drawn children (references).

    Examples
    --------
    >>> import numpy as np
    >>> from deapnn.operators import selRandomChild
    >>> len(selRandomChild(["a", "b", "c"], 2, rng=np.random.default_rng(0)))
    2

    References
    ----------
    Ding & Spector 2022, "Optimizing neural networks with gradient lexicase selection" (ICLR),
    §4 (the ablation: subset gradient descent with random selection).
    """
    return [children[int(i)] for i in rng.integers(len(children), size=k)]


def _select_one(models, x, y, rng, chunk_size, max_chunk_size, limit, eval_batch_size, semantics,
                info, layout, case_metric="error", epsilon=None, label_max=-1, fast=None):
    n = len(models)
    fallback = int(rng.integers(n))   # reference: the winner when the cases run out, drawn first
    pool = [i for i in range(n) if not getattr(models[i], "diverged", None)]
    order = torch.from_numpy(rng.permutation(len(x)))
    examined, survivors, start, size, decider = 0, [], 0, chunk_size, None
    matrix = loss_matrix if case_metric == "loss" else pass_matrix
    if not pool:   # every child diverged: nothing can be ranked
        pool = list(range(n))
    while len(pool) > 1 and start < limit:
        end = min(start + size, limit)
        if limit - end < 2 * size:   # the next chunk would be a short tail: one forward round less
            end = limit
        idx = order[start:end].to(x.device)
        xb = x[idx]
        # a NaN anywhere makes the sum NaN (one cheap reduction); isnan() only to confirm
        if xb.is_floating_point() and torch.isnan(xb.sum()) and torch.isnan(xb).any():
            bad = idx[torch.isnan(xb).reshape(len(xb), -1).any(1)][:5].tolist()
            raise ValueError(f"selGradientLexicase: x holds NaN (cases {bad}...); the training "
                             f"cases must be NaN-free")
        errors = matrix([models[i] for i in pool], layout(xb), y[idx], eval_batch_size, label_max,
                        fast)
        if semantics == "reference":
            pool, used = _reference_filter(pool, errors)
            examined += used
            if len(pool) == 1:
                decider = int(idx[used - 1])
        else:
            # Cases on which every survivor scores the same remove nobody: skip them up front.
            informative = np.flatnonzero(errors.min(0) != errors.max(0))
            kept, used = lexicase_filter(np.asarray(pool), errors[:, informative], epsilon,
                                         return_consumed=True)
            pool = kept.tolist()
            if len(pool) == 1 and used:
                decider = int(idx[int(informative[used - 1])])
            examined += int(informative[used - 1]) + 1 if len(pool) == 1 and used else len(idx)
        survivors.append(len(pool))
        start += len(idx)
        size = min(2 * size, max_chunk_size)
    if info is not None:
        info["cases_examined"] = examined
        info["survivors_per_chunk"] = survivors
        info["deciding_case"] = decider
    if len(pool) == 1:
        return pool[0]
    if semantics == "reference":
        return fallback
    return pool[int(rng.integers(len(pool)))]
