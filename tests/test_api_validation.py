"""Python API hardening (issue 14): bad data raises a TypeError/ValueError naming the argument and
the valid range instead of returning picks, losses or genomes computed from garbage."""
import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from deapnn.config import ConfigError
from deapnn.evomal.config import EvoMALRunConfig
from deapnn.losses import library
from deapnn.losses.graph import GraphError, LossGraph
from deapnn.losses.graph_expr import MAX_FORMULA_DEPTH
from deapnn.losses.metaloss import MetaLossNetwork
from deapnn.losses.tree import MAX_TREE_HEIGHT, TreeLoss, parse_tree
from operators.gls import mutSubGD, selGradientLexicase

N, D, C = 20, 4, 3


def _models(n=3):
    torch.manual_seed(0)
    return [nn.Linear(D, C) for _ in range(n)]


def _x():
    return torch.randn(N, D, generator=torch.Generator().manual_seed(1))


def _y():
    return torch.randint(C, (N,), generator=torch.Generator().manual_seed(2))


# (case, x, y, extra kwargs, exception, message fragment)
SELECT_CASES = [
    ("labels above the output width", _x, lambda: _y() + C, {}, ValueError,
     r"class indices up to 5.*valid labels are 0\.\.2"),
    ("labels above the output width, loss metric", _x, lambda: _y() + C,
     {"case_metric": "loss"}, ValueError, r"valid labels are 0\.\.2"),
    ("negative labels", _x, lambda: _y() - C, {}, ValueError, r"y must hold class indices >= 0"),
    ("float labels", _x, lambda: _y().float(), {}, TypeError, r"y must hold integer class"),
    ("all-NaN x", lambda: torch.full((N, D), float("nan")), _y, {}, ValueError, r"x holds NaN"),
    ("empty x", lambda: _x()[:0], lambda: _y()[:0], {}, ValueError, r"x and y are empty"),
    ("len(y) != len(x)", _x, lambda: _y()[:10], {}, ValueError,
     r"len\(x\)=20 and len\(y\)=10"),
    ("numpy x", lambda: _x().numpy(), _y, {}, TypeError,
     r"x must be a torch\.Tensor, got numpy\.ndarray"),
    ("numpy y", _x, lambda: _y().numpy(), {}, TypeError, r"y must be a torch\.Tensor"),
    # issue 23: torch's RuntimeError from inside the forward pass, before
    ("float64 x", lambda: _x().double(), _y, {}, TypeError,
     r"x must have the models' dtype torch\.float32, got torch\.float64"),
    ("int x", lambda: _x().long(), _y, {}, TypeError, r"x must be a floating-point tensor"),
    ("wrong feature count", lambda: torch.randn(N, D + 1), _y, {}, ValueError,
     r"x holds cases of shape \(5,\), which the models do not take"),
]


@pytest.mark.parametrize("case,x,y,kw,exc,match", SELECT_CASES, ids=[c[0] for c in SELECT_CASES])
def test_selGradientLexicase_rejects_bad_cases(case, x, y, kw, exc, match):
    with pytest.raises(exc, match=match):
        selGradientLexicase(_models(), 1, x=x(), y=y(), rng=np.random.default_rng(0), **kw)


def test_selGradientLexicase_nan_in_one_case_is_found_when_examined():
    x = _x()
    x[7, 2] = float("nan")
    with pytest.raises(ValueError, match=r"x holds NaN \(cases \[7\]"):
        # max_chunk_size = N: every case is examined in one or two chunks
        selGradientLexicase(_models(), 1, x=x, y=_y(), rng=np.random.default_rng(0),
                            chunk_size=N, max_chunk_size=N)


def test_selGradientLexicase_valid_labels_at_the_top_class_still_select():
    y = _y()
    y[0] = C - 1                      # the largest valid label
    picks = selGradientLexicase(_models(), 2, x=_x(), y=y, rng=np.random.default_rng(0))
    assert len(picks) == 2


def _mutate(batch_size=8, n_children=3, x=None, y=None):
    children = _models(n_children)
    opts = [torch.optim.SGD(c.parameters(), lr=0.1) for c in children]
    return mutSubGD(children, _x() if x is None else x, _y() if y is None else y,
                    optimizers=opts, batch_size=batch_size)


MUTATE_CASES = [
    ("fewer batches than children", {"batch_size": 10}, ValueError,
     r"2 mini-batch\(es\), fewer than the 3 children"),
    ("empty x", {"x": _x()[:0], "y": _y()[:0]}, ValueError, r"0 mini-batch\(es\)"),
    ("extra labels", {"y": torch.randint(C, (30,))}, ValueError,
     r"len\(x\)=20 and len\(y\)=30"),
    ("batch_size 0", {"batch_size": 0}, ValueError, r"batch_size must be an integer >= 1, got 0"),
    ("batch_size -1", {"batch_size": -1}, ValueError, r"batch_size must be an integer >= 1"),
    ("batch_size 2.5", {"batch_size": 2.5}, TypeError, r"batch_size must be an integer >= 1"),
    ("numpy x", {"x": _x().numpy()}, TypeError, r"x must be a torch\.Tensor"),
    # issue 23: torch's IndexError/RuntimeError from inside training, before
    ("labels above the output width", {"y": _y() + C}, ValueError,
     r"mutSubGD: y holds class indices up to 5.*valid labels are 0\.\.2"),
    ("negative labels", {"y": _y() - C}, ValueError, r"mutSubGD: y must hold class indices >= 0"),
    ("float labels", {"y": _y().float()}, TypeError, r"mutSubGD: y must hold integer class"),
    ("(N, 1) labels", {"y": _y()[:, None]}, ValueError, r"y must be a 1-D tensor"),
    ("float64 x", {"x": _x().double()}, TypeError,
     r"mutSubGD: x must have the models' dtype torch\.float32, got torch\.float64"),
    ("int x", {"x": _x().long()}, TypeError, r"mutSubGD: x must be a floating-point tensor"),
    ("wrong feature count", {"x": torch.randn(N, D + 1)}, ValueError,
     r"mutSubGD: x holds cases of shape \(5,\), which the models do not take"),
]


@pytest.mark.parametrize("case,kw,exc,match", MUTATE_CASES, ids=[c[0] for c in MUTATE_CASES])
def test_mutSubGD_rejects_bad_arguments(case, kw, exc, match):
    with pytest.raises(exc, match=match):
        _mutate(**kw)


def test_mutSubGD_checks_leave_the_children_untouched():
    """The checks (one min/max of y, one eval-mode forward of one case) change neither the
    children, nor their mode, nor the global RNG: a checked call trains as before."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, C))
    children = [copy.deepcopy(model) for _ in range(2)]
    before = [copy.deepcopy(c.state_dict()) for c in children]
    with pytest.raises(ValueError, match="valid labels are 0..2"):
        mutSubGD(children, _x(), _y() + C, optimizers=[torch.optim.SGD(c.parameters(), lr=0.1)
                                                        for c in children], batch_size=8)
    assert all(c.training for c in children)
    for c, state in zip(children, before):
        assert all(torch.equal(v, state[k]) for k, v in c.state_dict().items())


def test_mutSubGD_with_its_own_loss_takes_other_targets():
    """A custom ``loss_fn`` defines its targets: the class-index checks are the default loss's."""
    children = _models(2)
    opts = [torch.optim.SGD(c.parameters(), lr=0.1) for c in children]
    out = mutSubGD(children, _x(), torch.randn(N, C), optimizers=opts, batch_size=8,
                   loss_fn=nn.functional.mse_loss)
    assert all(np.isfinite(c.train_loss) for c in out)


def test_mutSubGD_one_batch_per_child_is_enough():
    # 20 cases, batch 7: 3 batches (7, 7, 6) for 3 children, each gets one step
    out = _mutate(batch_size=7)
    assert [c.subgd_steps for c in out] == [1, 1, 1]
    assert all(np.isfinite(c.train_loss) and c.train_loss > 0 for c in out)


CE_TREE = "mul(-1, mul(y, log(fx)))"


@pytest.mark.parametrize("target", [torch.tensor([0.9, 1.5, 2.2, 0.1]),
                                    torch.tensor([0.0, 1.0, 2.0, 1.0]),
                                    torch.tensor([[0], [1], [2], [1]]),
                                    torch.tensor([True, False, True, False])],
                         ids=["fractional", "integral floats", "(N, 1) indices", "bool"])
def test_TreeLoss_rejects_non_index_class_targets(target):
    with pytest.raises(ValueError, match=r"integer class indices of shape \(4,\)"):
        TreeLoss(CE_TREE)(torch.randn(4, C), target)


def test_TreeLoss_integer_targets_still_give_cross_entropy():
    out, target = torch.randn(4, C), torch.tensor([0, 1, 2, 1])
    ce = torch.nn.functional.cross_entropy(out, target)
    assert torch.allclose(TreeLoss(CE_TREE)(out, target), ce, atol=1e-5)


# issue 23: torch's RuntimeError (one_hot, reshape, broadcast) or a silent wrong loss, before
LOSS_CASES = [
    ("label above the classes", lambda: (torch.randn(4, C), torch.tensor([0, 1, 5, 1])),
     "classification", ValueError, r"target must hold class indices in 0\.\.2.*from 0 to 5"),
    ("negative label", lambda: (torch.randn(4, C), torch.tensor([0, -1, 2, 1])),
     "classification", ValueError, r"target must hold class indices in 0\.\.2.*from -1"),
    ("label 2 for one output", lambda: (torch.randn(4, 1), torch.tensor([0, 1, 2, 1])),
     "classification", ValueError, r"target must hold labels in \[0, 1\] for one output"),
    ("fewer labels than outputs", lambda: (torch.randn(4, 1), torch.tensor([0, 1, 1])),
     "classification", ValueError, r"target must hold 4 labels"),
    ("empty batch", lambda: (torch.randn(0, C), torch.tensor([], dtype=torch.long)),
     "classification", ValueError, r"output must hold at least one case, got shape \(0, 3\)"),
    ("integer output", lambda: (torch.ones(4, C, dtype=torch.long), torch.tensor([0, 1, 2, 1])),
     "classification", TypeError, r"output must be a floating-point tensor"),
    ("numpy output", lambda: (np.zeros((4, C), np.float32), torch.tensor([0, 1, 2, 1])),
     "classification", TypeError, r"output must be a torch\.Tensor, got ndarray"),
    ("regression, 5 targets for 4 outputs", lambda: (torch.randn(4, 1), torch.randn(5)),
     "regression", ValueError, r"target must hold one value per output value.*got shape \(5,\)"),
    ("regression, (2, 2) targets for 4 outputs", lambda: (torch.randn(4, 1), torch.randn(2, 2)),
     "regression", ValueError, r"got shape \(2, 2\)"),
    ("regression, empty batch", lambda: (torch.randn(0, 1), torch.randn(0)),
     "regression", ValueError, r"output must hold at least one case"),
]
TREES = {"classification": CE_TREE, "regression": "square(sub(y, fx))"}


@pytest.mark.parametrize("cls", [TreeLoss, MetaLossNetwork], ids=["TreeLoss", "MetaLossNetwork"])
@pytest.mark.parametrize("case,batch,task,exc,match", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_trees_reject_a_batch_they_cannot_take(cls, case, batch, task, exc, match):
    output, target = batch()
    with pytest.raises(exc, match=match):
        cls(TREES[task], task=task)(output, target)


@pytest.mark.parametrize("cls", [TreeLoss, MetaLossNetwork], ids=["TreeLoss", "MetaLossNetwork"])
def test_loss_trees_still_take_valid_batches(cls):
    out = torch.randn(4, C)
    assert torch.isfinite(cls(CE_TREE)(out, torch.tensor([0, 1, 2, 2])))
    assert torch.isfinite(cls(CE_TREE)(torch.randn(4, 1), torch.tensor([0.0, 1.0, 0.5, 1.0])))
    reg = cls(TREES["regression"], task="regression")
    for target in (torch.randn(4), torch.randn(4, 1)):
        assert torch.isfinite(reg(torch.randn(4, 1), target))


def _chain(height):
    """``sub(y, square(...square(fx)...))``: a tree of the given height."""
    return "sub(y, " + "square(" * (height - 1) + "fx" + ")" * height


@pytest.mark.parametrize("build", [TreeLoss, parse_tree], ids=["TreeLoss", "parse_tree"])
def test_loss_trees_deeper_than_the_bound_raise_valueerror(build):
    with pytest.raises(ValueError, match=rf"taller than {MAX_TREE_HEIGHT}"):
        build(_chain(2000))
    with pytest.raises(ValueError, match=rf"taller than {MAX_TREE_HEIGHT}"):
        build(_chain(MAX_TREE_HEIGHT + 1))
    tree = parse_tree(_chain(MAX_TREE_HEIGHT))
    assert tree.height == MAX_TREE_HEIGHT


def test_tree_at_the_height_bound_compiles_and_evaluates():
    loss = TreeLoss(_chain(MAX_TREE_HEIGHT))
    assert torch.isfinite(loss(torch.randn(2, C), torch.tensor([0, 1])))


def test_evomal_max_height_is_bounded_below_the_tree_bound():
    EvoMALRunConfig(max_height=MAX_TREE_HEIGHT - 1).validate()
    with pytest.raises(ConfigError, match=r"max_height must be an integer >= 1 and <= 89"):
        EvoMALRunConfig(max_height=MAX_TREE_HEIGHT).validate()


def _genome(**change):
    d = LossGraph.from_expression("-(y * log(yhat))").to_dict()
    d = json.loads(json.dumps(d))
    for (node, field), value in change.get("nodes", {}).items():
        d["nodes"][node][field] = value
    if "flip" in change:
        d["flip"] = change["flip"]
    return d


GENOME_CASES = [
    ("float index 0.99", {"nodes": {(0, 3): 0.99}}, r"node 0: in_a must be an integer, got 0\.99"),
    ("float op 1.0", {"nodes": {(4, 1): 1.0}}, r"node 4: binary must be an integer, got 1\.0"),
    ("bool arity flag", {"nodes": {(0, 2): True}},
     r"node 0: is_binary must be an integer, got True"),
    ("string slot", {"nodes": {(0, 4): "1"}}, r"node 0: in_b must be an integer, got '1'"),
    ("flip 'no'", {"flip": "no"}, r"flip must be true or false, got 'no'"),
    ("flip 1", {"flip": 1}, r"flip must be true or false, got 1"),
]


@pytest.mark.parametrize("case,change,match", GENOME_CASES, ids=[c[0] for c in GENOME_CASES])
@pytest.mark.parametrize("as_text", [False, True], ids=["dict", "json"])
def test_LossGraph_from_json_rejects_non_integer_fields_and_non_bool_flip(case, change, match,
                                                                            as_text):
    data = _genome(**change)
    with pytest.raises(GraphError, match=match):
        LossGraph.from_json(json.dumps(data) if as_text else data, validate=False)


def test_LossGraph_from_json_round_trip_unchanged():
    g = LossGraph.from_expression("-(y * log(yhat))")
    assert LossGraph.from_json(g.to_json()) == g
    assert LossGraph.from_json({**g.to_dict(), "flip": True}).flip is True


def test_LossGraph_constructor_rejects_bad_flip_and_accepts_numpy_ints():
    nodes = LossGraph.from_expression("-(y * log(yhat))").nodes
    with pytest.raises(GraphError, match=r"flip must be a boolean, got 'no'"):
        LossGraph(nodes, flip="no")
    g = LossGraph([[np.int64(v) for v in n] for n in nodes], flip=np.bool_(True))
    assert g.nodes == nodes and g.flip is True
    assert all(type(v) is int for n in g.nodes for v in n)


@pytest.mark.parametrize("content", [[1, 2], "abc", 3])
def test_losses_get_with_a_registry_that_is_not_an_object(tmp_path, content):
    path = tmp_path / "losses.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"is not a deapnn loss registry"):
        library.get("myloss", path=str(path))


@pytest.mark.parametrize("path", [["losses.json"], 3])
def test_losses_get_with_a_registry_path_of_the_wrong_type(path):
    with pytest.raises(TypeError, match=r"path \(the loss registry file or directory\) must be"):
        library.get("myloss", path=path)


@pytest.mark.parametrize("text,match", [
    (" + ".join(["y"] * 5000), r"9999 tokens; at most 1000"),
    ("log(" * 5000 + "y" + ")" * 5000, r"tokens; at most 1000"),
    ("log(" * 150 + "y" + ")" * 150, r"parentheses nested 150 deep; at most 100"),
    (" + ".join(["y"] * 400), r"operators nested more than 100 deep"),
], ids=["5000 terms", "5000 deep", "150 parentheses", "400-term chain"])
def test_from_expression_bounds_length_and_depth(text, match):
    with pytest.raises(ValueError, match=match) as info:
        LossGraph.from_expression(text)
    assert len(str(info.value)) < 300        # the formula is echoed shortened, on one line
    assert "\n" not in str(info.value)


def test_from_expression_at_the_depth_bound_still_parses():
    depth = MAX_FORMULA_DEPTH - 2       # plus the formula's own two levels
    g = LossGraph.from_expression("(" * depth + "-(y * log(yhat))" + ")" * depth)
    assert g == LossGraph.from_expression("-(y * log(yhat))")
