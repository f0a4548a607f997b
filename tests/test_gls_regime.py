"""GLS in the paper's regime and its controls (issue 15): mnist1d_large, the 1-D shift
augmentation (SubGD and SGD only, never selection), the ``sgd_reset`` and ``sgd_tuned`` arms, the
loss/ε lexicase variant, ``--diagnostics`` and the feature effective rank."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deapnn.algorithms import eaGradientLexicase
from deapnn.data import augment_batch, load_dataset, parse_kind
from deapnn.gls import GLSConfig, gls_toolbox, run_job
from deapnn.gls.job import child_steps
from deapnn.gls.representation import effective_rank, penultimate_features
from deapnn.models import build_model
from deapnn.training import TrainConfig, train
from operators.gls import selGradientLexicase
from operators.gls_cases import loss_matrix
from tests.gls_helpers import table_population
from tests.test_lexicase import _assert_fits, _oracle


# --- the 1-D augmentation ------------------------------------------------------------------

def test_shift_is_a_zero_padded_window_of_the_signal():
    x = torch.arange(1, 2 * 3 * 10 + 1, dtype=torch.float32).reshape(2 * 3, 1, 10)
    out = augment_batch(x, "shift:3", torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for row, aug in zip(x[:, 0], out[:, 0]):
        padded = F.pad(row, (3, 3))
        windows = [padded[o:o + 10] for o in range(7)]
        assert any(torch.equal(aug, w) for w in windows)
    # reproducible from the generator, identity with padding 0 or "none"
    assert torch.equal(out, augment_batch(x, "shift:3", torch.Generator().manual_seed(0)))
    assert torch.equal(augment_batch(x, "shift:0"), x)
    assert augment_batch(x, "none") is x
    many = augment_batch(x.repeat(50, 1, 1), "shift:3", torch.Generator().manual_seed(1))
    assert (many != x.repeat(50, 1, 1)).any(dim=(1, 2)).float().mean() > 0.5


def test_augmentation_kinds_and_paddings():
    assert parse_kind("crop:1") == ("crop", 1)
    assert parse_kind("shift") == ("shift", 4)
    assert parse_kind(None) == (None, 4)
    for bad in ("blur", "crop:x", "shift:-1"):
        with pytest.raises(ValueError, match="unknown augmentation"):
            parse_kind(bad)
    with pytest.raises(ValueError, match=r"\(N, C, L\)"):
        augment_batch(torch.zeros(2, 1, 8, 8), "shift")
    img = torch.randn(4, 1, 8, 8)
    crop = augment_batch(img, "crop:1", torch.Generator().manual_seed(0))
    assert crop.shape == img.shape


def test_augmentation_defaults_per_dataset():
    assert GLSConfig(dataset="mnist1d_large").validate().augmentation_kind() == "shift:4"
    assert GLSConfig(dataset="digits").validate().augmentation_kind() is None
    assert GLSConfig(dataset="digits", augmentation="crop:1").validate().augmentation_kind() \
        == "crop:1"
    assert GLSConfig(dataset="mnist1d_large", augment=False).validate().augmentation_kind() \
        is None


# --- mnist1d_large and the regime ----------------------------------------------------------

@pytest.fixture(scope="module")
def large():
    return load_dataset("mnist1d_large", seed=0)


def test_mnist1d_large_sizes_and_generator(large):
    assert (len(large.train), len(large.val), len(large.test)) == (40000, 5000, 5000)
    assert tuple(large.train.x.shape[1:]) == (1, 40) and large.augment == "shift:4"
    assert np.bincount(large.test.y.numpy(), minlength=10).min() > 400   # every class
    small = load_dataset("mnist1d", seed=0)
    # same generator and templates: similar value range, same sequence length and classes
    assert small.train.x.shape[1:] == large.train.x.shape[1:]
    assert set(large.train.y.unique().tolist()) == set(range(10))
    again = load_dataset("mnist1d_large", seed=1)
    assert torch.equal(again.test.x, large.test.x)                 # the test split is fixed


def test_children_take_at_least_100_steps_per_generation_in_mnist1d_large(large):
    """Acceptance: p = 4, batch 64 on mnist1d_large — read from the logbook."""
    cfg = GLSConfig(dataset="mnist1d_large", model="mlp", population_size=4, batch_size=64,
                    epochs=1, lr=0.05).validate()
    tb = gls_toolbox(large, cfg)
    torch.manual_seed(0)
    model = build_model("mlp", large.input_shape, large.num_classes)
    _, logbook = eaGradientLexicase(model, tb, 1, cfg=cfg.train_config(1), population_size=4)
    assert logbook[0]["steps_per_child"] >= 100
    assert logbook[0]["steps_per_child"] == child_steps(40000, 64, 4) == 156
    assert child_steps(3500, 64, 4) == 13          # mnist1d: the regime the issue questions


# --- augmentation reaches SubGD, never selection -------------------------------------------

def test_augmentation_applies_to_subgd_batches_and_never_to_selection_cases():
    data = load_dataset("mnist1d", seed=0)
    cfg = GLSConfig(dataset="mnist1d", model="mlp", population_size=3,
                    augmentation="shift:4").validate()
    tb = gls_toolbox(data, cfg)
    clean = {row.numpy().tobytes() for row in data.train.x}
    seen = {"mutate": [], "select": []}
    phase = []

    def spy(_module, inputs):
        if phase:
            seen[phase[-1]].extend(r.numpy().tobytes() for r in inputs[0])

    def wrap(name):
        fn = getattr(tb, name)

        def run(*a, **kw):
            phase.append(name)
            try:
                return fn(*a, **kw)
            finally:
                phase.pop()
        tb.register(name, run)

    wrap("mutate")
    wrap("select")
    torch.manual_seed(0)
    model = build_model("mlp", data.input_shape, data.num_classes)
    model.register_forward_pre_hook(spy)            # copied into every child
    eaGradientLexicase(model, tb, 2, cfg=cfg.train_config(2), population_size=3)
    assert seen["select"] and seen["mutate"]
    assert all(r in clean for r in seen["select"])                 # selection: clean cases only
    shifted = np.mean([r not in clean for r in seen["mutate"]])
    assert shifted > 0.7                                            # SubGD: augmented batches


# --- sgd_reset ---------------------------------------------------------------------------

def _digits_run(momentum_reset, momentum=0.9, hook=None, schedule="cosine"):
    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = build_model("cnn", data.input_shape, data.num_classes)
    cfg = TrainConfig(epochs=2, lr=0.05, momentum=momentum, batch_size=64, schedule=schedule)
    if hook is not None:
        import deapnn.training as training
        make = training.make_optimizer

        def spying(params, c):
            opt = make(params, c)
            opt.register_step_pre_hook(hook)
            return opt
        training.make_optimizer, restore = spying, make
    try:
        res = train(model, data.train.x, data.train.y, cfg, augment="crop:1", seed=3,
                    momentum_reset=momentum_reset)
    finally:
        if hook is not None:
            training.make_optimizer = restore
    return model, res


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                   b.state_dict().values()))


def test_sgd_reset_with_infinite_period_is_sgd_bit_for_bit():
    plain, r1 = _digits_run(None)
    huge, r2 = _digits_run(10 ** 9)
    assert _same(plain, huge) and r1.losses == r2.losses


def test_sgd_reset_every_step_zeroes_momentum_at_every_boundary():
    steps = []

    def hook(opt, _args, _kwargs):
        bufs = [s["momentum_buffer"] for s in opt.state.values() if "momentum_buffer" in s]
        steps.append(all(torch.count_nonzero(b) == 0 for b in bufs) if bufs else None)

    _digits_run(1, hook=hook)
    assert steps[0] is None and len(steps) == 2 * 17
    assert all(steps[1:])                      # zero before every step after the first
    # and so, at a constant learning rate (blocks of one step change the cosine lr every
    # step), it is SGD without momentum, bit for bit (dampening 0, no Nesterov)
    reset, _ = _digits_run(1, schedule="constant")
    no_momentum, _ = _digits_run(None, momentum=0.0, schedule="constant")
    assert _same(reset, no_momentum)
    assert not _same(reset, _digits_run(None, schedule="constant")[0])


def test_sgd_reset_holds_the_lr_constant_within_blocks():
    lrs = []

    def hook(opt, _args, _kwargs):
        lrs.append(opt.param_groups[0]["lr"])

    _digits_run(5, hook=hook)                  # 17 steps per epoch, 2 epochs, blocks of 5
    from deapnn.training import scheduled_lr
    cfg = TrainConfig(epochs=2, lr=0.05)
    # block starts: 0,5,10,15 | 17 (epoch end),20,25,30 | ... ; value at the block's start
    expect = []
    for step in range(34):
        e, i = divmod(step, 17)
        start = max(e * 17, step - step % 5) - e * 17
        expect.append(scheduled_lr(cfg, e + start / 17, 2))
    assert lrs == expect


def test_sgd_reset_period_three_zeroes_only_at_multiples():
    zero = []

    def hook(opt, _args, _kwargs):
        bufs = [s["momentum_buffer"] for s in opt.state.values() if "momentum_buffer" in s]
        zero.append(bool(bufs) and all(torch.count_nonzero(b) == 0 for b in bufs))

    _digits_run(3, hook=hook)
    assert [i for i, z in enumerate(zero) if z] == list(range(3, len(zero), 3))


# --- loss / ε lexicase ---------------------------------------------------------------------

class LossModel(nn.Module):
    """Two-class model whose cross-entropy on case ``id`` (label 0) is ``losses[id]``."""

    def __init__(self, losses):
        super().__init__()
        z = torch.log(torch.expm1(torch.as_tensor(losses, dtype=torch.float64)))
        self.register_buffer("z", z.float())
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        z = self.z[x[:, 0].long()]
        return torch.stack([torch.zeros_like(z), z], 1) + 0 * self.dummy


LOSSES = np.array([[0.10, 0.90, 0.50, 0.30, 0.70],
                   [0.12, 0.40, 0.55, 0.90, 0.20],
                   [0.50, 0.41, 0.10, 0.35, 0.90],
                   [0.11, 0.95, 0.12, 0.31, 0.25]])


@pytest.mark.parametrize("epsilon", ["auto", 0.05, None])
def test_loss_lexicase_selects_with_the_exact_epsilon_lexicase_distribution(epsilon):
    models = [LossModel(row) for row in LOSSES]
    x = torch.arange(LOSSES.shape[1], dtype=torch.float32)[:, None]
    y = torch.zeros(LOSSES.shape[1], dtype=torch.long)
    E = loss_matrix(models, x, y, 256)               # the values the operator compares
    assert np.allclose(E, LOSSES, atol=1e-5)
    if epsilon == "auto":
        probs = _oracle(E, dynamic=True)
    else:
        probs = _oracle(E, eps=np.full(E.shape[1], epsilon or 0.0))
    picked = selGradientLexicase(models, 6000, x=x, y=y, rng=np.random.default_rng(0),
                                 case_metric="loss", epsilon=epsilon)
    idx = np.array([models.index(m) for m in picked])
    _assert_fits(idx, probs)


def test_loss_metric_rejects_bad_combinations():
    models, x, y = table_population([[True, False], [False, True]])
    with pytest.raises(ValueError, match="epsilon needs"):
        selGradientLexicase(models, 1, x=x, y=y, epsilon=0.1)
    with pytest.raises(ValueError, match="semantics"):
        selGradientLexicase(models, 1, x=x, y=y, case_metric="loss", semantics="reference")
    with pytest.raises(Exception, match="epsilon"):
        GLSConfig(epsilon="auto").validate()


# --- diagnostics -------------------------------------------------------------------------

def test_selection_reports_the_deciding_case():
    # children 1 and 2 fail only case 2, child 0 passes everything: case 2 always decides
    table = [[True] * 6, [True, True, False, True, True, True], [True, True, False, True, True,
                                                                  True]]
    models, x, y = table_population(table)
    for seed in range(5):
        info = {}
        winner = selGradientLexicase(models, 1, x=x, y=y, rng=np.random.default_rng(seed),
                                     info=info)[0]
        assert winner is models[0] and info["deciding_case"] == 2
    tie, x, y = table_population([[True] * 4, [True] * 4])
    info = {}
    selGradientLexicase(tie, 1, x=x, y=y, rng=np.random.default_rng(0), info=info)
    assert info["deciding_case"] is None


def test_diagnostics_log_without_changing_the_run():
    data = load_dataset("digits", seed=0)
    runs = []
    for diagnostics in (False, True):
        cfg = GLSConfig(dataset="digits", model="cnn", population_size=3,
                        diagnostics=diagnostics).validate()
        torch.manual_seed(0)
        model = build_model("cnn", data.input_shape, data.num_classes)
        parent, logbook = eaGradientLexicase(model, gls_toolbox(data, cfg), 3,
                                             cfg=cfg.train_config(3), population_size=3, seed=1)
        runs.append((parent, logbook))
    assert _same(runs[0][0], runs[1][0])
    assert "winner_best_val" not in runs[0][1][0]
    for rec in runs[1][1]:
        assert len(rec["child_val_acc"]) == 3
        assert rec["winner_best_val"] == (rec["child_val_acc"][rec["winner"]]
                                          == max(rec["child_val_acc"]))
        if rec["deciding_case"] is not None:
            assert isinstance(rec["winner_trained_on_decider"], bool)


def test_winner_trained_on_decider_matches_the_subgd_slices():
    data = load_dataset("digits", seed=0)
    cfg = GLSConfig(dataset="digits", model="cnn", population_size=3, diagnostics=True).validate()
    tb = gls_toolbox(data, cfg)
    torch.manual_seed(0)
    parent = build_model("cnn", data.input_shape, data.num_classes)
    children = [copy.deepcopy(parent) for _ in range(3)]
    opts = [torch.optim.SGD(c.parameters(), lr=0.05, momentum=0.9) for c in children]
    gen = torch.Generator().manual_seed(5)
    tb.mutate(children, optimizers=opts, generator=gen)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(5))
    slices = order.split(64)
    for i, c in enumerate(children):
        assert torch.equal(c.subgd_cases, torch.cat(slices[i::3]))
    info = {}
    winner = tb.select(children, 1, rng=np.random.default_rng(0), info=info)[0]
    w = children.index(winner)
    rec = tb.diagnose(children, w, info)
    if info["deciding_case"] is not None:
        owner = next(i for i in range(3) if info["deciding_case"] in set(
            torch.cat(slices[i::3]).tolist()))
        assert rec["winner_trained_on_decider"] == (owner == w)


# --- representation -----------------------------------------------------------------------

def test_effective_rank_oracles():
    g = torch.Generator().manual_seed(0)
    # singular values 3, 1 (two directions, weights 3/4 and 1/4): exp of their entropy
    two = torch.tensor([[3.0, 0], [-3, 0], [0, 1], [0, -1]], dtype=torch.float64) / 2 ** 0.5
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert effective_rank(two) == pytest.approx(np.exp(h))
    line = torch.randn(40, 1, generator=g, dtype=torch.float64) * torch.tensor([[1.0, 2, 3]])
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    iso = torch.eye(4, dtype=torch.float64)
    iso = torch.cat([iso, -iso])                    # centred already: 4 equal singular values
    assert effective_rank(iso) == pytest.approx(4.0)
    assert np.isnan(effective_rank(torch.zeros(3, 2)))


def test_penultimate_features_are_the_classifier_inputs():
    torch.manual_seed(0)
    model = build_model("mlp", (1, 40), 10)
    x = torch.randn(7, 1, 40)
    feats = penultimate_features(model, x)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert feats.shape == (7, last.in_features)
    model.eval()
    assert torch.allclose(last(feats.float()), model(x), atol=1e-5)


# --- the arms in jobs ----------------------------------------------------------------------

def _job(tmp_path, arm, **kw):
    cfg = GLSConfig(dataset="digits", model="mlp", population_size=3, epochs=2, lr=0.05,
                    arms=[arm], **kw).validate()
    return run_job({"arm": arm, "seed": 0, "dir": str(tmp_path / arm), "config": cfg.to_dict()})


def test_sgd_tuned_picks_the_best_validation_lr_and_records_the_regime(tmp_path):
    sgd = _job(tmp_path, "sgd").info
    tuned = _job(tmp_path, "sgd_tuned", tune_factors=[0.5, 1.0, 2.0]).info
    vals = {t["lr"]: t["val_acc"] for t in tuned["tuning"]}
    assert set(vals) == {0.025, 0.05, 0.1}
    assert vals[0.05] == sgd["val_acc"]             # the grid's factor 1 is the sgd arm
    assert vals[tuned["lr"]] == max(vals.values()) == tuned["val_acc"]
    for row in (sgd, tuned):
        assert row["steps_per_child"] == child_steps(1079, 64, 3) and row["population_size"] == 3
        assert row["augmentation"] is None and row["feature_erank"] > 1
    reset = _job(tmp_path, "sgd_reset").info
    assert reset["momentum_reset"] == child_steps(1079, 64, 3) == 5


def test_bad_settings_are_config_errors():
    from deapnn.config import ConfigError
    with pytest.raises(ConfigError, match="val_size > 0") as err:
        GLSConfig(arms=["sgd_tuned"], val_size=0).validate()
    assert err.value.field == "arms"
    with pytest.raises(ConfigError) as err:
        GLSConfig(dataset="digits", augmentation="shift").validate()
    assert err.value.field == "augmentation"
    with pytest.raises(ConfigError) as err:
        GLSConfig(tune_factors=[]).validate()
    assert err.value.field == "tune_factors"


# --- the benchmark's verdict ---------------------------------------------------------------

def test_benchmark_verdict_is_the_median_of_interleaved_rounds():
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench",
                        "gls.py")
    spec = importlib.util.spec_from_file_location("bench_gls", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    med, q1, q3, verdict = bench.ratio_stats([1.0, 1.05, 5.47, 1.1, 1.08])   # one noisy round
    assert med == 1.08 and verdict == "PASS" and q1 <= med <= q3
    assert bench.ratio_stats([1.3, 1.25, 0.9, 1.4, 1.35])[3] == "FAIL"
    assert bench.ratio_stats([1.1, 1.22, 1.25, 1.3])[3] == "FAIL (unsteady)"
