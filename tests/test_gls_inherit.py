"""GLS ``momentum_mode="inherit"``: each child starts from its own copy of the winner's momentum
buffers (Ding & Spector 2022, §3; the option documented in docs/faithfulness.md)."""
import numpy as np
import torch
import torch.nn.functional as F
from deap import base
from torch import nn

from deapnn.algorithms import eaGradientLexicase
from deapnn.training import TrainConfig, scheduled_lr
from operators.gls import mutSubGD

P = 3
X = torch.tensor([[1.0, -2.0], [0.5, 1.5], [-1.0, 0.3], [2.0, 0.7], [-0.4, -1.1], [1.2, 0.9]])
Y = torch.tensor([0, 1, 1, 0, 1, 0])
BATCHES = [(X[2 * i:2 * i + 2], Y[2 * i:2 * i + 2]) for i in range(P)]   # child i's batch
WINNERS = [0, 2]                                                        # chosen per generation


def _parent():
    torch.manual_seed(0)
    return nn.Linear(2, 2, bias=False)


def _toolbox(log):
    """One SGD step per child on its own batch; the winner of generation g is ``WINNERS[g]``."""
    tb = base.Toolbox()

    def mutate(children, *, optimizers, generator, augment_generator):
        log.append({"start": [[(opt.state[p].get("momentum_buffer"))
                               for p in opt.param_groups[0]["params"]] for opt in optimizers]})
        log[-1]["start_values"] = [[None if b is None else b.clone() for b in bufs]
                                   for bufs in log[-1]["start"]]
        for child, opt, (xb, yb) in zip(children, optimizers, BATCHES):
            opt.zero_grad()
            loss = F.cross_entropy(child(xb), yb)
            loss.backward()
            opt.step()
            child.train_loss, child.diverged = loss.item(), None
        log[-1]["end"] = [[opt.state[p]["momentum_buffer"] for p in opt.param_groups[0]["params"]]
                          for opt in optimizers]
        log[-1]["end_values"] = [[b.clone() for b in bufs] for bufs in log[-1]["end"]]
        return tuple(children)

    def select(children, k, *, rng, info=None):
        return [children[WINNERS[len(log) - 1]]]

    tb.register("mutate", mutate)
    tb.register("select", select)
    return tb


def _grad(w, xb, yb):
    w = w.clone().requires_grad_(True)
    F.cross_entropy(xb @ w.T, yb).backward()
    return w.grad


def test_two_generations_match_a_hand_computed_momentum_update():
    cfg = TrainConfig(lr=0.1, momentum=0.9, weight_decay=1e-2)
    parent = _parent()
    w0 = parent.weight.detach().clone()
    log = []
    parent, _ = eaGradientLexicase(parent, _toolbox(log), 2, cfg=cfg, population_size=P,
                                   momentum_mode="inherit", seed=0)
    m, wd = cfg.momentum, cfg.weight_decay
    lrs = [scheduled_lr(cfg, g, 2) for g in range(2)]
    # generation 0: fresh buffers; torch's SGD sets buf = d on its first step
    bufs0 = [_grad(w0, *BATCHES[i]) + wd * w0 for i in range(P)]
    w1 = w0 - lrs[0] * bufs0[WINNERS[0]]
    # generation 1: every child starts from the winner's buffer, buf = m·buf + d
    bufs1 = [m * bufs0[WINNERS[0]] + _grad(w1, *BATCHES[i]) + wd * w1 for i in range(P)]
    w2 = w1 - lrs[1] * bufs1[WINNERS[1]]
    for i in range(P):
        torch.testing.assert_close(log[0]["end_values"][i][0], bufs0[i])
        torch.testing.assert_close(log[1]["end_values"][i][0], bufs1[i])
    torch.testing.assert_close(parent.weight.detach(), w2)


def test_children_hold_distinct_buffers_each_a_copy_of_the_previous_winners():
    cfg = TrainConfig(lr=0.1, momentum=0.9)
    log = []
    eaGradientLexicase(_parent(), _toolbox(log), 2, cfg=cfg, population_size=P,
                       momentum_mode="inherit", seed=0)
    start, end = log[1]["start"], log[1]["end"]
    ptrs = {bufs[0].data_ptr() for bufs in end}
    assert len(ptrs) == P                              # p distinct tensors after SubGD
    assert not ptrs & {b[0].data_ptr() for b in log[0]["end"]}   # none is last generation's
    for i in range(P):                                 # each began as the winner's buffer
        torch.testing.assert_close(log[1]["start_values"][i][0],
                                   log[0]["end_values"][WINNERS[0]][0], rtol=0, atol=0)
        assert start[i][0] is end[i][0]


def test_inherit_with_subgd_gives_children_their_own_buffers():
    """The same with the real SubGD mutation on a small MLP (several steps per child)."""
    torch.manual_seed(0)
    x, y = torch.randn(60, 4), torch.randint(3, (60,))
    parent = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    tb = base.Toolbox()
    seen = []

    def mutate(children, *, optimizers, **kw):
        seen.append([[opt.state[p].get("momentum_buffer") for p in opt.param_groups[0]["params"]]
                     for opt in optimizers])
        seen[-1] = [[None if b is None else b.clone() for b in bufs] for bufs in seen[-1]]
        out = mutSubGD(children, x, y, optimizers=optimizers, batch_size=5, **kw)
        seen.append([[opt.state[p]["momentum_buffer"] for p in opt.param_groups[0]["params"]]
                     for opt in optimizers])
        return out

    tb.register("mutate", mutate)
    tb.register("select", lambda children, k, *, rng, info=None: [children[1]])
    eaGradientLexicase(parent, tb, 2, cfg=TrainConfig(lr=0.05), population_size=P,
                       momentum_mode="inherit", seed=0)
    gen0_end, gen1_start, gen1_end = seen[1], seen[2], seen[3]
    for layer in range(4):
        assert len({bufs[layer].data_ptr() for bufs in gen1_end}) == P
        for i in range(P):
            assert torch.equal(gen1_start[i][layer], gen0_end[1][layer])
        # the children trained on different slices, so their buffers now differ
        assert not np.allclose(gen1_end[0][layer].numpy(), gen1_end[2][layer].numpy())
