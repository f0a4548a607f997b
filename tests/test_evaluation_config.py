"""The shared evaluation result (``deapnn.evaluation``), run-configuration constraints
(``deapnn.config``), the one training-with-loss function (``deapnn.loss_training``) and the one
dataset cache (issue 11 items 3, 5, 8)."""
import math
import pickle

import pytest
import torch
from deap import base, creator

from deapnn.config import Check, Config, ConfigError, Interval, Options, int_list, subset_of
from deapnn.evaluation import Evaluation, as_evaluation, assign
from deapnn.failsafe import Guarded, failure_reason

if not hasattr(creator, "EvMax"):
    creator.create("EvMax", base.Fitness, weights=(1.0,))
    creator.create("EvMaxInd", list, fitness=creator.EvMax)
    creator.create("EvMin", base.Fitness, weights=(-1.0,))
    creator.create("EvMinInd", list, fitness=creator.EvMin)


# --- Evaluation / assign -------------------------------------------------------------------
def test_evaluation_reads_deap_results_and_travels_between_processes():
    ev = Evaluation((0.5,), {"val_acc": 0.5}, None)
    assert ev.fitness == 0.5 and not ev.failed and ev.values == (0.5,)
    assert pickle.loads(pickle.dumps(ev)) == ev
    assert Evaluation.from_dict(ev.to_dict()) == ev
    assert as_evaluation(ev) is ev
    assert as_evaluation((1, 2)).values == (1.0, 2.0) and as_evaluation(3).values == (3.0,)
    with pytest.raises(TypeError, match="Evaluation, a fitness tuple or a number"):
        as_evaluation(((0.1,), {"reason": None}))      # the old (values, info) pair


def test_assign_sets_fitness_info_and_worst_for_non_finite():
    ind = creator.EvMaxInd([1])
    assign(ind, Evaluation.failure((0.0,), "OutOfMemoryError: x", steps=0))
    assert ind.fitness.values == (0.0,)
    assert ind.info == {"steps": 0, "error": "OutOfMemoryError: x"}
    for bad in (float("nan"), float("inf"), None):
        ind = creator.EvMaxInd([1])
        assign(ind, (bad,))
        assert ind.fitness.values == (-math.inf,)       # maximised: worst is -inf
        ind = creator.EvMinInd([1])
        assign(ind, Evaluation((bad,)))
        assert ind.fitness.values == (math.inf,)        # minimised: worst is +inf
    plain = creator.EvMaxInd([1])
    assign(plain, (0.25,))
    assert plain.fitness.values == (0.25,) and not hasattr(plain, "info")
    with pytest.raises(ValueError, match="2 fitness values for 1 objectives"):
        assign(creator.EvMaxInd([1]), (1.0, 2.0))


def _boom(x):
    raise KeyError(x)


def test_guarded_returns_an_evaluation_carrying_the_error():
    ev = pickle.loads(pickle.dumps(Guarded(_boom, worst=-1.0)))(7)
    assert isinstance(ev, Evaluation) and ev.values == (-1.0,) and ev.failed
    assert failure_reason(ev) == "KeyError: 7" and failure_reason((1.0,)) is None


# --- Config constraints ----------------------------------------------------------------------
from dataclasses import dataclass, field  # noqa: E402


@dataclass
class _Demo(Config):
    pop: int = 4
    lr: float = 0.1
    mode: str = "reset"
    cap: int | None = None
    seeds: list = field(default_factory=lambda: [0])
    arms: list = field(default_factory=list)
    sample: int = 2

    _parameter_constraints = {
        "pop": [Interval(int, 2, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "mode": [Options(("reset", "inherit"))],
        "cap": [None, Interval(int, 1, None)],
        "seeds": [int_list(0, distinct=True)],
        "arms": [subset_of(("sgd", "random"))],
        "sample": [Check(lambda v: isinstance(v, int) and v >= 1, "an integer >= 1")],
    }

    def _check(self):
        if self.sample > self.pop:
            raise ConfigError(f"sample {self.sample} exceeds pop {self.pop}", "sample")


@pytest.mark.parametrize("change,field_name,words", [
    ({"pop": 1}, "pop", "an integer >= 2"), ({"pop": 2.5}, "pop", "an integer"),
    ({"pop": True}, "pop", "an integer"), ({"lr": 0.0}, "lr", "> 0"),
    ({"lr": float("nan")}, "lr", "finite"), ({"mode": "x"}, "mode", "one of reset, inherit"),
    ({"cap": 0}, "cap", "None or an integer >= 1"), ({"seeds": [0, 0]}, "seeds", "without repeats"),
    ({"seeds": []}, "seeds", "non-empty"), ({"arms": ["sgd", "sgd"]}, "arms", "without repeats"),
    ({"arms": ["adam"]}, "arms", "sgd, random"), ({"sample": 0}, "sample", "an integer >= 1"),
    ({"sample": 5}, "sample", "exceeds pop"),
])
def test_config_names_the_field_and_the_valid_range(change, field_name, words):
    with pytest.raises(ConfigError, match=words) as info:
        _Demo(**change).validate()
    assert info.value.field == field_name and str(info.value).startswith(field_name)


def test_config_round_trip_and_strict_reading():
    cfg = _Demo(pop=3, cap=2, seeds=[1, 2], arms=["random"]).validate()
    assert _Demo.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown _Demo setting"):
        _Demo.from_dict({**cfg.to_dict(), "extra": 1})
    with pytest.raises(ConfigError, match="JSON object"):
        _Demo.from_dict([1, 2])
    with pytest.raises(ConfigError, match="pop"):
        _Demo.from_dict({"pop": "many"})


# --- one training-with-loss function -------------------------------------------------------
def _tiny_data(task="classification", n=40):
    from deapnn.data.base import Dataset, Split
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long() if task == "classification" else x[:, :1] * 2.0
    split = Split(x, y)
    return Dataset(name="tiny", train=split, val=split, test=split, task=task,
                   num_classes=2 if task == "classification" else 1, input_shape=(4,))


def test_train_with_loss_matches_a_hand_written_sgd_loop():
    from deapnn.loss_training import LossTraining, shuffled_passes, train_with_loss
    data = _tiny_data()
    torch.manual_seed(3)
    model = torch.nn.Linear(4, 2)
    twin = pickle.loads(pickle.dumps(model))
    recipe = LossTraining(steps=7, batch_size=16, lr=0.1, momentum=0.9, weight_decay=1e-3)
    res = train_with_loss(model, torch.nn.functional.cross_entropy, data, recipe, batch_seed=5,
                          device=torch.device("cpu"))
    assert res.steps == 7 and res.reason is None and res.curve == []
    opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for idx in shuffled_passes(40, 16, 7, torch.Generator().manual_seed(5)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(data.train.x[idx]), data.train.y[idx]).backward()
        opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def test_step_schedule_matches_multisteplr_and_keeps_old_recipe_identity():
    """schedule="step" is torch's MultiStepLR stepped once per SGD step (oracle: the same
    loop with the scheduler); a recipe without it stores no milestones (old identities hold)."""
    from deapnn.loss_training import LossTraining, shuffled_passes, train_with_loss
    data = _tiny_data()
    torch.manual_seed(4)
    model = torch.nn.Linear(4, 2)
    twin = pickle.loads(pickle.dumps(model))
    recipe = LossTraining(steps=9, batch_size=16, lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4, schedule="step", milestones=(3, 7), gamma=0.1)
    train_with_loss(model, torch.nn.functional.cross_entropy, data, recipe, batch_seed=2,
                    device=torch.device("cpu"))
    opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 7], gamma=0.1)
    lrs = []
    for idx in shuffled_passes(40, 16, 9, torch.Generator().manual_seed(2)):
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(data.train.x[idx]), data.train.y[idx]).backward()
        opt.step()
        sched.step()
    assert lrs[2] == 0.1 and lrs[3] == pytest.approx(0.01) and lrs[7] == pytest.approx(0.001)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)
    assert recipe.to_dict()["milestones"] == [3, 7]
    plain = LossTraining(steps=9).to_dict()
    assert "milestones" not in plain and "gamma" not in plain
    with pytest.raises(ConfigError, match="milestones"):
        LossTraining(schedule="step", milestones=(0,)).validate()


def test_train_with_loss_curve_points_stop_and_divergence():
    from deapnn.loss_training import LossTraining, task_error, train_with_loss
    data = _tiny_data()
    recipe = LossTraining(steps=10, batch_size=8, lr=0.05, eval_every=4, schedule="cosine",
                          sampling="uniform", noise=0.1)
    model = torch.nn.Linear(4, 2)
    seen = []
    res = train_with_loss(model, torch.nn.functional.cross_entropy, data, recipe, batch_seed=1,
                          device=torch.device("cpu"), eval_steps=(3,), eval_at_start=True,
                          evaluate=lambda m, s: seen.append(s) or (task_error(m, data.val.x,
                                                                             data.val.y,
                                                                             "classification"),))
    assert [p[0] for p in res.curve] == [0, 3, 4, 8, 10] == seen
    assert all(0.0 <= p[1] <= 1.0 for p in res.curve)
    res = train_with_loss(torch.nn.Linear(4, 2), torch.nn.functional.cross_entropy, data, recipe,
                          batch_seed=1, device=torch.device("cpu"), evaluate=lambda m, s: (s,),
                          stop=lambda s, m: "enough" if s == 8 else None)
    assert res.steps == 8 and res.reason == "enough"
    res = train_with_loss(torch.nn.Linear(4, 2), lambda out, y: out.sum() * float("nan"), data,
                          recipe, batch_seed=1, device=torch.device("cpu"))
    assert res.steps == 0 and res.reason == "non-finite loss at step 0"


def test_task_error_is_lower_is_better_for_both_tasks():
    from deapnn.loss_training import prediction_error, task_error
    data = _tiny_data()
    right = torch.nn.Linear(4, 2)
    with torch.no_grad():
        right.weight.copy_(torch.tensor([[-1.0, 0, 0, 0], [1.0, 0, 0, 0]]))
        right.bias.zero_()
    assert task_error(right, data.val.x, data.val.y, "classification") == 0.0
    assert prediction_error(-right(data.val.x), data.val.y, "classification") == 1.0
    reg = _tiny_data("regression")
    exact = torch.nn.Linear(4, 1)
    with torch.no_grad():
        exact.weight.copy_(torch.tensor([[2.0, 0, 0, 0]]))
        exact.bias.zero_()
    assert task_error(exact, reg.val.x, reg.val.y, "regression") == 0.0
    with torch.no_grad():
        exact.bias.fill_(float("nan"))
    assert task_error(exact, reg.val.x, reg.val.y, "regression") == math.inf


def test_one_dataset_cache():
    from deapnn.data import cache_dataset, cached_dataset
    first = cached_dataset("iris", seed=3)
    assert cached_dataset("iris", 3) is first and cached_dataset("iris", 4) is not first
    mine = _tiny_data()
    assert cache_dataset(mine, "iris", 9) is mine and cached_dataset("iris", 9) is mine
