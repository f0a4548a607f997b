"""Data regimes of the training split (issue 25): the long tail of ``--imbalance`` (Cui et al.
2019; Cao et al. 2019's ``get_img_num_per_cls``), symmetric ``--label-noise``, their checks, the
class-rebalancing baselines ``sgd_balanced`` / ``sgd_resampled`` and the resume of a run with a
regime."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deapnn.checkpoint import config_hash
from deapnn.config import ConfigError
from deapnn.data import RegimeError, cached_dataset, load_dataset
from deapnn.data.regimes import long_tail_counts, noisy_labels
from deapnn.gls import GLSConfig, run_job
from deapnn.rebalance import WeightedCrossEntropy, balanced_order, class_weights


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=3)


def counts(y, c=10):
    return np.bincount(y.numpy(), minlength=c)


# --- the long tail ----------------------------------------------------------------------------

def test_long_tail_counts_are_the_lt_cifar_numbers():
    # CIFAR-10-LT, RHO 100 (Cao et al. 2019, their code's get_img_num_per_cls)
    assert long_tail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert long_tail_counts(500, 100, 10)[0] == 500 and long_tail_counts(500, 100, 10)[-1] == 50


@pytest.mark.parametrize("rho", [2.0, 10.0, 37.5])
def test_class_counts_equal_the_formula_exactly(digits, rho):
    tail = load_dataset("digits", seed=3, imbalance=rho)
    rec = tail.meta["regime"]
    n_max = int(counts(digits.train.y).min())
    assert rec["n_max"] == n_max and sorted(rec["class_order"]) == list(range(10))
    got = counts(tail.train.y)
    for c, k in enumerate(rec["class_order"]):     # position c of the order, class k
        assert got[k] == math.floor(n_max * (1 / rho) ** (c / 9)), (c, k)
    assert rec["train_class_counts"] == got.tolist() and rec["n_flipped"] == 0
    # the kept rows are rows of the training split, with their labels
    rows = {tuple(r.tolist()) + (int(k),) for r, k in zip(digits.train.x.flatten(1),
                                                          digits.train.y)}
    assert all(tuple(r.tolist()) + (int(k),) in rows
               for r, k in zip(tail.train.x.flatten(1), tail.train.y))


def test_class_order_and_kept_rows_come_from_the_seed():
    a = load_dataset("digits", seed=3, imbalance=10)
    b = load_dataset("digits", seed=3, imbalance=10)
    c = load_dataset("digits", seed=4, imbalance=10)
    assert a.meta["regime"]["class_order"] == b.meta["regime"]["class_order"]
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.y, b.train.y)
    assert a.meta["regime"]["class_order"] != c.meta["regime"]["class_order"]


# --- label noise ------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.1, 0.35, 0.999])
def test_noise_flips_round_r_n_labels_never_to_the_same_class(rate):
    y = np.arange(1003) % 7
    out, flipped = noisy_labels(y, 7, rate, seed=5)
    assert len(flipped) == round(rate * len(y)) and len(set(flipped.tolist())) == len(flipped)
    changed = np.flatnonzero(out != y)
    assert changed.tolist() == flipped.tolist()         # every flip changes the label
    again, same = noisy_labels(y, 7, rate, seed=5)
    assert np.array_equal(again, out) and np.array_equal(same, flipped)
    if rate:
        assert not np.array_equal(noisy_labels(y, 7, rate, seed=6)[1], flipped)


def test_noise_reaches_every_other_class_uniformly():
    y = np.zeros(30000, dtype=np.int64)
    out, flipped = noisy_labels(y, 4, 0.5, seed=0)
    share = np.bincount(out[flipped], minlength=4) / len(flipped)
    assert share[0] == 0 and np.allclose(share[1:], 1 / 3, atol=0.02)


def test_noisy_dataset_records_the_flipped_indices(digits):
    noisy = load_dataset("digits", seed=3, label_noise=0.2)
    rec = noisy.meta["regime"]
    assert torch.equal(noisy.train.x, digits.train.x)
    diff = torch.nonzero(noisy.train.y != digits.train.y).flatten().tolist()
    assert diff == rec["flipped"] and rec["n_flipped"] == round(0.2 * len(digits.train)) == 216
    assert rec["imbalance"] is None and rec["class_order"] is None


# --- what never changes -----------------------------------------------------------------------

def test_validation_and_test_splits_are_unchanged(digits):
    both = load_dataset("digits", seed=3, imbalance=10, label_noise=0.3)
    for name in ("val", "test"):
        assert torch.equal(both.splits[name].x, digits.splits[name].x)
        assert torch.equal(both.splits[name].y, digits.splits[name].y)
    assert torch.equal(both.mean, digits.mean) and torch.equal(both.std, digits.std)
    assert load_dataset("digits", seed=3) .meta.get("regime") is None


def test_the_cache_keys_by_regime():
    plain = cached_dataset("iris", 0)
    tail = cached_dataset("iris", 0, imbalance=2.0)
    assert len(tail.train) < len(plain.train)
    assert cached_dataset("iris", 0, imbalance=2.0) is tail and cached_dataset("iris", 0) is plain


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, field", [
    ({"imbalance": 1.0}, "imbalance"), ({"imbalance": 0.5}, "imbalance"),
    ({"imbalance": float("nan")}, "imbalance"), ({"imbalance": float("inf")}, "imbalance"),
    ({"label_noise": 1.0}, "label_noise"), ({"label_noise": -0.1}, "label_noise"),
    ({"label_noise": float("nan")}, "label_noise"),
    ({"dataset": "diabetes", "imbalance": 10.0}, "imbalance"),
    ({"dataset": "diabetes", "label_noise": 0.1}, "label_noise")])
def test_bad_regimes_are_config_errors(kw, field):
    with pytest.raises(ConfigError) as err:
        GLSConfig(**{"dataset": "digits", "model": "mlp", **kw})
    assert err.value.field == field


def test_a_tail_below_two_examples_names_the_class_and_its_count():
    with pytest.raises(RegimeError, match=r"leaves class \d with 1 training example \(seed 0"):
        load_dataset("digits", seed=0, imbalance=60)
    cfg = GLSConfig(dataset="digits", model="mlp", imbalance=60, seeds=[0, 1])  # made: no data
    with pytest.raises(ConfigError, match="at least 2 training examples") as err:
        cfg.check_resources()
    assert err.value.field == "imbalance"
    GLSConfig(dataset="digits", model="mlp", imbalance=50).check_resources()     # 104 / 50 = 2


@pytest.mark.parametrize("argv, flag", [
    (["gls", "--dataset", "digits", "--model", "mlp", "--imbalance", "1"], "--imbalance must"),
    (["gls", "--dataset", "digits", "--model", "mlp", "--imbalance", "nan"], "--imbalance must"),
    (["gls", "--dataset", "digits", "--model", "mlp", "--imbalance", "400"],
     "--imbalance must leave every class at least 2 training examples: RHO 400 leaves class"),
    (["train", "--dataset", "digits", "--model", "mlp", "--label-noise", "1"],
     "--label-noise must"),
    (["train", "--dataset", "diabetes", "--model", "mlp", "--imbalance", "5"],
     "--imbalance must be left out for diabetes"),
    (["evomal", "--dataset", "diabetes", "--label-noise", "0.2"], "--label-noise must"),
])
def test_bad_regimes_on_the_command_line_are_one_line_exit_2_nothing_written(
        cli, tmp_path, argv, flag):
    out = tmp_path / "run"
    code, _, err = cli(*argv, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1 and flag in err, err
    assert not out.exists()


def test_runs_stored_before_the_regime_keep_their_identity():
    cfg = GLSConfig(dataset="digits", model="mlp").to_dict()
    old = {k: v for k, v in cfg.items() if k not in ("imbalance", "label_noise")}
    assert config_hash("gls", cfg, "gls/seed0") == config_hash("gls", old, "gls/seed0")
    tail = dict(cfg, imbalance=10.0)
    assert config_hash("gls", tail, "gls/seed0") != config_hash("gls", cfg, "gls/seed0")


# --- the class-rebalancing baselines ------------------------------------------------------------

def test_sgd_balanced_weights_are_inverse_frequency_with_mean_one():
    y = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    w = class_weights(y, 4)                            # class 3 has no example: weight 0
    assert torch.allclose(w, torch.tensor([10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1), 0.0]))
    assert torch.isclose(w[y].mean(), torch.tensor(1.0))
    logits = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    want = sum(float(w[t]) * float(F.cross_entropy(logits[i:i + 1], y[i:i + 1]))
               for i, t in enumerate(y)) / 10
    assert math.isclose(float(WeightedCrossEntropy(w)(logits, y)), want, rel_tol=1e-6)


def test_sgd_balanced_arm_weights_the_regime_training_labels():
    from deapnn.gls.job import _rebalance
    data = load_dataset("digits", seed=0, imbalance=10)
    n, c = np.bincount(data.train.y.numpy(), minlength=10), len(data.train)
    w = _rebalance("sgd_balanced", data)["loss_fn"].weights
    assert np.allclose(w.numpy(), c / (10 * n))
    assert set(_rebalance("sgd_resampled", data)) == {"sampler"} and _rebalance("sgd", data) == {}


def test_balanced_sampling_draws_every_class_equally_often_from_the_generator():
    y = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    sample = balanced_order(y, 3)
    idx = sample(30000, torch.Generator().manual_seed(1))
    share = np.bincount(y[idx].numpy(), minlength=3) / len(idx)
    assert np.allclose(share, 1 / 3, atol=0.02)
    assert torch.equal(idx, sample(30000, torch.Generator().manual_seed(1)))


def test_rebalancing_arms_need_classes_and_a_validation_split():
    with pytest.raises(ConfigError, match="sgd_balanced rebalances classes") as err:
        GLSConfig(dataset="diabetes", model="mlp", arms=["sgd_balanced"])
    assert err.value.field == "arms"
    with pytest.raises(ConfigError, match="sgd_resampled chooses its learning rate"):
        GLSConfig(dataset="digits", model="mlp", arms=["sgd_resampled"], val_size=0)


# --- a GLS job in a regime: resumed, identical ----------------------------------------------------

def _job(tmp_path, name, arm, **kw):
    cfg = GLSConfig(dataset="digits", model="mlp", population_size=2, epochs=2, lr=0.05,
                    imbalance=8.0, label_noise=0.1, arms=[arm], tune_factors=[1.0], **kw)
    return {"arm": arm, "seed": 1, "dir": str(tmp_path / name), "config": cfg.to_dict()}


@pytest.mark.parametrize("arm", ["gls", "sgd_resampled"])
def test_a_job_in_a_regime_resumed_equals_uninterrupted(tmp_path, monkeypatch, arm):
    import deapnn.gls.job as job_module
    full = run_job(_job(tmp_path, "full", arm))
    assert not full.failed, full.error
    save, calls = job_module.save_checkpoint, []

    def dies_on_the_second_save(path, state, run=None):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("killed")
        save(path, state, run)
    monkeypatch.setattr(job_module, "save_checkpoint", dies_on_the_second_save)
    killed = run_job(_job(tmp_path, "killed", arm))
    assert killed.failed and "killed" in killed.error
    monkeypatch.setattr(job_module, "save_checkpoint", save)
    resumed = run_job(_job(tmp_path, "killed", arm))
    assert not resumed.failed, resumed.error
    skip = ("seconds", "host", "device")
    assert {k: v for k, v in resumed.info.items() if k not in skip} == \
        {k: v for k, v in full.info.items() if k not in skip}
    a = json.loads((tmp_path / "full" / "regime.json").read_text())
    assert a == json.loads((tmp_path / "killed" / "regime.json").read_text())
    assert len(a["flipped"]) == full.info["n_flipped"] > 0


# --- every command ------------------------------------------------------------------------------

def test_train_states_the_regime_in_its_results_and_report(cli, tmp_path):
    out = tmp_path / "train"
    code, stdout, err = cli("train", "--dataset", "iris", "--model", "mlp", "--epochs", "1",
                            "--imbalance", "2", "--label-noise", "0.1", "--quiet", "--out", out)
    assert code == 0, err
    assert "(training split long tail RHO 2, label noise 0.1)" in stdout
    res = json.loads((out / "results.json").read_text())
    assert res["imbalance"] == 2.0 and res["label_noise"] == 0.1 and len(res["class_acc"]) == 3
    assert json.loads((out / "regime.json").read_text())["n_flipped"] == res["n_flipped"] > 0
    assert 0 <= res["flipped_fit"] <= 1
    assert cli("report", out)[0] == 0
    text = (out / "report.md").read_text()
    assert "## Classes" in text and "the noise it memorised" in text


def test_the_loss_searches_train_on_the_regime():
    from deapnn.evomal.config import EvoMALConfig
    from deapnn.evomal.evaluator import EvoMALEvaluator
    from deapnn.nlfs.config import NLFSConfig
    nlfs = NLFSConfig(dataset="iris", imbalance=2.0, label_noise=0.1)
    for surrogate in (nlfs.surrogate(), nlfs.standard_surrogate()):
        assert surrogate.regime() == {"imbalance": 2.0, "label_noise": 0.1}
    data = EvoMALEvaluator(EvoMALConfig(dataset="iris", imbalance=2.0))._data()
    assert data.meta["regime"]["imbalance"] == 2.0
    assert len(data.train) < len(load_dataset("iris", seed=0).train)
