"""Meta-loss network (Raymond et al. 2023 §4.4): one weight per edge, N(1, 1e-3²) init."""
import pickle

import pytest
import torch
from torch.func import functional_call

from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.tree import TreeLoss

TREES = ["mul(-1, mul(y, log(fx)))", "add(sub(1, -1), max(y, fx))",
         "div(tanh(y), sqrt(min(fx, sign(y))))", "square(sub(y, fx))"]


@pytest.mark.parametrize("text", TREES)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_init_close_and_exact_with_unit_weights(text, task):
    gen = torch.Generator().manual_seed(0)
    if task == "classification":
        out, y = torch.randn(64, 5, generator=gen), torch.randint(0, 5, (64,), generator=gen)
    else:
        out, y = torch.randn(64, 1, generator=gen), torch.randn(64, 1, generator=gen)
    tree, net = TreeLoss(text, task=task), MetaLossNetwork(text, task=task, seed=1)
    ref = float(tree(out, y))
    assert net.n_edges == len(net._tree) - 1
    assert abs(float(net(out, y).detach()) - ref) <= 1e-2 * max(1.0, abs(ref))
    weights = net.weights.detach()
    assert float(weights.std()) < 1e-2 and abs(float(weights.mean()) - 1) < 1e-2
    net.set_weights_to_one()
    assert torch.equal(net(out, y).detach(), tree(out, y))


def test_seeded_init_and_expression():
    a = MetaLossNetwork("add(y, fx)", seed=7)
    b = MetaLossNetwork("add(y, fx)", seed=7)
    c = MetaLossNetwork("add(y, fx)", seed=8)
    assert torch.equal(a.weights, b.weights) and not torch.equal(a.weights, c.weights)
    net = MetaLossNetwork("mul(-1, mul(y, log(fx)))").set_weights([0.5, 2.0, 1.5, -3.0, 1.0])
    assert net.to_expression() == "mul(0.5*(-1), 2*mul(1.5*y, -3*log(1*fx)))"
    x, t = torch.randn(10, 3), torch.randint(0, 3, (10,))
    expected = 0.5 * 2 * 1.5 * -3 * TreeLoss("mul(-1, mul(y, log(fx)))")(x, t)
    assert torch.allclose(net(x, t), expected, atol=1e-6)
    with pytest.raises(ValueError, match="expected 5 edge weights"):
        net.set_weights([1.0])


def test_functional_call_and_gradients_and_pickle():
    net = MetaLossNetwork("square(sub(y, fx))", task="regression", seed=0)
    out, y = torch.randn(20, 1), torch.randn(20, 1)
    w = torch.full((net.n_edges,), 0.5, requires_grad=True)
    val = functional_call(net, {"weights": w}, (out, y))
    # square(0.5 * (0.5 y - 0.5 fx)) = 0.0625 (y - fx)^2
    assert torch.allclose(val, 0.0625 * ((y - out) ** 2).mean(), atol=1e-6)
    (g,) = torch.autograd.grad(val, w)
    assert g.shape == w.shape and torch.isfinite(g).all()
    again = pickle.loads(pickle.dumps(net))
    assert torch.equal(again(out, y), net(out, y))


def test_bad_input():
    with pytest.raises(ValueError, match="does not use y"):
        MetaLossNetwork("log(fx)")
    with pytest.raises(ValueError, match="'exp'"):
        MetaLossNetwork("exp(fx)")
