"""LossGraph genome: compilation against torch oracles, formulas, JSON, parsing (Morgan & Hougen
2024, §3.1)."""
import json
import random

import pytest
import sympy
import torch
import torch.nn.functional as F

from deapnn.losses.graph import GraphError, LossGraph, N_HIDDEN
from deapnn.losses.graph_ops import BINARY, EPS, UNARY

CE = "-(y * log(yhat))"
BAIKAL = "-(log(yhat) - y / yhat)"


def _batch(n=256, c=10, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * scale, torch.randint(0, c, (n,), generator=g)


def test_cross_entropy_from_expression_matches_torch():
    logits, t = _batch()
    loss = LossGraph.from_expression(CE).compile()
    assert torch.allclose(loss(logits, t), F.cross_entropy(logits, t), atol=1e-5)


def test_cross_entropy_gradients_match_torch():
    logits, t = _batch(64)
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    LossGraph.from_expression(CE).compile()(a, t).backward()
    F.cross_entropy(b, t).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-5)


def test_baikal_matches_hand_formula():
    logits, t = _batch()
    yhat = logits.softmax(1)
    y = F.one_hot(t, 10).float()
    hand = -(torch.log(yhat + EPS) - y / (yhat + EPS)).sum(1).mean()
    got = LossGraph.from_expression(BAIKAL).compile()(logits, t)
    assert torch.allclose(got, hand, rtol=1e-5, atol=1e-5)


def test_float_targets_used_as_y():
    logits, t = _batch(32)
    loss = LossGraph.from_expression(CE).compile()
    assert torch.allclose(loss(logits, F.one_hot(t, 10).float()), loss(logits, t))


def test_flip_negates_loss():
    logits, t = _batch(32)
    g = LossGraph.from_expression("y * log(yhat)")
    g.flip = True
    assert torch.allclose(g.compile()(logits, t), F.cross_entropy(logits, t), atol=1e-5)


@pytest.mark.parametrize("i", range(27))
def test_every_unary_op_compiles_and_matches_table(i):
    name, fn, sym = UNARY[i]
    g = LossGraph([[0, 0, 0, 0, 1]] * N_HIDDEN + [[0, 2, 1, 0, 4]], flip=False)
    g.nodes[0] = [i, 0, 0, 1, 0]                  # h0 = op(yhat); root = y * h0
    logits, t = _batch(16, 4)
    yhat = logits.softmax(1)
    y = F.one_hot(t, 4).float()
    expected = (y * fn(yhat)).sum(1).mean()
    assert torch.allclose(g.compile()(logits, t), expected, equal_nan=True)
    # sympy form agrees numerically with torch at the exact (ε-protected) semantics
    expr = g.to_sympy(eps=EPS)
    f = sympy.lambdify(sympy.symbols("y yhat"), expr, modules=["scipy", "numpy"])
    val = float(f(1.0, 0.3))
    ref = float(fn(torch.tensor(0.3, dtype=torch.float64)))
    assert val == pytest.approx(ref, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("i", range(7))
def test_every_binary_op_matches_table(i):
    name, fn, sym = BINARY[i]
    g = LossGraph([[0, 0, 0, 0, 1]] * N_HIDDEN + [[0, i, 1, 1, 0]])   # root = op(yhat, y)
    logits, t = _batch(16, 4)
    yhat = logits.softmax(1)
    y = F.one_hot(t, 4).float()
    assert torch.allclose(g.compile()(logits, t), fn(yhat, y).sum(1).mean())
    f = sympy.lambdify(sympy.symbols("y yhat"), g.to_sympy(eps=EPS), modules="numpy")
    assert float(f(1.0, 0.3)) == pytest.approx(float(fn(torch.tensor(0.3, dtype=torch.float64),
                                                        torch.tensor(1.0, dtype=torch.float64))))


def test_validity_rules():
    # root = y * y: never reaches yhat
    g = LossGraph([[0, 0, 0, 0, 1]] * N_HIDDEN + [[0, 2, 1, 0, 0]])
    assert not g.is_valid()
    with pytest.raises(GraphError, match="yhat"):
        g.validate()
    # h0 <-> h1 cycle on the active path
    nodes = [[0, 2, 1, 1, 5], [0, 2, 1, 0, 4], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 4, 0]]
    with pytest.raises(GraphError, match="cycle"):
        LossGraph(nodes).validate()
    # the same cycle is harmless when inactive
    nodes[4] = [0, 2, 1, 0, 1]
    assert LossGraph(nodes).is_valid()


def test_bad_json_is_rejected_clearly():
    cyc = {"nodes": [[0, 2, 1, 1, 5], [0, 2, 1, 0, 4], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1],
                     [0, 0, 0, 4, 0]], "flip": False}
    with pytest.raises(GraphError, match="cycle"):
        LossGraph.from_json(json.dumps(cyc))
    with pytest.raises(GraphError, match="unary op 99"):
        LossGraph.from_json({"nodes": [[99, 0, 0, 0, 1]] * 5})
    with pytest.raises(GraphError, match="input slot 4 not allowed"):
        LossGraph.from_json({"nodes": [[0, 0, 0, 4, 1]] + [[0, 0, 0, 0, 1]] * 4})
    with pytest.raises(GraphError):
        LossGraph.from_json("not json")


def test_random_genomes_valid_and_json_round_trip():
    rng = random.Random(3)
    for _ in range(200):
        g = LossGraph.random(rng)
        assert g.is_valid()
        back = LossGraph.from_json(g.to_json())
        assert back == g and back.to_expression() == g.to_expression()


@pytest.mark.parametrize("wiring,unary", [("reference", (0.56, 0.66)), ("free", (0.62, 0.78))])
def test_random_arity_probabilities(wiring, unary):
    rng = random.Random(0)
    hidden_unary = root_binary = n = 0
    for _ in range(3000):
        g = LossGraph.random(rng, wiring=wiring)
        hidden_unary += sum(1 - g.nodes[i][2] for i in range(N_HIDDEN))
        root_binary += g.nodes[N_HIDDEN][2]
        n += 1
    # validity filtering biases the root toward binary and (a root reading hidden nodes only
    # must reach y and yhat through them) the hidden nodes a little; drawn at 0.7 unary
    assert unary[0] < hidden_unary / (N_HIDDEN * n) < unary[1]
    assert root_binary / n > 0.75


def test_random_genomes_follow_the_reference_wiring():
    """Morgan & Hougen's implementation: the root reads hidden nodes only and a binary node's
    two inputs are distinct (before, the root read any slot and inputs could coincide)."""
    from deapnn.losses.graph import N_INPUTS, ROOT
    rng = random.Random(5)
    root_reads, same = set(), 0
    for _ in range(500):
        g = LossGraph.random(rng)
        root_reads.update(g.nodes[ROOT][3:] if g.nodes[ROOT][2] else g.nodes[ROOT][3:4])
        same += sum(1 for n in g.nodes if n[3] == n[4])
    assert root_reads == set(range(N_INPUTS, N_INPUTS + N_HIDDEN)) and same == 0
    rng = random.Random(5)
    free = [LossGraph.random(rng, wiring="free") for _ in range(500)]
    assert any(g.nodes[ROOT][3] < N_INPUTS for g in free)
    assert any(n[2] and n[3] == n[4] for g in free for n in g.nodes)
    with pytest.raises(ValueError, match="wiring"):
        LossGraph.random(rng, wiring="any")


def test_expression_round_trip_preserves_values():
    rng = random.Random(11)
    logits, t = _batch(64, 5)
    y, yhat = F.one_hot(t, 5).double(), logits.double().softmax(1)
    for _ in range(150):
        g = LossGraph.random(rng)
        g.flip = rng.random() < 0.5
        back = LossGraph.from_expression(g.to_expression())
        a = g.raw_fn()(y, yhat) * (-1 if g.flip else 1)
        b = back.raw_fn()(y, yhat) * (-1 if back.flip else 1)
        assert torch.allclose(a, b, equal_nan=True), g.to_expression()


def test_expression_text_and_latex():
    g = LossGraph.from_expression(CE)
    assert g.to_expression() == CE
    assert LossGraph.from_expression(BAIKAL).to_expression() == BAIKAL
    y, yhat = sympy.symbols("y yhat")
    assert sympy.simplify(g.to_sympy() - (-y * sympy.log(sympy.Abs(yhat)))) == 0
    tex = g.to_latex()
    assert r"\hat{y}" in tex and r"\log" in tex and tex.startswith(r"\mathcal{L}")


def test_parser_aliases_and_sharing():
    g = LossGraph.from_expression("max(yhat, 0) * y - ln(yhat)^2")
    assert g.to_expression() == "max0(yhat) * y - log(yhat)^2"
    assert LossGraph.from_expression("y * (1 / yhat)").to_expression() == "y * recip(yhat)"
    assert LossGraph.from_expression("sq(y - yhat)").to_expression() == "(y - yhat)^2"
    # shared sub-expression uses one node: 3 hidden + root would not fit otherwise
    shared = LossGraph.from_expression("log(yhat) * y + log(yhat) * yhat")
    assert len(shared.active_nodes()) == 4


def test_parser_top_level_negation_becomes_flip_when_needed():
    text = "-(exp(tanh(sin(abs(yhat)))) * y)"       # 4 hidden + mul root + neg = 6 ops
    g = LossGraph.from_expression(text)
    assert g.flip
    logits, t = _batch(8, 3)
    yhat, y = logits.softmax(1), F.one_hot(t, 3).float()
    ref = -(torch.exp(torch.tanh(torch.sin(yhat.abs()))) * y).sum(1).mean()
    assert torch.allclose(g.compile()(logits, t), ref)


@pytest.mark.parametrize("text,match", [
    ("foo(yhat) * y", "unknown op 'foo'"),
    ("y * z", "unknown variable 'z'"),
    ("2 * y * yhat", "constant 2"),
    ("y", "at least one op"),
    ("log(yhat) * log(yhat)", "does not reach y"),
    ("sin(cos(y))", "unknown op 'cos'"),
    ("exp(sin(tanh(abs(erf(yhat))))) * y", "needs 5 hidden nodes"),
    ("log(yhat, y)", "takes 1 argument"),
    ("y *", "syntax"),
    ("y ** 3 * yhat", "power 2"),
])
def test_parser_errors(text, match):
    with pytest.raises(ValueError, match=match):
        LossGraph.from_expression(text)


def test_compiled_code_is_cached_and_straight_line():
    g = LossGraph.from_expression(BAIKAL)
    assert g.compile() is LossGraph.from_expression(BAIKAL).compile()
    src = g.source()
    assert "for " not in src and src.count("softmax") == 1


def test_protected_div_has_its_own_name_and_prints_as_a_slash():
    """The graph's a/(b+ε) is ``protected_div`` (EvoMAL's tree ``div`` is the analytic quotient);
    formulas still print and parse it as ``a / b`` (and ``div(a, b)``)."""
    from deapnn.losses.graph_ops import BINARY_INDEX, BINARY_NAMES
    assert "protected_div" in BINARY_NAMES and "div" not in BINARY_NAMES
    g = LossGraph.from_expression("y / (yhat + 1)")
    assert g.to_expression() == "y / (yhat + 1)"
    assert LossGraph.from_expression("div(y, yhat + 1)") == g
    assert g.nodes[4][1] == BINARY_INDEX["protected_div"] == 5


def test_operators_use_public_graph_helpers():
    from deapnn.losses.graph import active_order, compile_key, reached_inputs
    g = LossGraph.from_expression("-(y * log(yhat))")
    order = active_order(g.nodes)
    assert order[-1] == 4 and reached_inputs(g.nodes, order) == {0, 1}
    raw, loss = compile_key(g.key(), False)
    assert loss is not None and raw is g.raw_fn()
