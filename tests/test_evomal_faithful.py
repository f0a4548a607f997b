"""EvoMAL faithful by default (Raymond et al. 2023 §4.6 rejection protocol, §4.7 fitness; the
reference code's protocol and seeds): the rejection protocol runs after the local search on a
fresh network's outputs for the first training rows with their labels, every candidate is
evaluated with the same seed, and ``generations`` counts populations. The earlier behaviour
stays available (``rejection="before"``, ``fitness_seed="per_tree"``)."""
import dataclasses

import pytest
import torch

import deapnn.evomal.evaluator as evaluator_module
from deapnn.config import ConfigError
from deapnn.evomal.config import EvoMALConfig, EvoMALRunConfig, reference_rejection_steps
from deapnn.evomal.evaluator import EvoMALEvaluator, build_base_model
from deapnn.evomal.rejection import reference_rejection
from deapnn.loss_training import prediction_error
from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.tree import TreeLoss
from evomal_helpers import toy_data as _data


def _cfg(**kw):
    base = dict(hidden=(8,), meta_steps=4, inner_steps=2, fitness_steps=30, rejection_steps=60,
                batch_size=32, rejection_samples=40)
    base.update(kw)
    return EvoMALConfig(**base)


# --- the reference rejection protocol -------------------------------------------------------------
def test_reference_rejection_starts_from_the_network_outputs_on_the_first_rows():
    data = _data()
    model = build_base_model(_cfg(), data, 3)
    x, y = data.train.x, data.train.y
    res = reference_rejection(TreeLoss("square(sub(y, fx))", task="regression"), model, x, y,
                              "regression", n=40, steps=50, lr=0.01)
    with torch.no_grad():
        oracle = prediction_error(model(x[:40]), y[:40], "regression")
    assert res.before == pytest.approx(oracle, rel=1e-6)       # outputs of rows 0..39, real labels
    assert res.accepted and res.after < res.before
    worse = reference_rejection(TreeLoss("mul(-1, square(sub(y, fx)))", task="regression"),
                                model, x, y, "regression", n=40, steps=50, lr=0.01)
    assert not worse.accepted and "did not improve" in worse.reason
    assert worse.before == res.before


def test_reference_rejection_classification_uses_the_real_labels():
    data = _data("classification")
    model = build_base_model(_cfg(), data, 1)
    ce = TreeLoss("mul(-1, mul(y, log(fx)))")
    res = reference_rejection(ce, model, data.train.x, data.train.y, "classification", n=40,
                              steps=100, lr=0.05)
    assert res.accepted and res.after < res.before
    # labels permuted: the same predictions, other targets — other starting error
    shuffled = data.train.y[torch.randperm(60, generator=torch.Generator().manual_seed(0))]
    other = reference_rejection(ce, model, data.train.x, shuffled, "classification", n=40,
                                steps=100, lr=0.05)
    with torch.no_grad():
        assert other.before == prediction_error(model(data.train.x[:40]), shuffled[:40],
                                                "classification")


def test_rejection_does_not_train_the_loss_weights():
    data = _data()
    net = MetaLossNetwork("square(sub(y, fx))", task="regression", seed=0)
    before = net.weight_list()
    reference_rejection(net, build_base_model(_cfg(), data, 0), data.train.x, data.train.y,
                        "regression", n=20, steps=20)
    assert net.weight_list() == before and net.weights.grad is None


def _order(monkeypatch):
    calls = []
    for name in ("local_search", "reference_rejection", "rejection_protocol"):
        real = getattr(evaluator_module, name)

        def spy(*args, _real=real, _name=name, **kw):
            calls.append((_name, args[0]))
            return _real(*args, **kw)
        monkeypatch.setattr(evaluator_module, name, spy)
    return calls


def test_default_rejection_runs_after_the_local_search_on_the_learned_loss(monkeypatch):
    calls = _order(monkeypatch)
    ev = EvoMALEvaluator(_cfg(), _data())
    assert ev.config.rejection == "reference"
    bad = ev("mul(-1, square(sub(y, fx)))")
    assert bad.fitness == float("inf") and bad.info["rejected"]
    assert "did not improve" in bad.info["reason"]
    # rejected after the local search: its learned weights are reported
    assert len(bad.info["weights"]) == 5 and len(bad.info["meta_loss"]) == 2
    assert [c[0] for c in calls] == ["local_search", "reference_rejection"]
    learned = calls[1][1]
    assert isinstance(learned, MetaLossNetwork) and learned is calls[0][1]
    assert learned.weight_list() == bad.info["weights"]
    good = ev("square(sub(y, fx))")
    assert good.info["reason"] is None and good.fitness < float("inf")


def test_before_option_screens_the_unweighted_tree_before_the_local_search(monkeypatch):
    calls = _order(monkeypatch)
    ev = EvoMALEvaluator(_cfg(rejection="before"), _data())
    bad = ev("mul(-1, square(sub(y, fx)))")
    assert bad.fitness == float("inf") and "did not improve" in bad.info["reason"]
    assert bad.info["weights"] == [] and [c[0] for c in calls] == ["rejection_protocol"]
    assert isinstance(calls[0][1], TreeLoss)
    calls.clear()
    ev("square(sub(y, fx))")
    assert [c[0] for c in calls] == ["rejection_protocol", "local_search"]


def test_rejection_steps_default_to_the_reference_configuration():
    assert reference_rejection_steps("mnist") == 100 and reference_rejection_steps("digits") == 100
    assert reference_rejection_steps("diabetes") == 1000
    assert reference_rejection_steps("cifar10") == 1000
    assert EvoMALConfig(dataset="digits").steps_of_rejection() == 100
    assert EvoMALConfig(dataset="diabetes").steps_of_rejection() == 1000
    assert EvoMALConfig(dataset="digits", rejection_steps=7).steps_of_rejection() == 7


# --- common random numbers ------------------------------------------------------------------------
def _fitness_draws(monkeypatch, cfg, trees):
    """For each tree: the fitness network's initial parameters, its batch seed and the local
    search's seed."""
    seen = []
    real_train, real_ls = evaluator_module.train_with_loss, evaluator_module.local_search

    def train(model, loss, data, recipe, *, batch_seed, device, **kw):
        seen[-1]["init"] = [p.detach().clone() for p in model.parameters()]
        seen[-1]["batches"] = batch_seed
        return real_train(model, loss, data, recipe, batch_seed=batch_seed, device=device, **kw)

    def search(net, template, train_, val, task, ls_cfg, seed, device):
        seen[-1]["search"] = seed
        return real_ls(net, template, train_, val, task, ls_cfg, seed, device)
    monkeypatch.setattr(evaluator_module, "train_with_loss", train)
    monkeypatch.setattr(evaluator_module, "local_search", search)
    ev = EvoMALEvaluator(cfg, _data())
    for tree in trees:
        seen.append({})
        assert ev(tree).info["reason"] is None
    return seen


def test_common_seed_gives_every_tree_the_same_network_and_batches(monkeypatch):
    a, b = _fitness_draws(monkeypatch, _cfg(), ["square(sub(y, fx))", "abs(sub(fx, y))"])
    assert all(torch.equal(p, q) for p, q in zip(a["init"], b["init"]))
    assert a["batches"] == b["batches"] and a["search"] == b["search"]


def test_per_tree_seed_option_keeps_the_tree_derived_seeds(monkeypatch):
    a, b = _fitness_draws(monkeypatch, _cfg(fitness_seed="per_tree"),
                          ["square(sub(y, fx))", "abs(sub(fx, y))"])
    assert not all(torch.equal(p, q) for p, q in zip(a["init"], b["init"]))
    assert a["batches"] != b["batches"] and a["search"] != b["search"]


@pytest.mark.parametrize("fitness_seed", ["common", "per_tree"])
def test_result_does_not_depend_on_evaluation_order_or_process(fitness_seed):
    """What a SCOOP worker computes for a tree is what this process computes, whatever it
    evaluated before."""
    import pickle
    trees = ["square(sub(y, fx))", "abs(sub(fx, y))", "tanh(square(sub(y, fx)))"]
    cfg = _cfg(fitness_seed=fitness_seed)
    forward = [EvoMALEvaluator(cfg, _data())(t) for t in trees]
    worker = pickle.loads(pickle.dumps(EvoMALEvaluator(cfg, _data())))
    backward = [worker(t) for t in reversed(trees)][::-1]
    assert forward == backward


# --- generations count populations; configuration -------------------------------------------------
def test_config_options_are_validated_and_name_the_field():
    for field, value in (("rejection", "after"), ("fitness_seed", "tree"), ("generations", 0),
                         ("rejection_steps", 0)):
        with pytest.raises(ConfigError) as info:
            dataclasses.replace(EvoMALRunConfig(), **{field: value}).validate()
        assert info.value.field == field
    cfg = EvoMALRunConfig(generations=5)
    assert cfg.ngen() == 4 and cfg.rejection == "reference" and cfg.fitness_seed == "common"
    assert cfg.evaluation().rejection == "reference"


def _read_back(block: dict) -> EvoMALRunConfig:
    """A version-0 config.json's block, read as a resumed run reads it (the migration table)."""
    from deapnn.results import CONFIG_FILE, migrate
    files = migrate({CONFIG_FILE: {"command": "evomal", "config": block}})
    return EvoMALRunConfig.from_dict(files[CONFIG_FILE]["config"])


def test_config_json_written_before_the_options_resumes_with_the_earlier_behaviour():
    stored = EvoMALRunConfig(generations=3, rejection_steps=50).to_dict()
    assert _read_back(stored).generations == 3      # a config.json with the options
    old = {k: v for k, v in stored.items() if k not in ("rejection", "fitness_seed")}
    back = _read_back(old)
    assert back.rejection == "before" and back.fitness_seed == "per_tree"
    assert back.generations == 4 and back.ngen() == 3 and back.rejection_steps == 50


def test_report_counts_the_populations_of_either_config_json():
    from deapnn.report.search import _evomal_populations
    assert _evomal_populations(EvoMALRunConfig(generations=5).to_dict()) == 5
    old = {k: v for k, v in EvoMALRunConfig(generations=5).to_dict().items()
           if k not in ("rejection", "fitness_seed")}
    assert _evomal_populations(_read_back(old).to_dict()) == 6   # it counted the ones after it


# --- the reference's base-learner SGD and meta-testing schedule per dataset ----------------------
def _sgd(cfg):
    return cfg.momentum, cfg.nesterov, cfg.weight_decay


def test_sgd_settings_default_to_the_reference_configuration_of_the_dataset():
    from deapnn.evomal.evaluator import training_recipe
    mnist = EvoMALConfig(dataset="mnist")
    assert _sgd(mnist) == (0.0, False, 0.0)            # its mnist_config.yaml
    recipe = training_recipe(mnist, 500)
    assert (recipe.momentum, recipe.nesterov, recipe.weight_decay) == (0.0, False, 0.0)
    search = mnist.local_search_config()
    assert (search.momentum, search.nesterov, search.weight_decay) == (0.0, False, 0.0)
    for name in ("digits", "mnist1d", "fashion_mnist"):        # MNIST's stand-ins
        assert _sgd(EvoMALConfig(dataset=name)) == (0.0, False, 0.0)
    for name in ("diabetes", "wine", "cifar10", "svhn"):       # tabular / CIFAR / SVHN configs
        assert _sgd(EvoMALConfig(dataset=name)) == (0.9, True, 5e-4)
    # explicit settings win; Nesterov left to the default follows the momentum
    assert _sgd(EvoMALConfig(dataset="mnist", momentum=0.5)) == (0.5, False, 0.0)
    assert _sgd(EvoMALConfig(dataset="diabetes", momentum=0.0)) == (0.0, False, 5e-4)
    assert _sgd(EvoMALConfig(dataset="diabetes", weight_decay=0.0)) == (0.9, True, 0.0)


def test_every_dataset_takes_all_its_settings_from_one_reference_configuration():
    """A dataset's base-learner SGD, rejection steps and meta-testing schedule all come from
    one of the reference's configuration files (digits used to get MNIST's 100 rejection
    steps with the CIFAR configuration's SGD)."""
    from deapnn.data import DATASETS
    from deapnn.evomal.config import REFERENCE_CONFIGURATIONS, reference_configuration
    for name in DATASETS:
        run = EvoMALRunConfig(dataset=name)
        settings = (run.momentum, run.nesterov, run.weight_decay, run.steps_of_rejection(),
                    run.steps_of_final(), run.milestones_of_final())
        matches = [key for key, ref in REFERENCE_CONFIGURATIONS.items()
                   if settings == (ref.momentum, ref.nesterov, ref.weight_decay,
                                   ref.rejection_steps, ref.final_steps, ref.final_milestones)]
        assert matches == [key for key, ref in REFERENCE_CONFIGURATIONS.items()
                           if ref is reference_configuration(name)], name


def test_final_training_defaults_to_the_reference_meta_testing_schedule():
    from deapnn.evomal.evaluator import final_recipe
    cifar = EvoMALRunConfig(dataset="cifar10")
    recipe = final_recipe(cifar)
    assert (recipe.steps, recipe.schedule, recipe.milestones, recipe.gamma) == \
        (150_000, "step", (100_000, 135_000), 0.1)
    assert cifar.eval_every() == 7_500
    assert final_recipe(EvoMALRunConfig(dataset="svhn")).steps == 150_000
    digits = final_recipe(EvoMALRunConfig(dataset="digits"))
    assert (digits.steps, digits.schedule) == (10_000, "constant")
    # a shorter final training drops the reference's milestones unless they are given
    short = EvoMALRunConfig(dataset="cifar10", final_steps=2_000)
    assert (final_recipe(short).steps, final_recipe(short).schedule) == (2_000, "constant")
    given = final_recipe(dataclasses.replace(short, final_milestones=(1_000,)))
    assert (given.schedule, given.milestones) == ("step", (1_000,))
    assert final_recipe(dataclasses.replace(cifar, final_milestones=())).schedule == "constant"


def test_stored_configuration_names_the_resolved_reference_settings():
    stored = EvoMALRunConfig(dataset="mnist", model="mlp").to_dict()
    assert (stored["momentum"], stored["nesterov"], stored["weight_decay"]) == (0.0, False, 0.0)
    assert (stored["final_steps"], stored["final_milestones"]) == (10_000, [])
    back = EvoMALRunConfig.from_dict(stored)
    assert back.to_dict() == stored and _sgd(back) == (0.0, False, 0.0)
    cifar = EvoMALRunConfig(dataset="cifar10", model="mlp").to_dict()
    assert (cifar["final_steps"], cifar["final_milestones"]) == (150_000, [100_000, 135_000])
    # a config.json written before these defaults (explicit values, no milestones) runs as before
    old = {k: v for k, v in cifar.items() if k != "final_milestones"}
    old.update(final_steps=10_000, momentum=0.9, nesterov=True, weight_decay=5e-4)
    assert _read_back(old).milestones_of_final() == ()
