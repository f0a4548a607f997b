"""EvoMAL loss trees (Raymond et al. 2023 §4.1-4.3): primitive set, parsing, correction,
TreeLoss."""
import pickle
import random

import pytest
import torch
import torch.nn.functional as F
from deap import gp

from deapnn.losses.tree import (TreeLoss, correctArguments, lossPrimitiveSet, missing_arguments,
                                parse_tree)
import deapnn.losses.tree as T


def test_primitive_set_contents_and_pickle():
    pset = lossPrimitiveSet()
    assert pset.arguments == ["y", "fx"]
    prims = {p.name: p.arity for p in pset.primitives[object]}
    assert prims == {"add": 2, "sub": 2, "mul": 2, "div": 2, "min": 2, "max": 2, "sign": 1,
                     "square": 1, "abs": 1, "log": 1, "sqrt": 1, "tanh": 1}
    assert [p.name for p in pset.primitives[object][:4]] == ["add", "sub", "mul", "div"]
    terms = sorted(t.value for t in pset.terminals[object])
    assert terms == sorted(["y", "fx", "1", "-1"])
    assert "exp" not in pset.mapping
    again = pickle.loads(pickle.dumps(pset))
    tree = parse_tree("mul(-1, mul(y, log(fx)))", again)
    assert str(tree) == "mul(-1, mul(y, log(fx)))"
    assert str(gp.PrimitiveTree.from_string("mul(-1, mul(y, log(fx)))", pset)) == str(tree)


def test_primitive_values_on_tensors_and_floats():
    a = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.allclose(T.div(a, torch.tensor(2.0)), a / 5 ** 0.5)
    assert T.div(1.0, 0.0) == 1.0
    assert torch.allclose(T.log(a), torch.log(torch.tensor([2.0, 1e-7, 3.0])))
    assert torch.allclose(T.sqrt(a), torch.sqrt(torch.tensor([2.0, 1e-7, 3.0])))
    assert float(T.max(-1.0, 1.0)) == 1.0 and float(T.min(-1.0, a)[2]) == -1.0
    assert float(T.sign(-1.0)) == -1.0 and float(T.tanh(0.0)) == 0.0
    assert float(T.abs(-1.0)) == 1.0 and T.square(-1.0) == 1.0
    assert torch.equal(T.sign(a), torch.tensor([-1.0, 0.0, 1.0]))


def test_cross_entropy_tree_matches_F_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(256, 10, generator=gen) * 2          # softmax stays above 1e-7
    target = torch.randint(0, 10, (256,), generator=gen)
    assert torch.softmax(logits, 1).min() > 1e-7
    loss = TreeLoss("mul(-1, mul(y, log(fx)))")
    assert abs(float(loss(logits, target)) - float(F.cross_entropy(logits, target))) < 1e-5
    # gradients agree as well
    l1 = logits.clone().requires_grad_()
    l2 = logits.clone().requires_grad_()
    loss(l1, target).backward()
    F.cross_entropy(l2, target).backward()
    assert torch.allclose(l1.grad, l2.grad, atol=1e-6)


def test_mse_tree_matches_F_mse_loss():
    gen = torch.Generator().manual_seed(1)
    pred, y = torch.randn(100, 1, generator=gen), torch.randn(100, 1, generator=gen)
    loss = TreeLoss("square(sub(y, fx))", task="regression")
    assert torch.allclose(loss(pred, y), F.mse_loss(pred, y), atol=1e-7, rtol=0)
    assert torch.allclose(loss(pred, y.view(-1)), F.mse_loss(pred, y), atol=1e-7, rtol=0)


def test_binary_single_output_uses_sigmoid():
    logits = torch.randn(50, 1)
    y = torch.randint(0, 2, (50,))
    bce = TreeLoss("mul(-1, add(mul(y, log(fx)), mul(sub(1, y), log(sub(1, fx)))))")
    expected = F.binary_cross_entropy_with_logits(logits, y.float().view(-1, 1))
    assert torch.allclose(bce(logits, y), expected, atol=1e-5)


def test_nonnegative_softplus_and_pickle():
    x, t = torch.randn(8, 3), torch.randint(0, 3, (8,))
    neg = TreeLoss("mul(-1, add(y, fx))")
    pos = TreeLoss("mul(-1, add(y, fx))", nonnegative=True)
    y, fx = F.one_hot(t, 3).float(), torch.softmax(x, 1)
    assert torch.allclose(pos(x, t), F.softplus(-(y + fx)).sum(1).mean())
    assert float(neg(x, t)) < 0 < float(pos(x, t))
    again = pickle.loads(pickle.dumps(pos))
    assert torch.equal(again(x, t), pos(x, t))


@pytest.mark.parametrize("text,match", [
    ("exp(y)", "'exp'"), ("add(y, 2)", "'2'"), ("foo(y, fx)", "'foo'"),
    ("add(y)", "missing argument"), ("add(y, fx, y)", "extra nodes"), ("add(y, fx", "parenthes"),
    ("", "non-empty"),
])
def test_bad_strings_raise_value_error(text, match):
    with pytest.raises(ValueError, match=match):
        TreeLoss(text)


def test_bad_task_and_missing_argument():
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        TreeLoss("add(y, fx)", task="ranking")
    with pytest.raises(ValueError, match="does not use fx"):
        TreeLoss("log(y)")
    with pytest.raises(ValueError, match="does not use y and fx"):
        TreeLoss("add(1, -1)")
    fixed = TreeLoss("log(y)", correct=True, rng=random.Random(3))
    assert not missing_arguments(parse_tree(fixed.expression))


def test_correct_arguments_exact_behaviour():
    pset = lossPrimitiveSet()
    assert str(correctArguments(parse_tree("add(y, fx)"), pset)) == "add(y, fx)"
    seen = set()
    for seed in range(200):
        rng = random.Random(seed)
        tree = parse_tree("add(log(y), -1)")
        out = correctArguments(tree, pset, rng)
        assert out is tree
        assert not missing_arguments(tree)
        assert tree.height <= 3 and len(tree) == 6
        # replay the documented draws
        ref = random.Random(seed)
        op = ["add", "sub", "mul", "div"][ref.randrange(4)]
        args = ["y", "fx"]
        ref.shuffle(args)
        idx = [2, 3][ref.randrange(2)]
        expected = {2: f"add(log({op}({args[0]}, {args[1]})), -1)",
                    3: f"add(log(y), {op}({args[0]}, {args[1]}))"}[idx]
        assert str(tree) == expected
        seen.add(str(tree))
    assert len(seen) == 16   # 4 ops x 2 orders x 2 terminals


def test_correct_arguments_invalidates_fitness():
    from deap import base, creator
    if not hasattr(creator, "TreeLossFit"):
        creator.create("TreeLossFit", base.Fitness, weights=(-1.0,))
        creator.create("TreeLossInd", gp.PrimitiveTree, fitness=creator.TreeLossFit)
    ind = parse_tree("square(fx)", cls=creator.TreeLossInd)
    ind.fitness.values = (1.0,)
    correctArguments(ind, lossPrimitiveSet(), random.Random(0))
    assert not ind.fitness.valid and type(ind).__name__ == "TreeLossInd"
