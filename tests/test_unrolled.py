"""Unrolled-differentiation local search (Raymond et al. 2023 §4.5): meta-gradient vs finite
differences, K validation, NaN handling."""
import pytest
import torch
from torch import nn

from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.unrolled import (LocalSearchConfig, UnrolledDivergence, local_search, sgd_step,
                                    unrolled_validation_loss)


def _tiny(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3)).to(dtype)


def _val(net, w, model, params, batches, val, cfg):
    return unrolled_validation_loss(net, {"weights": w}, model, params, batches, val, cfg,
                                    "classification")


@pytest.mark.parametrize("k,momentum,nesterov,wd", [(1, 0.0, False, 0.0), (3, 0.9, False, 5e-4),
                                                     (3, 0.9, True, 5e-4)])
def test_meta_gradient_matches_central_differences(k, momentum, nesterov, wd):
    gen = torch.Generator().manual_seed(k)
    model = _tiny()
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    batches = [(torch.randn(16, 3, generator=gen, dtype=torch.float64),
                torch.randint(0, 3, (16,), generator=gen)) for _ in range(k)]
    val = (torch.randn(32, 3, generator=gen, dtype=torch.float64),
           torch.randint(0, 3, (32,), generator=gen))
    cfg = LocalSearchConfig(inner_steps=k, lr=0.5, momentum=momentum, nesterov=nesterov,
                            weight_decay=wd)
    net = MetaLossNetwork("add(mul(-1, mul(y, log(fx))), tanh(square(sub(fx, y))))",
                          seed=0, dtype=torch.float64)
    w = net.weights.detach().clone().requires_grad_(True)
    p = {n: t.clone().requires_grad_(True) for n, t in params.items()}
    (grad,) = torch.autograd.grad(_val(net, w, model, p, batches, val, cfg), w)
    h, fd = 1e-6, torch.zeros_like(w)
    with torch.enable_grad():   # inner gradients need autograd even without a meta-gradient
        for i in range(len(w)):
            e = torch.zeros_like(w)
            e[i] = h
            vals = []
            for sign in (1, -1):
                p = {n: t.clone().requires_grad_(True) for n, t in params.items()}
                vals.append(float(_val(net, (w + sign * e).detach(), model, p, batches, val,
                                       cfg).detach()))
            fd[i] = (vals[0] - vals[1]) / (2 * h)
    rel = float((grad - fd).norm() / fd.norm())
    assert fd.norm() > 1e-4 and rel < 1e-3, rel


def test_sgd_step_matches_torch_optim():
    torch.manual_seed(0)
    for nesterov in (False, True):
        p = torch.randn(4, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
        params, bufs = {"p": p.detach().clone()}, None
        for _ in range(3):
            g = torch.randn(4)
            p.grad = g.clone()
            opt.step()
            params, bufs = sgd_step(params, [g], bufs, 0.1, 0.9, nesterov, 0.01)
        assert torch.allclose(params["p"], p.detach(), atol=1e-6)


def _regression_data(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen)
    y = x @ torch.randn(4, 1, generator=gen)
    return x, y


def test_local_search_reduces_task_loss_and_is_seeded():
    torch.set_num_threads(1)
    x, y = _regression_data()
    cfg = LocalSearchConfig(meta_steps=30, inner_steps=2, meta_lr=1e-2, batch_size=32,
                            val_batch_size=32)

    def run():
        net = MetaLossNetwork("square(sub(y, fx))", task="regression", seed=0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        return net, local_search(net, model, (x[:48], y[:48]), (x[48:], y[48:]), "regression",
                                 cfg, seed=3)
    net, res = run()
    net2, res2 = run()
    assert len(res.losses) == 30 and res.losses == res2.losses and res.weights == res2.weights
    assert net.weight_list() == res.weights and res.weights != [1.0] * net.n_edges
    # the weights grew the effective learning rate: later meta-steps reach a lower task loss
    # (thirds of the run: each meta-step starts from a freshly drawn network, so single steps
    # are noisy)
    assert min(res.weights) > 1 and sum(res.losses[-10:]) < 0.9 * sum(res.losses[:10])


def test_bad_k_and_config():
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="inner_steps"):
            LocalSearchConfig(inner_steps=bad).validate()
    with pytest.raises(ValueError, match="momentum"):
        LocalSearchConfig(momentum=1.0).validate()
    with pytest.raises(ValueError, match="nesterov"):
        LocalSearchConfig(momentum=0.0, nesterov=True).validate()


def test_nan_in_inner_steps_raises_divergence():
    x, y = _regression_data()
    y[:] = float("nan")
    net = MetaLossNetwork("square(sub(y, fx))", task="regression", seed=0)
    model = nn.Sequential(nn.Linear(4, 1))
    with pytest.raises(UnrolledDivergence, match="inner step 0"):
        local_search(net, model, (x, y), (x, y), "regression", LocalSearchConfig(meta_steps=2))
