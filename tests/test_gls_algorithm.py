"""eaGradientLexicase: clone init, momentum modes, learning-rate schedule, resume equality."""
import copy

import numpy as np
import pytest
import torch
from deap import base

from deapnn.algorithms import eaGradientLexicase
from deapnn.data import load_dataset
from deapnn.gls import GLSConfig, gls_toolbox
from deapnn.models import build_model
from deapnn.training import TrainConfig, scheduled_lr
from operators.gls import mutSubGD


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris", seed=0)


def toolbox_for(data, **kw):
    cfg = GLSConfig(dataset="iris", model="mlp", batch_size=16, **kw)
    return gls_toolbox(data, cfg, device=torch.device("cpu"))


def states_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_children_are_exact_copies_of_the_parent_at_generation_start(iris):
    torch.manual_seed(0)
    parent = build_model("cnn", (1, 8, 8), 10)    # has BatchNorm running buffers
    digits = load_dataset("digits", seed=0)
    tb = gls_toolbox(digits, GLSConfig(batch_size=128), device=torch.device("cpu"))
    seen = []

    def checking_mutate(children, **kw):
        ps = parent.state_dict()
        seen.append(all(states_equal(c.state_dict(), ps) for c in children))
        return mutSubGD(children, digits.train.x, digits.train.y, batch_size=128, **kw)

    tb.register("mutate", checking_mutate)
    del tb.evaluate
    eaGradientLexicase(parent, tb, 3, cfg=TrainConfig(lr=0.05), population_size=3, seed=1)
    assert seen == [True, True, True]
    assert int(parent.state_dict()["features.1.num_batches_tracked"]) > 0


@pytest.mark.parametrize("mode", ["reset", "inherit", "none"])
def test_momentum_modes(iris, mode):
    torch.manual_seed(0)
    parent = build_model("mlp", iris.input_shape, iris.num_classes)
    tb = toolbox_for(iris)
    del tb.evaluate
    log = []

    def inspecting_mutate(children, optimizers, **kw):
        bufs = []
        for opt in optimizers:
            state = [opt.state[p].get("momentum_buffer") for p in opt.param_groups[0]["params"]]
            state = [None if b is None else b.clone() for b in state]   # SGD updates in place
            bufs.append(state)
        log.append({"momentum": [o.param_groups[0]["momentum"] for o in optimizers],
                    "bufs": bufs})
        out = mutSubGD(children, iris.train.x, iris.train.y, optimizers=optimizers,
                       batch_size=16, **kw)
        log[-1]["after"] = [[opt.state[p]["momentum_buffer"].clone()
                             for p in opt.param_groups[0]["params"]] if mode != "none" else None
                            for opt in optimizers]
        return out

    tb.register("mutate", inspecting_mutate)
    _, book = eaGradientLexicase(parent, tb, 3, cfg=TrainConfig(lr=0.05, momentum=0.9),
                                 population_size=3, momentum_mode=mode, seed=0)
    if mode == "none":
        assert all(m == 0.0 for entry in log for m in entry["momentum"])
        return
    assert all(m == 0.9 for entry in log for m in entry["momentum"])
    assert all(b is None for child in log[0]["bufs"] for b in child)      # first generation: fresh
    for g in (1, 2):
        if mode == "reset":
            assert all(b is None for child in log[g]["bufs"] for b in child)
        else:   # every child starts from the previous winner's buffers
            winner = book[g - 1]["winner"]
            for child in log[g]["bufs"]:
                for b, ref in zip(child, log[g - 1]["after"][winner]):
                    assert torch.equal(b, ref)


def test_learning_rate_is_cosine_over_all_generations_and_logbook_fields(iris):
    torch.manual_seed(0)
    parent = build_model("mlp", iris.input_shape, iris.num_classes)
    cfg = TrainConfig(lr=0.1)
    _, book = eaGradientLexicase(parent, toolbox_for(iris), 6, cfg=cfg, population_size=2,
                                 eval_interval=3, seed=0)
    assert [r["lr"] for r in book] == pytest.approx([scheduled_lr(cfg, g, 6) for g in range(6)])
    assert book[0]["lr"] == pytest.approx(0.1)
    for r in book:
        assert r["cases_examined"] >= 0 and r["select_time"] >= 0 and np.isfinite(r["train_loss"])
    assert "test_acc" in book[2] and "test_acc" in book[5] and "test_acc" not in book[0]
    assert book[5]["val_acc"] > 0.6    # learns (3 classes: chance is 1/3)


class Stop(Exception):
    pass


def test_resumed_run_equals_uninterrupted_run(iris):
    cfg = TrainConfig(lr=0.1)

    def run(stop_after=None, resume=None):
        torch.manual_seed(0)
        parent = build_model("mlp", iris.input_shape, iris.num_classes)
        saved = {}

        def checkpoint(state):
            saved["state"] = copy.deepcopy(state)
            if stop_after and state["generation"] == stop_after:
                raise Stop

        try:
            parent, book = eaGradientLexicase(parent, toolbox_for(iris), 6, cfg=cfg,
                                              population_size=3, momentum_mode="inherit", seed=4,
                                              checkpoint=checkpoint, resume_state=resume)
        except Stop:
            return None, None, saved["state"]
        return parent, book, saved["state"]

    full, full_book, _ = run()
    _, _, state = run(stop_after=2)
    resumed, book, _ = run(resume=state)
    assert states_equal(full.state_dict(), resumed.state_dict())
    def strip(b):
        return [{k: v for k, v in r.items() if not k.endswith("_time")} for r in b]

    assert strip(full_book) == strip(book)


def test_bad_arguments(iris):
    parent = build_model("mlp", iris.input_shape, iris.num_classes)
    for kw, match in [({"momentum_mode": "keep"}, "momentum_mode"), ({"init": "x"}, "init"),
                      ({"population_size": 1}, "population_size")]:
        with pytest.raises(ValueError, match=match):
            eaGradientLexicase(parent, base.Toolbox(), 1, cfg=TrainConfig(), **kw)


def test_former_argument_names_warn_and_still_work(iris):
    parent = build_model("mlp", iris.input_shape, iris.num_classes)
    for kw, old in [({"pop_size": 1}, "pop_size"), ({"momentum": "keep"}, "momentum")]:
        with pytest.warns(DeprecationWarning, match=rf"{old}=\).*removed in deapnn 0\.3\.0"), \
                pytest.raises(ValueError):          # the old name reaches the same check
            eaGradientLexicase(parent, base.Toolbox(), 1, cfg=TrainConfig(), **kw)
