"""EvoMAL loss trees: the GP primitive set, argument correction and the tree → torch loss.

Implements Raymond, Chen, Xue & Zhang, "Learning Symbolic Model-Agnostic Loss Functions via
Meta-Learning" (TPAMI 2023, arXiv 2209.08907), §4.1 (search space / primitive set), §4.2
(correction of trees missing an argument) and §4.3 (the loss as an element-wise expression over
(y, f(x)), summed over classes and averaged over the batch).

Every primitive is a module-level function (picklable, SCOOP-safe) that accepts torch tensors or
Python floats; a tree compiles to one Python lambda over plain torch ops (``gp.compile``).
"""
from __future__ import annotations

import functools
import random
import re

import torch
import torch.nn.functional as F
from deap import gp

from .compiled import CompiledLoss

EPS = 1e-7
TASKS = ("classification", "regression")
ARGUMENTS = ("y", "fx")
ARITHMETIC = ("add", "sub", "mul", "div")
#: tallest loss tree accepted: deeper ones cannot be compiled (Python nests at most 200
#: parentheses); far above any height EvoMAL's static limit lets a search reach
MAX_TREE_HEIGHT = 90
#: most nodes a loss tree may have (a full binary tree of height 10 has 2,047)
MAX_TREE_LENGTH = 10_000


def _t(x):
    """A float constant as a 0-d tensor (so torch ops accept constant-only subtrees)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.tensor(float(x), dtype=torch.get_default_dtype())


# ----------------------------------------------------------------- primitives (§4.1, Table 1)
def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b


def div(a, b):
    """Analytic quotient a / sqrt(1 + b²): smooth, defined everywhere (Ni et al. 2013)."""
    return a / (1 + b * b) ** 0.5


def min(a, b):  # noqa: A001 - the primitive's name in EvoMAL trees
    return torch.minimum(_t(a), _t(b))


def max(a, b):  # noqa: A001
    return torch.maximum(_t(a), _t(b))


def sign(a):
    return torch.sign(_t(a))


def square(a):
    return a * a


def abs(a):  # noqa: A001
    return torch.abs(_t(a))


def log(a):
    """Protected logarithm log(max(|a|, 1e-7))."""
    return torch.log(torch.clamp(torch.abs(_t(a)), min=EPS))


def sqrt(a):
    """Protected square root sqrt(max(|a|, 1e-7))."""
    return torch.sqrt(torch.clamp(torch.abs(_t(a)), min=EPS))


def tanh(a):
    return torch.tanh(_t(a))


BINARY = {"add": add, "sub": sub, "mul": mul, "div": div, "min": min, "max": max}
UNARY = {"sign": sign, "square": square, "abs": abs, "log": log, "sqrt": sqrt, "tanh": tanh}
CONSTANTS = {"1": 1.0, "-1": -1.0}


def lossPrimitiveSet() -> gp.PrimitiveSet:
    """The EvoMAL primitive set (§4.1): arguments ``y`` and ``fx``; binary add, sub, mul, div
    (analytic quotient), min, max; unary sign, square, abs, log, sqrt (both protected at 1e-7),
    tanh; constant terminals ``1`` and ``-1``. No exp.

    The arithmetic primitives are added first, so ``pset.primitives[object][:4]`` are the ones the
    correction draws from (as in the reference code).
    """
    pset = gp.PrimitiveSet("EVOMAL", 2)
    pset.renameArguments(ARG0="y", ARG1="fx")
    for name, fn in BINARY.items():
        pset.addPrimitive(fn, 2, name=name)
    for name, fn in UNARY.items():
        pset.addPrimitive(fn, 1, name=name)
    for name, value in CONSTANTS.items():
        pset.addTerminal(value, name=name)
    return pset


@functools.cache
def default_pset() -> gp.PrimitiveSet:
    """A process-wide :func:`lossPrimitiveSet` (built once)."""
    return lossPrimitiveSet()


# ----------------------------------------------------------------- parsing / validation
_TOKEN_SPLIT = re.compile(r"[ \t\n\r\f\v(),]")


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_size(tree, text: str | None = None) -> None:
    """``ValueError`` for a tree longer than :data:`MAX_TREE_LENGTH` nodes or taller than
    :data:`MAX_TREE_HEIGHT` (computed iteratively, so any depth is measured safely)."""
    if len(tree) > MAX_TREE_LENGTH:
        raise ValueError(f"loss tree {_short(text or str(tree))!r} has {len(tree)} nodes; "
                         f"at most {MAX_TREE_LENGTH} are allowed")
    height, stack = 0, [0]
    for node in tree:
        depth = stack.pop()
        height = depth if depth > height else height
        stack.extend([depth + 1] * node.arity)
        if height > MAX_TREE_HEIGHT:
            raise ValueError(f"loss tree {_short(text or ' '.join(n.name for n in tree[:40]))!r} "
                             f"is taller than {MAX_TREE_HEIGHT} (the most a loss tree may be)")


def _check_well_formed(tree, text: str | None = None) -> None:
    open_slots = 1
    text = _short(text if text is not None else " ".join(node.name for node in tree))
    for i, node in enumerate(tree):
        if open_slots == 0:
            raise ValueError(f"malformed loss tree {text!r}: extra nodes from position {i}")
        open_slots += node.arity - 1
    if open_slots != 0:
        raise ValueError(f"malformed loss tree {text!r}: {open_slots} missing argument(s)")


def parse_tree(text: str, pset: gp.PrimitiveSet | None = None, cls=gp.PrimitiveTree):
    """Parse a tree string such as ``"mul(-1, mul(y, log(fx)))"`` into ``cls`` (a PrimitiveTree).

    Unlike ``gp.PrimitiveTree.from_string`` this refuses tokens that are not in ``pset`` (DEAP
    would ``eval`` them) and trees with the wrong number of arguments: ``ValueError`` naming the
    bad token and the valid ones.
    """
    pset = pset or default_pset()
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"loss tree must be a non-empty string, got {text!r}")
    if len(text) > 20 * MAX_TREE_LENGTH:
        raise ValueError(f"loss tree {_short(text)!r} is {len(text)} characters long; at most "
                         f"{20 * MAX_TREE_LENGTH} are allowed")
    if text.count("(") != text.count(")"):
        raise ValueError(f"unbalanced parentheses in loss tree {text!r}")
    for token in _TOKEN_SPLIT.split(text):
        if token and token not in pset.mapping:
            valid = ", ".join(sorted(pset.mapping))
            raise ValueError(f"unknown primitive or terminal {token!r} in loss tree {text!r}; "
                             f"valid: {valid}")
    tree = cls(gp.PrimitiveTree.from_string(text, pset))
    _check_well_formed(tree, text)
    _check_size(tree, text)
    return tree


def as_tree(tree_or_string, pset: gp.PrimitiveSet | None = None):
    """A PrimitiveTree from a tree or its string (string parsing validated by
    :func:`parse_tree`)."""
    if isinstance(tree_or_string, str):
        return parse_tree(tree_or_string, pset)
    if isinstance(tree_or_string, gp.PrimitiveTree):
        _check_well_formed(tree_or_string)
        _check_size(tree_or_string)
        return tree_or_string
    raise TypeError(f"expected a gp.PrimitiveTree or a string, got {type(tree_or_string).__name__}")


def missing_arguments(tree) -> list[str]:
    """The arguments among ``y`` and ``fx`` that ``tree`` does not use."""
    names = {node.value for node in tree if isinstance(node, gp.Terminal)}
    return [a for a in ARGUMENTS if a not in names]


def correctArguments(tree, pset: gp.PrimitiveSet | None = None, rng=random):
    """Repair a loss tree that lacks ``y`` or ``fx`` (EvoMAL §4.2, reference
    ``_apply_constraints``).

    Exact behaviour: if both arguments occur, nothing changes. Otherwise one terminal node is drawn
    uniformly among the tree's terminals (``rng.randrange``), one primitive uniformly among add,
    sub, mul, div (``rng.randrange(4)``), and the argument order (y, fx) is shuffled
    (``rng.shuffle``); the terminal is replaced in place by ``prim(a, b)``. The result always
    contains both arguments; its height grows by at most one.

    Parameters
    ----------
    tree : deap.gp.PrimitiveTree
        The tree to repair, modified in place (its class and fitness object are kept; a valid
        fitness is invalidated).
    pset : deap.gp.PrimitiveSet, optional
        The primitive set (default: :func:`~deapnn.losses.lossPrimitiveSet`).
    rng : random.Random, optional
        Source of the draws (default: the ``random`` module).

    Returns
    -------
    deap.gp.PrimitiveTree
        ``tree`` itself.

    Examples
    --------
    >>> import random
    >>> from deap import gp
    >>> from deapnn.losses import correctArguments, lossPrimitiveSet
    >>> pset = lossPrimitiveSet()
    >>> tree = gp.PrimitiveTree.from_string("log(y)", pset)         # fx is missing
    >>> str(correctArguments(tree, pset, random.Random(0)))
    'log(div(y, fx))'

    References
    ----------
    Raymond, Chen, Xue & Zhang 2023, "Learning symbolic model-agnostic loss functions via
    meta-learning" (TPAMI, arXiv 2209.08907), §4.2 (argument correction).
    """
    pset = pset or default_pset()
    if not missing_arguments(tree):
        return tree
    terminals = [i for i, node in enumerate(tree) if isinstance(node, gp.Terminal)]
    prim = pset.mapping[ARITHMETIC[rng.randrange(4)]]
    args = [pset.mapping["y"], pset.mapping["fx"]]
    rng.shuffle(args)
    index = terminals[rng.randrange(len(terminals))]
    tree[index:index + 1] = [prim, args[0], args[1]]
    fitness = getattr(tree, "fitness", None)
    if fitness is not None and fitness.valid:
        del fitness.values
    return tree


# ----------------------------------------------------------------- loss semantics (§4.3)
def _check_batch(output, target) -> None:
    """``output`` a floating tensor of at least one case, ``target`` a tensor (else
    ``TypeError``/``ValueError`` naming the argument)."""
    for name, value in (("output", output), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not output.dtype.is_floating_point:
        raise TypeError(f"output must be a floating-point tensor (scores), got dtype "
                        f"{output.dtype}")
    if output.dim() == 0 or output.shape[0] == 0:
        raise ValueError(f"output must hold at least one case, got shape {tuple(output.shape)}")


def _check_range(target: torch.Tensor, high, what: str) -> None:
    """Every value of ``target`` in ``0..high`` — checked for a CPU target only (one
    min/max), never where it would synchronise an accelerator at every training step."""
    if target.device.type != "cpu":
        return
    found = torch.aminmax(target)
    lo, hi = found.min.item(), found.max.item()
    if lo < 0 or hi > high:
        raise ValueError(f"target must hold {what}, got values from {lo:g} to {hi:g}")


def loss_inputs(output: torch.Tensor, target: torch.Tensor, task: str):
    """``(y, fx)`` for the tree: classification → (one-hot, softmax) [sigmoid for one output];
    regression → the raw ``(N, 1)`` tensors (a ``(N,)`` target is viewed as the output's shape).

    ``TypeError``/``ValueError`` naming ``output`` or ``target`` for a batch the loss cannot
    take: no case, scores that are not floating point, targets of another count or shape, and
    (on the CPU) class indices outside ``0..C-1`` (labels outside [0, 1] for one output)."""
    _check_batch(output, target)
    n = output.shape[0]
    if task == "classification":
        if output.dim() != 2:
            raise ValueError("classification output must be (N, C) logits, "
                             f"got {tuple(output.shape)}")
        if output.shape[1] == 1:
            if target.numel() != n or target.dtype.is_complex:
                raise ValueError(f"target must hold {n} labels in [0, 1] for one output, got a "
                                 f"{target.dtype} tensor of shape {tuple(target.shape)}")
            _check_range(target, 1, "labels in [0, 1] for one output")
            return target.reshape(output.shape).to(output.dtype), torch.sigmoid(output)
        if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool \
                or target.shape != output.shape[:1]:
            raise ValueError(f"classification targets must be integer class indices of shape "
                             f"({n},), got a {target.dtype} tensor of shape "
                             f"{tuple(target.shape)}")
        classes = output.shape[1]
        _check_range(target, classes - 1, f"class indices in 0..{classes - 1} (the output's "
                                          f"{classes} scores)")
        return F.one_hot(target.long(), classes).to(output.dtype), torch.softmax(output, 1)
    if task == "regression":
        if target.dim() == 0 or target.shape[0] != n or target.numel() != output.numel():
            raise ValueError(f"target must hold one value per output value, shape "
                             f"{tuple(output.shape)} or ({n},), got shape {tuple(target.shape)}")
        if target.shape != output.shape:
            target = target.reshape(output.shape)
        return target.to(output.dtype), output
    raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")


def reduce_loss(elementwise: torch.Tensor, like: torch.Tensor, nonnegative: bool = False):
    """Optional softplus (element-wise, as the reference's output activation), sum over classes,
    mean over the batch."""
    if not isinstance(elementwise, torch.Tensor) or elementwise.shape != like.shape:
        elementwise = torch.broadcast_to(_t(elementwise).to(like), like.shape)
    if nonnegative:
        elementwise = F.softplus(elementwise)
    return elementwise.reshape(like.shape[0], -1).sum(1).mean()


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    return task


def checked_tree(tree_or_string, pset, correct: bool = False, rng=random) -> gp.PrimitiveTree:
    """The tree of a loss, which must use both ``y`` and ``fx``: a tree missing one is repaired
    with :func:`correctArguments` when ``correct`` (Raymond et al. 2023, §4.2), else rejected
    with ``ValueError``."""
    tree = as_tree(tree_or_string, pset)
    missing = missing_arguments(tree)
    if missing:
        if not correct:
            raise ValueError(f"loss tree {str(tree)!r} does not use {' and '.join(missing)}; "
                             f"pass correct=True to repair it")
        tree = correctArguments(gp.PrimitiveTree(list(tree)), pset, rng)
    return tree


def init_tree_loss(module, tree_or_string, task, pset, nonnegative, correct, rng):
    """Set what every tree loss carries (``task``, ``pset``, ``expression``, ``nonnegative``) on
    ``module``, shared by :class:`TreeLoss` and the meta-loss network; return the checked tree."""
    module.task = check_task(task)
    module.pset = pset or default_pset()
    tree = checked_tree(tree_or_string, module.pset, correct, rng)
    module.expression = str(tree)
    module.nonnegative = bool(nonnegative)
    return tree


class TreeLoss(CompiledLoss):
    """A GP loss tree as a torch loss ``loss(output, target) -> scalar`` (EvoMAL §4.3).

    ``correct=True`` repairs a tree missing an argument with :func:`correctArguments` (using
    ``rng``); otherwise such a tree raises ``ValueError``. ``nonnegative`` applies softplus
    element-wise before the reduction.
    """

    def __init__(self, tree_or_string, task: str = "classification", pset=None,
                 nonnegative: bool = False, correct: bool = False, rng=random):
        super().__init__()
        init_tree_loss(self, tree_or_string, task, pset, nonnegative, correct, rng)
        self._compile()

    def _compile(self) -> None:
        self._fn = gp.compile(self.expression, self.pset)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y, fx = loss_inputs(output, target, self.task)
        return reduce_loss(self._fn(y, fx), fx, self.nonnegative)

    def extra_repr(self) -> str:
        return f"{self.expression!r}, task={self.task!r}, nonnegative={self.nonnegative}"
