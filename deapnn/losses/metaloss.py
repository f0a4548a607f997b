"""The EvoMAL meta-loss network: a loss tree with one learnable scalar per edge.

Raymond et al. 2023 (TPAMI, arXiv 2209.08907) §4.4 "Symbolic to neural network transformation":
each edge of the expression tree carries a weight that multiplies the child's output before it
enters its parent; weights start at N(1, 1e-3²) so the untrained network equals the symbolic
formula, and are then trained by unrolled differentiation (§4.5, :mod:`deapnn.losses.unrolled`).

The weights are one parameter vector ``weights`` (edge k is the tree node k+1 in prefix order), so
``torch.func.functional_call(net, {"weights": w}, (output, target))`` evaluates the loss for any
``w``. The forward pass is generated Python code over the same torch primitives as
:class:`~deapnn.losses.tree.TreeLoss`.
"""
from __future__ import annotations

import random

import torch
from torch import nn

from deapnn.losses.compiled import CompiledLoss
from deapnn.losses.tree import init_tree_loss, loss_inputs, reduce_loss


def _edge_strings(tree, leaf, weighted) -> str:
    """Fold ``tree`` (prefix order) bottom-up into one string.

    ``leaf(node)`` renders a terminal; ``weighted(k, text)`` wraps the output of node ``k`` (k ≥ 1,
    i.e. every node but the root) with its edge weight.
    """
    stack: list[tuple[int, object, list[str]]] = []
    result = ""
    for i, node in enumerate(tree):
        stack.append((i, node, []))
        while len(stack[-1][2]) == stack[-1][1].arity:
            k, prim, args = stack.pop()
            text = f"{prim.name}({', '.join(args)})" if prim.arity else leaf(prim)
            if k > 0:
                text = weighted(k, text)
            if not stack:
                result = text
                break
            stack[-1][2].append(text)
    return result


def _leaf(node) -> str:
    value = node.value
    return value if value in ("y", "fx") else f"({value})"


def compile_weighted(tree, pset) -> tuple[callable, str]:
    """Compile ``tree`` to ``f(w, y, fx)`` where ``w[k-1]`` weighs the edge above node ``k``."""
    n_edges = len(tree) - 1
    body = _edge_strings(tree, _leaf, lambda k, text: f"_w{k - 1}*{text}")
    names = ", ".join(f"_w{k}" for k in range(n_edges))
    unpack = f"    {names}{',' if n_edges == 1 else ''} = w.unbind(0)\n" if n_edges else ""
    source = f"def _meta_loss(w, y, fx):\n{unpack}    return {body}\n"
    namespace = dict(pset.context)
    exec(compile(source, "<meta-loss>", "exec"), namespace)
    return namespace["_meta_loss"], source


class MetaLossNetwork(CompiledLoss):
    """Meta-loss network for a loss tree (EvoMAL §4.4), ``forward(output, target)`` with the
    semantics of :class:`~deapnn.losses.tree.TreeLoss`.

    Parameters: ``weights`` (one per edge, ``len(tree) - 1``), drawn from N(1, ``init_std``²) with
    ``generator`` or ``seed`` (else the global torch RNG).
    """

    def __init__(self, tree_or_string, task: str = "classification", pset=None,
                 nonnegative: bool = False, correct: bool = False, init_std: float = 1e-3,
                 seed: int | None = None, generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None, rng=random):
        super().__init__()
        tree = init_tree_loss(self, tree_or_string, task, pset, nonnegative, correct, rng)
        self.n_edges = len(tree) - 1
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        init = torch.randn(self.n_edges, generator=generator, dtype=dtype) * init_std + 1.0
        self.weights = nn.Parameter(init)
        self._tree = tree
        self._compile()

    def _compile(self) -> None:
        self._fn, self.source = compile_weighted(self._tree, self.pset)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y, fx = loss_inputs(output, target, self.task)
        return reduce_loss(self._fn(self.weights.to(fx.dtype), y, fx), fx, self.nonnegative)

    @torch.no_grad()
    def set_weights_to_one(self) -> MetaLossNetwork:
        """All edge weights = 1: the network then computes exactly its symbolic tree."""
        self.weights.fill_(1.0)
        return self

    @torch.no_grad()
    def set_weights(self, values) -> MetaLossNetwork:
        """Load edge weights (a list or tensor of ``n_edges`` numbers, e.g. from an archive)."""
        values = torch.as_tensor(values, dtype=self.weights.dtype)
        if values.shape != self.weights.shape:
            raise ValueError(f"expected {self.n_edges} edge weights, got {tuple(values.shape)}")
        self.weights.copy_(values)
        return self

    def weight_list(self) -> list[float]:
        """The learned edge weights as Python floats."""
        return [float(w) for w in self.weights.detach().cpu()]

    def to_expression(self, digits: int = 4) -> str:
        """The formula with its learned edge weights, e.g. ``mul(1.0002*(-1), 0.9987*mul(...))``."""
        w = self.weight_list()
        return _edge_strings(self._tree, _leaf, lambda k, text: f"{w[k - 1]:.{digits}g}*{text}")

    def extra_repr(self) -> str:
        return f"{self.expression!r}, task={self.task!r}, edges={self.n_edges}"
