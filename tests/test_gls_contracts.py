"""The declared toolbox contract of eaGradientLexicase, the public ablation selector, the
configurations' constraints declared once, the runners' shape and the one config.json layout."""
import json
import os

import numpy as np
import pytest
import torch
from deap import base, tools

import operators
from deapnn.algorithms import eaGradientLexicase
from deapnn.algorithms.contracts import GLSEvaluate, GLSModelFactory, GLSMutate, GLSSelect
from deapnn.algorithms.gradient_lexicase import GLSLoopConfig, checkpoint_logbook
from deapnn.baseline import TrainRunConfig, TrainSummary, run_train
from deapnn.config import ConfigError
from deapnn.data import load_dataset
from deapnn.gls import GLSConfig, GLSSummary, gls_toolbox, make_jobs, run_gls
from deapnn.models import build_model
from deapnn.rundir import RunDir
from deapnn.training import TrainConfig
from operators.gls import mutSubGD, selGradientLexicase, selRandomChild


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris", seed=0)


def _ablation_toolbox(data):
    tb = base.Toolbox()
    tb.register("mutate", mutSubGD, x=data.train.x, y=data.train.y, batch_size=16)
    tb.register("select", operators.selRandomChild)      # as the docstring documents
    return tb


def test_the_documented_ablation_selector_runs_in_the_loop(iris):
    torch.manual_seed(0)
    parent = build_model("mlp", iris.input_shape, iris.num_classes)
    parent, book = eaGradientLexicase(parent, _ablation_toolbox(iris), 4, cfg=TrainConfig(lr=0.05),
                                      population_size=3, seed=2)
    assert [r["gen"] for r in book] == [1, 2, 3, 4]
    assert all(0 <= r["winner"] < 3 and r["cases_examined"] is None for r in book)


def test_deap_selrandom_does_not_fit_the_contract(iris):
    """Why the public selector exists: DEAP's selRandom takes no ``rng``/``info`` keywords."""
    tb = _ablation_toolbox(iris)
    tb.register("select", tools.selRandom)
    parent = build_model("mlp", iris.input_shape, iris.num_classes)
    with pytest.raises(TypeError):
        eaGradientLexicase(parent, tb, 1, cfg=TrainConfig(), population_size=2)


def test_selrandomchild_draws_as_the_generator_says():
    children = list("abcd")
    picked = selRandomChild(children, 5, rng=np.random.default_rng(7), info={})
    idx = np.random.default_rng(7).integers(4, size=5)
    assert picked == [children[i] for i in idx]


def test_toolbox_operators_satisfy_the_protocols(iris):
    tb = gls_toolbox(iris, GLSConfig(dataset="iris", model="mlp", batch_size=16),
                     device=torch.device("cpu"))
    assert isinstance(tb.mutate, GLSMutate) and isinstance(tb.select, GLSSelect)
    assert isinstance(tb.evaluate, GLSEvaluate) and isinstance(tb.model, GLSModelFactory)
    rand = gls_toolbox(iris, GLSConfig(dataset="iris", model="mlp", batch_size=16), "random",
                       device=torch.device("cpu"))
    assert rand.select.func is selRandomChild and tb.select.func is selGradientLexicase


@pytest.mark.parametrize("kw,field", [
    ({"population_size": 1}, "population_size"), ({"momentum_mode": "keep"}, "momentum_mode"),
    ({"init": "x"}, "init"),
    ({"semantics": "loose"}, "semantics"), ({"chunk_size": 0}, "chunk_size"),
    ({"max_cases": 0}, "max_cases"), ({"arms": ["annealing"]}, "arms"), ({"seeds": []}, "seeds"),
    ({"lr": 0.0}, "lr"), ({"weight_decay": -1.0}, "weight_decay"), ({"dataset": "x"}, "dataset"),
    ({"model": "cnn", "dataset": "iris"}, "model"), ({"nesterov": True, "momentum": 0.0},
                                                     "nesterov"),
])
def test_gls_config_names_the_invalid_field(kw, field):
    with pytest.raises(ConfigError) as err:
        GLSConfig(**kw).validate()
    assert err.value.field == field


def test_loop_and_gls_config_share_one_declaration():
    loop = GLSLoopConfig._parameter_constraints
    assert GLSConfig._parameter_constraints["population_size"] is loop["population_size"]
    assert GLSConfig._parameter_constraints["momentum_mode"] is loop["momentum_mode"]
    assert GLSConfig._parameter_constraints["lr"] is TrainConfig._parameter_constraints["lr"]
    assert TrainRunConfig._parameter_constraints["lr"] is TrainConfig._parameter_constraints["lr"]


def test_cli_defaults_come_from_the_dataclasses():
    from deapnn.cli import build_parser
    from deapnn.commands import gls, train
    parser = build_parser()
    assert gls.COMMAND.config_of(parser.parse_args(["gls"])) == GLSConfig()
    assert train.COMMAND.config_of(parser.parse_args(["train"])) == TrainRunConfig()
    assert GLSConfig().weight_decay == 1e-4 and TrainRunConfig().weight_decay == 5e-4
    assert GLSConfig().arms == ["sgd"]


def test_checkpoint_logbook_reads_both_layouts():
    records = [{"gen": 1, "lr": 0.1, "train_loss": 0.5}, {"gen": 2, "lr": 0.05, "val_acc": 0.9}]
    old = checkpoint_logbook({"logbook": records})
    new = checkpoint_logbook({"logbook": {"header": [], "records": records}})
    assert [dict(r) for r in old] == [dict(r) for r in new] == records


def test_run_gls_shape_and_outputs(tmp_path):
    cfg = GLSConfig(dataset="iris", model="mlp", epochs=1, population_size=2, batch_size=16,
                    arms=["random"], seeds=[0]).validate()
    rd = RunDir.create(tmp_path / "run", "gls", cfg)
    messages = []
    summary = run_gls(cfg, rd, log=messages.append)
    assert isinstance(summary, GLSSummary) and messages == []
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert stored["results"] == summary.to_dict()["results"]
    assert set(summary.summary) == {"gls", "random"}
    assert (tmp_path / "run" / "summary.txt").read_text() == summary.table + "\n"
    assert RunDir.resume(tmp_path / "run").stored("gls", GLSConfig) == cfg
    assert [j["arm"] for j in make_jobs(cfg, rd.path)] == ["gls", "random"]


def test_run_train_shape_and_legacy_resume(tmp_path):
    cfg = TrainRunConfig(dataset="iris", model="mlp", epochs=2).validate()
    rd = RunDir.create(tmp_path / "run", "train", cfg, device="cpu")
    summary = run_train(cfg, rd)
    assert isinstance(summary, TrainSummary) and summary.metric == "accuracy"
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == json.loads(
        json.dumps(summary.to_dict()))
    assert RunDir.resume(tmp_path / "run").stored("train", TrainRunConfig) == cfg
    # a run directory of the older layout: the flags at the top level
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps({
        "command": "train", "dataset": "iris", "model": "mlp", "epochs": 2, "lr": 0.1,
        "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4, "batch_size": 64,
        "schedule": "cosine", "no_augment": False, "loss": None, "seed": 0, "root": None,
        "download": False, "quiet": True, "device": "cpu", "workers": 1, "out": str(legacy)}))
    assert RunDir.resume(legacy).stored("train", TrainRunConfig) == cfg
    assert not os.path.exists(legacy / "results.json")
