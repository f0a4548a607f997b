"""deapnn.training: the shared SGD loop, schedules, NaN guard, evaluation and per-case
correctness."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from deapnn.models import MLP, build_model
from deapnn.sgd import SCHEDULES
from deapnn.training import TrainConfig, evaluate, predict, scheduled_lr, train, train_steps

CPU = torch.device("cpu")


def _toy(n=96, features=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    w = torch.randn(features, classes, generator=g)
    return x, (x @ w).argmax(1)


def _trained_weights(init_seed, train_seed, *, augment=None, images=False, epochs=3):
    if images:
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(40, 1, 8, 8, generator=g), torch.randint(0, 4, (40,), generator=g)
        torch.manual_seed(init_seed)
        model = build_model("cnn", (1, 8, 8), 4)
    else:
        x, y = _toy()
        torch.manual_seed(init_seed)
        model = MLP((5,), 3, hidden=(16,))
    cfg = TrainConfig(epochs=epochs, lr=0.05, batch_size=16, nesterov=True)
    result = train(model, x, y, cfg, device=CPU, seed=train_seed, augment=augment)
    assert not result.diverged
    return {k: v.clone() for k, v in model.state_dict().items()}, result


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- reproducibility ------------------------------------------------------------------------

def test_same_seed_gives_bit_identical_weights():
    w1, r1 = _trained_weights(0, 7)
    w2, r2 = _trained_weights(0, 7)
    assert _equal(w1, w2)
    assert r1.losses == r2.losses


def test_different_training_seed_changes_weights():
    w1, _ = _trained_weights(0, 7)
    w2, _ = _trained_weights(0, 8)          # same init, different batch order
    assert not _equal(w1, w2)


def test_same_seed_with_augmentation_is_reproducible():
    w1, _ = _trained_weights(0, 3, augment="crop_flip", images=True, epochs=1)
    w2, _ = _trained_weights(0, 3, augment="crop_flip", images=True, epochs=1)
    w3, _ = _trained_weights(0, 4, augment="crop_flip", images=True, epochs=1)
    assert _equal(w1, w2)
    assert not _equal(w1, w3)


def test_training_changes_the_weights():
    x, y = _toy()
    torch.manual_seed(0)
    model = MLP((5,), 3, hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, x, y, TrainConfig(epochs=1, lr=0.1, batch_size=32), device=CPU, seed=0)
    assert not _equal(before, model.state_dict())


def test_zero_epochs_leaves_model_untouched():
    x, y = _toy()
    model = MLP((5,), 3, hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, x, y, TrainConfig(epochs=0), device=CPU, seed=0)
    assert result.losses == [] and not result.diverged
    assert _equal(before, model.state_dict())


# --- divergence -----------------------------------------------------------------------------

class NaNAtStep:
    """Cross-entropy that returns NaN (or inf) on call ``k``; snapshots the model just before."""

    def __init__(self, model, k, value=float("nan")):
        self.model, self.k, self.value, self.calls, self.snapshot = model, k, value, 0, None

    def __call__(self, out, y):
        loss = F.cross_entropy(out, y)
        self.calls += 1
        if self.calls == self.k + 1:
            self.snapshot = {n: v.clone() for n, v in self.model.state_dict().items()}
            return loss * self.value
        return loss


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_loss_stops_training_and_reports(value):
    x, y = _toy()                                   # 96 examples / 16 = 6 steps per epoch
    torch.manual_seed(0)
    model = MLP((5,), 3, hidden=(8,))
    loss = NaNAtStep(model, k=8, value=value)       # step 8 = epoch 1, third batch
    result = train(model, x, y, TrainConfig(epochs=5, lr=0.05, batch_size=16), loss_fn=loss,
                   device=CPU, seed=0)
    assert result.diverged
    assert "epoch 1" in result.reason and ("nan" in result.reason or "inf" in result.reason)
    assert loss.calls == 9                          # stopped at once: no further steps
    assert len(result.losses) == 2
    # The failing step did not update the weights, and they are all finite.
    assert _equal(loss.snapshot, model.state_dict())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_train_steps_reports_divergence_without_raising():
    x, y = _toy(n=32)
    model = MLP((5,), 3, hidden=(8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mean, reason = train_steps(model, opt, x, y, lambda o, t: o.sum() * float("nan"),
                               torch.arange(32).split(8))
    assert reason is not None and "step 0" in reason


def test_on_epoch_history_and_progress():
    x, y = _toy()
    calls = []

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

        def set_postfix(self, **kw):
            calls.append(kw)

    bar = Bar()
    result = train(MLP((5,), 3, hidden=(8,)), x, y, TrainConfig(epochs=3, batch_size=32),
                   device=CPU, seed=0, on_epoch=lambda e, loss: {"epoch": e, "loss": loss},
                   progress=bar)
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    assert [r["loss"] for r in result.history] == result.losses
    assert bar.n == 3 and len(calls) == 3


# --- schedules ------------------------------------------------------------------------------

def test_cosine_schedule_values():
    cfg = TrainConfig(lr=0.2, schedule="cosine")
    assert scheduled_lr(cfg, 0, 10) == pytest.approx(0.2)
    assert scheduled_lr(cfg, 5, 10) == pytest.approx(0.1)
    assert scheduled_lr(cfg, 10, 10) == pytest.approx(0.0, abs=1e-12)
    assert scheduled_lr(cfg, 2.5, 10) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    values = [scheduled_lr(cfg, t, 10) for t in range(11)]
    assert all(a > b for a, b in zip(values, values[1:]))      # strictly decreasing


def test_step_and_constant_schedules():
    cfg = TrainConfig(lr=1.0, schedule="step", milestones=(3, 6), gamma=0.1)
    assert [scheduled_lr(cfg, t, 10) for t in (0, 2, 3, 5, 6, 9)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    assert scheduled_lr(TrainConfig(lr=0.3, schedule="constant"), 7, 10) == 0.3


def test_train_applies_the_schedule_per_epoch(monkeypatch):
    import deapnn.training as training
    x, y = _toy(n=32)
    cfg = TrainConfig(epochs=4, lr=0.4, batch_size=32, schedule="cosine")
    made, seen = [], []
    real = training.make_optimizer

    def spy(params, c):
        made.append(real(params, c))
        return made[-1]

    def loss_fn(out, t):
        seen.append(made[0].param_groups[0]["lr"])     # the lr in force at this step
        return F.cross_entropy(out, t)

    monkeypatch.setattr(training, "make_optimizer", spy)
    train(MLP((5,), 3, hidden=(4,)), x, y, cfg, loss_fn=loss_fn, device=CPU, seed=0)
    assert seen == pytest.approx([scheduled_lr(cfg, e, 4) for e in range(4)])
    assert seen[0] == pytest.approx(0.4)


# --- evaluation -----------------------------------------------------------------------------

def _correct(model, x, y, batch_size=1024):
    """Per-case top-1 correctness through :func:`predict` (the cases of GLS selection)."""
    return predict(model, x, batch_size).argmax(1) == y


def test_predict_correctness_matches_direct_argmax_in_batches():
    x, y = _toy(n=50)
    torch.manual_seed(0)
    model = MLP((5,), 3, hidden=(8,)).eval()
    with torch.no_grad():
        oracle = model(x).argmax(1) == y
    full = _correct(model, x, y)
    batched = _correct(model, x, y, batch_size=7)     # 50 = 7*7 + 1: ragged last batch
    assert full.dtype == torch.bool and full.shape == (50,)
    assert torch.equal(full, oracle) and torch.equal(batched, oracle)
    assert 0 < int(oracle.sum()) < 50                          # a non-trivial oracle


def test_predict_uses_eval_mode_and_restores_training_mode():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, 1, 8, 8, generator=g), torch.randint(0, 10, (9,), generator=g)
    model = build_model("cnn", (1, 8, 8), 10)
    model.train()
    a = _correct(model, x, y, batch_size=1)   # batch of 1 works only in eval mode (BN)
    b = _correct(model, x, y, batch_size=9)
    assert torch.equal(a, b)
    assert model.training


def test_evaluate_accuracy_and_mse_match_torch_oracles():
    x, y = _toy(n=40)
    torch.manual_seed(0)
    clf = MLP((5,), 3, hidden=(8,)).eval()
    with torch.no_grad():
        acc = (clf(x).argmax(1) == y).float().mean().item()
    assert evaluate(clf, x, y, batch_size=6) == pytest.approx(acc, abs=1e-7)

    reg = MLP((5,), 1, hidden=(8,)).eval()
    target = torch.randn(40, 1)
    with torch.no_grad():
        mse = F.mse_loss(reg(x), target).item()
    assert evaluate(reg, x, target, task="regression", batch_size=6) == pytest.approx(mse, rel=1e-5)


def test_evaluate_mse_is_nan_for_nan_outputs():
    model = MLP((5,), 1, hidden=(4,))
    with torch.no_grad():
        model.net[-1].bias.fill_(float("nan"))
    assert math.isnan(evaluate(model, torch.randn(4, 5), torch.zeros(4, 1), task="regression"))


def test_predict_returns_cpu_outputs_in_order():
    x, _ = _toy(n=11)
    model = MLP((5,), 3, hidden=(4,)).eval()
    with torch.no_grad():
        direct = model(x)
    assert torch.allclose(predict(model, x, batch_size=4), direct)


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,word", [
    ({"epochs": -1}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -0.1}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"batch_size": 0}, "batch"),
    ({"batch_size": 1.5}, "batch"),
    ({"momentum": 1.0}, "momentum"),
    ({"momentum": -0.1}, "momentum"),
    ({"weight_decay": -1e-4}, "weight.decay"),
    ({"schedule": "linear"}, "schedule"),
    ({"nesterov": True, "momentum": 0.0}, "nesterov"),
])
def test_train_config_rejects_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**kwargs).validate()


def test_train_validates_before_touching_the_model():
    model = MLP((5,), 3, hidden=(4,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _toy(n=8)
    with pytest.raises(ValueError):
        train(model, x, y, TrainConfig(lr=-1.0), device=CPU)
    assert _equal(before, model.state_dict())


def test_default_config_is_valid():
    cfg = TrainConfig().validate()
    assert cfg.schedule in SCHEDULES


# --- it learns ------------------------------------------------------------------------------

def test_mlp_learns_iris_well_above_chance():
    from deapnn.data import load_dataset
    data = load_dataset("iris", seed=0)
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, data.num_classes)
    before = evaluate(model, data.test.x, data.test.y)
    result = train(model, data.train.x, data.train.y,
                   TrainConfig(epochs=15, lr=0.05, batch_size=16), device=CPU, seed=0)
    after = evaluate(model, data.test.x, data.test.y)
    assert not result.diverged
    assert result.losses[-1] < result.losses[0]
    assert before < 0.6 and after >= 0.85        # chance is 1/3


def test_train_resumed_from_a_checkpoint_equals_uninterrupted():
    from deapnn.data import load_dataset
    data = load_dataset("iris", seed=0)
    cfg = TrainConfig(epochs=4, lr=0.05, batch_size=16)

    def fresh():
        torch.manual_seed(0)
        return build_model("mlp", data.input_shape, data.num_classes)

    full = fresh()
    train(full, data.train.x, data.train.y, cfg, device=torch.device("cpu"), seed=3)
    states = []
    first = fresh()
    train(first, data.train.x, data.train.y, cfg, device=torch.device("cpu"), seed=3,
          checkpoint=lambda s: states.append(copy.deepcopy(s)))
    resumed = fresh()
    result = train(resumed, data.train.x, data.train.y, cfg, device=torch.device("cpu"), seed=3,
                   resume_state=states[1])           # as if killed after epoch 2
    assert len(result.losses) == 4
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k])


def test_cli_resume_of_an_invalid_train_config_is_one_line(tmp_path, capsys):
    import json

    from deapnn.cli import main
    (tmp_path / "config.json").write_text(json.dumps({"command": "train", "dataset": "nope"}))
    assert main(["train", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume" in err[0] and "nope" in err[0]
