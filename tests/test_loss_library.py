"""Named loss library and registry (the baselines of Morgan & Hougen 2024 §4; drop-in
nn.Modules)."""
import pickle

import pytest
import torch
import torch.nn.functional as F

import deapnn.losses as losses
from deapnn.losses.graph_ops import EPS


@pytest.fixture(autouse=True)
def _registry(tmp_path, monkeypatch):
    monkeypatch.setenv("DEAPNN_LOSSES", str(tmp_path / "reg.json"))


def _batch(n=128, c=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g), torch.randint(0, c, (n,), generator=g)


def test_builtins_against_oracles():
    z, t = _batch()
    y, p = F.one_hot(t, 7).float(), z.softmax(1)
    assert torch.allclose(losses.get("ce")(z, t), F.cross_entropy(z, t))
    assert torch.allclose(losses.get("label_smoothing")(z, t),
                          F.cross_entropy(z, t, label_smoothing=0.1))
    ls = 0.1
    smooth = y * (1 - ls) + ls / 7
    assert torch.allclose(losses.get("label_smoothing")(z, t),
                          -(smooth * z.log_softmax(1)).sum(1).mean(), atol=1e-6)
    assert torch.allclose(losses.get("mse")(z, t), F.mse_loss(p, y, reduction="sum") / len(z))
    assert torch.allclose(losses.get("baikal")(z, t),
                          -(torch.log(p + EPS) - y / (p + EPS)).sum(1).mean())
    pt = p[torch.arange(len(t)), t]
    assert torch.allclose(losses.get("focal")(z, t), (-(1 - pt) ** 2 * pt.log()).mean(), atol=1e-6)
    # gamma = 0 is plain cross-entropy
    assert torch.allclose(losses.get("focal", gamma=0.0)(z, t), F.cross_entropy(z, t), atol=1e-6)


@pytest.mark.parametrize("name", ["ce", "baikal", "mse", "focal"])
def test_builtin_formulas_match_their_modules(name):
    z, t = _batch(seed=1)
    mod = losses.get(name)
    graph = losses.get(mod.expression)
    assert isinstance(graph, losses.GraphLoss)
    assert torch.allclose(graph(z, t), mod(z, t), atol=1e-5)


def test_formula_register_and_get_by_name(tmp_path):
    z, t = _batch()
    entry = losses.register("neuro_test", "-(y * log(yhat)) + yhat^2", meta={"fitness": 0.9})
    assert entry["expression"] == "-(y * log(yhat)) + yhat^2"
    assert "neuro_test" in losses.available()
    mod = losses.get("neuro_test")
    ref = (-(F.one_hot(t, 7) * torch.log(z.softmax(1) + EPS)) + z.softmax(1) ** 2).sum(1).mean()
    assert torch.allclose(mod(z, t), ref, atol=1e-6)
    # a second registry file (e.g. a run directory) is independent
    other = tmp_path / "run"
    other.mkdir()
    losses.register("only_here", "y * log(yhat)", path=other)
    assert "only_here" in losses.available(other) and "only_here" not in losses.available()
    back = pickle.loads(pickle.dumps(mod))
    assert torch.allclose(back(z, t), mod(z, t))
    z.requires_grad_()
    back(z, t).backward()
    assert torch.isfinite(z.grad).all()


def test_bad_names_fail_clearly():
    with pytest.raises(ValueError, match="unknown loss 'nosuch'; valid names: .*baikal"):
        losses.get("nosuch")
    with pytest.raises(ValueError, match="unknown op 'cos'"):
        losses.get("cos(yhat) * y")
    with pytest.raises(ValueError, match="built-in"):
        losses.register("ce", "y * yhat")
    with pytest.raises(ValueError, match="invalid loss name"):
        losses.register("a b", "y * yhat")
    with pytest.raises(ValueError, match="focal gamma"):
        losses.get("focal", gamma=-1)


def test_resolve_loss_for_train_command():
    z, t = _batch()
    assert torch.allclose(losses.resolve_loss(None)(z, t), F.cross_entropy(z, t))
    assert torch.allclose(losses.resolve_loss("-(y * log(yhat))")(z, t), F.cross_entropy(z, t),
                          atol=1e-5)
