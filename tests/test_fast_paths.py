"""Opt-in fast paths (issue 27): ``--compile`` (one compiled graph per architecture, shared by
GLS's children) and ``--precision`` (autocast; fp16 refused on CPU; metrics from float32
logits). Tiny networks only: every compiled graph here is a two-layer MLP."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deap import base
from torch import nn

from deapnn.algorithms import eaGradientLexicase
from deapnn.compiled import compile_stats, reset_compiled
from deapnn.config import ConfigError
from deapnn.fastcheck import cause, check_speed
from deapnn.fastpath import FastPath, Stepper
from deapnn.operators import mutSubGD, selGradientLexicase
from deapnn.operators.gls_cases import loss_matrix, pass_matrix
from deapnn.training import TrainConfig, predict, train, train_steps

COMPILED = FastPath(compile=True)


def tiny(seed=0):
    """Linear → BatchNorm → ReLU → Linear (the BatchNorm buffers are updated by a compiled
    training step too)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def cases(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.fixture
def fresh(monkeypatch, one_thread):
    """No compiled graph from another test; the start-up speed check off (timing only)."""
    monkeypatch.setenv("DEAPNN_SPEED_CHECK", "0")
    reset_compiled()
    yield
    reset_compiled()


def losses_of(fast, steps=3):
    model, (x, y) = tiny(), cases()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    out = [train_steps(model, opt, x, y, F.cross_entropy, [b], fast=fast)[0]
           for b in torch.arange(len(x)).split(16)[:steps]]
    return out, model


def test_compiled_and_eager_training_give_the_same_loss_trajectory(fresh):
    eager, m_eager = losses_of(None)
    compiled, m_compiled = losses_of(COMPILED)
    assert compiled == pytest.approx(eager, rel=1e-5)
    for (name, a), b in zip(m_eager.state_dict().items(), m_compiled.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), name   # BN buffers too
    stats = compile_stats()
    assert stats == {"Sequential training": {"graphs": 1, "recompiles": 0}}


def _gls(ngen, fast, resume=None, keep=None):
    """``ngen`` generations of GLS (p = 2) on a tiny MLP; ``keep`` receives a copy of every
    checkpointed state."""
    x, y = cases(96)
    tb = base.Toolbox()
    tb.register("mutate", mutSubGD, x=x, y=y, batch_size=16, fast=fast)
    tb.register("select", selGradientLexicase, x=x, y=y, chunk_size=16, fast=fast)
    save = (lambda state: keep.append(copy.deepcopy(state))) if keep is not None else None
    return eaGradientLexicase(tiny(), tb, ngen, cfg=TrainConfig(lr=0.05), population_size=2,
                              seed=3, resume_state=resume, checkpoint=save)


def test_a_compiled_gls_run_compiles_its_training_step_once(fresh):
    """3 generations × 2 children, each generation's children new copies: one training graph,
    one inference graph (selection), no recompilation."""
    _gls(3, COMPILED)
    stats = compile_stats()
    assert stats["Sequential training"] == {"graphs": 1, "recompiles": 0}
    assert stats["Sequential inference"] == {"graphs": 1, "recompiles": 0}


def test_resuming_a_compiled_run_is_identical_to_an_uninterrupted_one(fresh):
    states = []
    whole, log_whole = _gls(3, COMPILED, keep=states)
    reset_compiled()            # a resumed run compiles again, in a new process
    resumed, log_resumed = _gls(3, COMPILED, resume=states[1])    # killed after generation 2
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert log_whole.select("train_loss") == log_resumed.select("train_loss")


def test_fp16_is_refused_on_cpu_in_one_line(cli):
    with pytest.raises(ConfigError, match="fp16 needs CUDA") as info:
        FastPath(precision="fp16").check(torch.device("cpu"))
    assert info.value.field == "precision"
    model, (x, y) = tiny(), cases()
    with pytest.raises(ConfigError):
        train(model, x, y, TrainConfig(epochs=1), device=torch.device("cpu"),
              fast=FastPath(precision="fp16"))
    code, out, err = cli("train", "--dataset", "iris", "--model", "mlp", "--epochs", "1",
                         "--precision", "fp16", "--device", "cpu")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and err.startswith("deapnn: error: --precision must")


def test_bf16_trains_and_metrics_come_from_float32_logits(one_thread, monkeypatch):
    monkeypatch.setenv("DEAPNN_SPEED_CHECK", "0")
    bf16 = FastPath(precision="bf16")
    losses, model = losses_of(bf16)
    assert all(np.isfinite(losses))
    step = Stepper(bf16, model, torch.optim.SGD(model.parameters(), lr=0.0), F.cross_entropy,
                   torch.device("cpu"))
    x, y = cases()
    assert step.loss(x[:16], y[:16]).dtype == torch.float32
    model.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.dtype == torch.bfloat16              # what the bf16 forward pass gives
    expected = F.cross_entropy(logits.float(), y, reduction="none").double().numpy()
    assert np.array_equal(loss_matrix([model], x, y, 64, fast=bf16)[0], expected)
    wrong = (logits.float().argmax(1) != y).numpy().astype(np.uint8)
    assert np.array_equal(pass_matrix([model], x, y, 64, fast=bf16)[0], wrong)
    # reported metrics: a float32 forward pass, as without a fast path
    assert predict(model, x, fast=bf16).dtype == torch.float32
    assert torch.equal(predict(model, x, fast=bf16), predict(model, x))


def test_the_speed_check_leaves_the_run_untouched_and_names_a_cause(capsys, one_thread):
    model, (x, y) = tiny(), cases()
    before, rng = copy.deepcopy(model.state_dict()), torch.get_rng_state()
    first = check_speed(FastPath(precision="bf16"), model, F.cross_entropy, x[:16], y[:16],
                        torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(a, b) for a, b in zip(before.values(), model.state_dict().values()))
    if first is not None:           # slower here: one line, naming the measured times
        assert first.startswith("deapnn: warning: --precision bf16 is slower") and "ms" in first
    assert check_speed(FastPath(precision="bf16"), model, F.cross_entropy, x[:16], y[:16],
                       torch.device("cpu")) is None            # measured once per process
    small = cause(COMPILED, torch.device("cpu"), 1e-3, 2e-3)
    assert "call overhead" in small and "1.00 ms" in small


def test_defaults_and_flags(cli):
    from deapnn.baseline import TrainRunConfig
    from deapnn.gls import GLSConfig
    cfg = GLSConfig()
    assert (cfg.compile, cfg.precision) == (False, "fp32") and cfg.fast_path().is_default
    assert set(GLSConfig.invocation_settings()) >= {"compile", "precision"}
    assert TrainRunConfig(compile=True, precision="bf16").fast_path() == FastPath(True, "bf16")
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp16"):
        TrainRunConfig(precision="fp8")
    code, _, err = cli("gls", "--precision", "fp8")
    assert code == 2 and "--precision must be one of" in err


def test_channels_last_training_only_where_measured_faster_and_layout_put_back(monkeypatch,
                                                                               one_thread):
    monkeypatch.setenv("DEAPNN_SPEED_CHECK", "0")
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    assert not FastPath().trains_channels_last(conv, cpu)                 # never by default
    assert not FastPath(compile=True).trains_channels_last(conv, cpu)     # measured: no gain
    assert FastPath(precision="bf16").trains_channels_last(conv, cpu)     # measured: faster
    assert not FastPath(precision="bf16").trains_channels_last(tiny(), cpu)   # no 2-D conv
    x, y = torch.randn(32, 1, 6, 6), torch.randint(0, 3, (32,))

    def trained(fast):
        net = copy.deepcopy(conv)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        losses = [train_steps(net, opt, x, y, F.cross_entropy, [b], fast=fast)[0]
                  for b in torch.arange(32).split(8)]
        assert net[0].weight.is_contiguous()              # the layout is put back after a loop
        return losses
    assert trained(FastPath(channels_last=True)) == pytest.approx(trained(None), rel=1e-5)
    assert all(np.isfinite(trained(FastPath(precision="bf16"))))


def test_an_fp16_run_checkpoints_its_loss_scale_and_resumes_from_it(fresh, monkeypatch):
    # fp16 needs CUDA; CPU autocast and GradScaler("cpu") run the same code path here
    monkeypatch.setattr(FastPath, "check", lambda self, device: None)
    x, y = cases(96)
    cfg, cpu, fp16 = TrainConfig(epochs=2, batch_size=32), torch.device("cpu"), \
        FastPath(precision="fp16")
    states = []
    train(tiny(), x, y, cfg, device=cpu, fast=fp16, checkpoint=states.append)
    assert states[0]["grad_scaler"]["scale"] == 2.0 ** 16         # the scaler's initial scale
    states[0]["grad_scaler"]["scale"] = 8.0                       # a scale the run had reached
    resumed = []
    train(tiny(), x, y, cfg, device=cpu, fast=fp16, checkpoint=resumed.append,
          resume_state=states[0])
    assert resumed[-1]["grad_scaler"]["scale"] == 8.0             # restored, not 2^16 again
    plain = []
    train(tiny(), x, y, cfg, device=cpu, checkpoint=plain.append)
    assert plain[-1]["grad_scaler"] is None                       # fp32: nothing to keep


def test_one_inference_graph_for_any_batch_size_and_size_one_strides(fresh):
    # a (N, 1, k) batch may carry either stride on its size-1 dimension (a view or a copy):
    # dynamo guards on strides, so without canonical strides each would compile again
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
    forward = COMPILED.infer_forward(model)
    x = torch.randn(48, 4)
    views = [x[:32].unsqueeze(1), x.as_strided((48, 1, 4), (4, 1, 1)),
             x[:20].reshape(20, 1, 4)]
    assert {v.stride() for v in views} == {(4, 1, 1), (4, 4, 1)}
    for v in views:
        assert torch.allclose(forward(v), model(v), atol=1e-6)
    stats = compile_stats()["Sequential inference"]
    assert stats == {"graphs": 1, "recompiles": 0}
