"""EvoMAL's base networks follow the reference (Raymond et al. 2023 code): the MLP has two hidden
layers of 1000 units (``experiments/resources/models/mlp.py``), and every network EvoMAL trains —
local search, rejection, fitness, final training — starts from Xavier-uniform weights and zero
biases (the models' ``reset()``); PyTorch's default initialisation and any width stay options."""
import math

import pytest
import torch
from torch import nn

from deapnn.evomal import compare, evaluator
from deapnn.evomal.config import EvoMALConfig
from deapnn.evomal.evaluator import EvoMALEvaluator, build_base_model
from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.unrolled import LocalSearchConfig, local_search
from deapnn.models.init import initialise
from deapnn.models.small import MLP
from evomal_helpers import toy_data


def _linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _is_xavier(model) -> bool:
    """Zero biases, and weights inside the Xavier-uniform bound that reach past PyTorch's
    default (Kaiming-uniform, bound 1/sqrt(fan_in)) bound."""
    for layer in _linears(model):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        top = float(layer.weight.detach().abs().max())
        if torch.count_nonzero(layer.bias) or top > bound or \
                (fan_in > 2 * fan_out and top <= 1 / math.sqrt(fan_in)):
            return False
    return True


def test_default_base_network_is_the_reference_mlp_with_xavier_weights():
    data = toy_data()
    model = build_base_model(EvoMALConfig(dataset="diabetes"), data, seed=3)
    shapes = [tuple(layer.weight.shape) for layer in _linears(model)]
    assert shapes == [(1000, 5), (1000, 1000), (1, 1000)]
    assert _is_xavier(model)
    # the 1000 x 1000 layer: the Xavier-uniform spread, sqrt(6 / 2000) / sqrt(3)
    spread = float(_linears(model)[1].weight.detach().std())
    assert spread == pytest.approx(math.sqrt(1 / 1000), rel=0.01)
    again = build_base_model(EvoMALConfig(dataset="diabetes"), data, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values()))
    assert EvoMALConfig().to_dict()["hidden"] == [1000, 1000]
    assert EvoMALConfig(model="cnn", dataset="digits").to_dict()["hidden"] is None


def test_earlier_networks_are_options_bit_for_bit():
    data = toy_data()
    cfg = EvoMALConfig(dataset="diabetes", hidden=(256, 256), init="pytorch")
    model = build_base_model(cfg, data, seed=3)
    torch.manual_seed(3)
    before = MLP(data.input_shape, data.num_classes, hidden=(256, 256))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 before.state_dict().values()))
    assert not _is_xavier(model)


def test_xavier_reaches_conv_layers_and_leaves_norm_layers_alone():
    cfg = EvoMALConfig(dataset="digits", model="cnn")
    from deapnn.data.base import Dataset, Split
    x = torch.zeros(4, 1, 8, 8)
    data = Dataset("img", "classification", (1, 8, 8), 10, *(Split(x, torch.zeros(4).long()),) * 3)
    model = build_base_model(cfg, data, seed=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.bias is None or not torch.count_nonzero(c.bias) for c in convs)
    for conv in convs:
        fan_in = conv.weight[0].numel()
        fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()
        assert float(conv.weight.detach().abs().max()) <= math.sqrt(6 / (fan_in + fan_out))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(torch.all(n.weight == 1) for n in norms)
    with pytest.raises(ValueError, match="unknown initialisation"):
        initialise(model, "he")


def test_the_local_search_redraws_its_network_with_xavier_every_meta_step():
    data = toy_data()
    template = MLP(data.input_shape, 1, hidden=(16,))
    net = MetaLossNetwork("square(sub(y, fx))", task="regression")
    seen = []
    real = evaluator.local_search.__globals__["reinitialise"]

    def spy(model, seed, init="xavier"):
        real(model, seed, init)
        seen.append(_is_xavier(model))
    evaluator.local_search.__globals__["reinitialise"] = spy
    try:
        local_search(net, template, (data.train.x, data.train.y), (data.val.x, data.val.y),
                     "regression", LocalSearchConfig(meta_steps=3, batch_size=16))
        assert seen == [True] * 3
        seen.clear()
        local_search(net, template, (data.train.x, data.train.y), (data.val.x, data.val.y),
                     "regression", LocalSearchConfig(meta_steps=2, batch_size=16,
                                                     init="pytorch"))
        assert seen == [False] * 2
    finally:
        evaluator.local_search.__globals__["reinitialise"] = real


def test_every_network_an_evaluation_and_the_final_training_train_is_xavier(monkeypatch):
    built = []
    real = build_base_model

    def spy(cfg, data, seed):
        model = real(cfg, data, seed)
        built.append(_is_xavier(model))
        return model
    monkeypatch.setattr(evaluator, "build_base_model", spy)
    monkeypatch.setattr(compare, "build_base_model", spy)
    cfg = EvoMALConfig(hidden=(8,), meta_steps=2, fitness_steps=5, rejection_steps=5,
                       batch_size=16)
    result = EvoMALEvaluator(cfg, toy_data())("square(sub(y, fx))")
    assert result.info["reason"] is None
    assert built == [True] * 3              # local-search template, rejection, fitness
    built.clear()
    EvoMALEvaluator(EvoMALConfig(**{**cfg.to_dict(), "init": "pytorch", "hidden": (8,)}),
                    toy_data())("square(sub(y, fx))")
    assert built == [False] * 3
    built.clear()
    final = compare.train_final({"tree": "square(sub(y, fx))"}, toy_data(), cfg, [0, 1],
                                steps=3, eval_every=0, device=torch.device("cpu"))
    assert set(final) == {"EvoMAL", "MSE"} and built == [True] * 4   # 2 losses x 2 seeds


def test_the_tuned_comparison_of_a_resumed_run_reuses_its_trainings(monkeypatch):
    """config.json stores the resolved width (1000,1000), a fresh run has hidden None: the
    trainings' identity names the resolved width, and a state stored with None (before it did)
    is this run's."""
    import deapnn.comparison
    from deapnn.evomal.config import EvoMALRunConfig
    seen = []
    monkeypatch.setattr(deapnn.comparison, "tuned_comparison",
                        lambda *a, **kw: seen.append((kw["state"], kw["ident"])) or {})
    best = {"tree": "square(sub(y, fx))", "evaluated": "square(sub(y, fx))", "weights": [1] * 3}
    fresh = EvoMALRunConfig(dataset="diabetes")
    resumed = EvoMALRunConfig(**fresh.to_dict())
    compare.compare_tuned(best, fresh, "regression")
    ident = seen[-1][1]
    assert ident["hidden"] == [1000, 1000]
    old = {"ident": {**ident, "hidden": None}, "results": {}}
    compare.compare_tuned(best, resumed, "regression", state=old)
    assert seen[-1][0]["ident"] == seen[-1][1] == ident
    narrow = EvoMALRunConfig(dataset="diabetes", hidden=(256, 256))
    compare.compare_tuned(best, narrow, "regression", state={"ident": ident, "results": {}})
    assert seen[-1][0]["ident"] != seen[-1][1]
