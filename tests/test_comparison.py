"""The tuned final comparison (deapnn.comparison, issue 16): the learning rate is chosen on the
validation split only, with tuning seeds disjoint from the final seeds; the untuned rows are
the protocol before tuning; resumable per training; the scale report."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from deapnn.comparison import (DEFAULT_LR_GRID, Arm, Protocol, choose_lr, final_seed,
                               parse_grid, table_lines, tuned_comparison, tuning_seed)
from deapnn.paired import metric_score, paired_stats, seed_summary

CALLS = []
BEST = {"a": 2.0, "b": 0.25}        # each arm's validation optimum (multiplier of lr)


def fake_trainer(context, spec, lr, seed, split):
    """Validation metric peaks at the arm's known multiplier; the test metric is adversarial
    (best at the opposite end of the grid), so looking at test while tuning picks another lr."""
    CALLS.append((spec, lr, seed, split))
    m = lr / context["lr"]
    distance = abs(math.log2(m) - math.log2(BEST[spec]))
    if split == "val":
        return {"metric": 0.9 - 0.1 * distance}
    return {"metric": 0.5 + 0.05 * distance + 1e-3 * (seed % 7)}


def _protocol(**kw):
    return Protocol(**{"lr": 0.05, "seeds": [0, 1, 2, 3, 4], "run_seed": 3,
                       "metric": "test accuracy", "higher_is_better": True, **kw})


ARMS = [Arm("base", "a", "baseline"), Arm("found", "b", "found")]


def test_picks_the_validation_optimum_never_looks_at_test_and_uses_disjoint_seeds():
    CALLS.clear()
    out = tuned_comparison(ARMS, _protocol(), fake_trainer, {"lr": 0.05})
    rows = {r["loss"]: r for r in out["losses"]}
    assert rows["base"]["lr"] == pytest.approx(0.05 * 2.0)
    assert rows["found"]["lr"] == pytest.approx(0.05 * 0.25)
    tune_seeds = {tuning_seed(3, 0)}
    final_seeds = {final_seed(3, s) for s in range(5)}
    assert not tune_seeds & final_seeds
    val = [c for c in CALLS if c[3] == "val"]
    test = [c for c in CALLS if c[3] == "test"]
    # tuning: every grid point of every arm, validation split, tuning seeds only
    assert len(val) == 2 * len(DEFAULT_LR_GRID) and {c[2] for c in val} == tune_seeds
    # the test split is asked for only with final seeds, at the chosen and the configured lr
    assert {c[2] for c in test} == final_seeds
    assert {(c[0], round(c[1], 12)) for c in test} == {
        ("a", 0.1), ("a", 0.05), ("b", 0.0125), ("b", 0.05)}
    # every validation call happened before the first test call
    assert max(i for i, c in enumerate(CALLS) if c[3] == "val") < \
        min(i for i, c in enumerate(CALLS) if c[3] == "test")
    # untuned = configured lr, tuned = chosen lr, on the same final seeds
    assert rows["base"]["untuned"]["test"] == [0.5 + 0.05 * 1 + 1e-3 * (final_seed(3, s) % 7)
                                               for s in range(5)]
    assert rows["found"]["paired"]["n"] == 5 and rows["found"]["paired"]["of"] == "found - base"


def test_lower_is_better_picks_the_minimum_and_counts_lower_as_a_win():
    def trainer(context, spec, lr, seed, split):
        return {"metric": abs(math.log2(lr / 0.01) - 1) + (0 if spec == "x" else 0.5)}
    proto = Protocol(lr=0.01, seeds=[0, 1, 2], run_seed=0, metric="test MSE",
                     higher_is_better=False, grid=(0.5, 1.0, 2.0, 4.0))
    out = tuned_comparison([Arm("b", "y", "baseline"), Arm("f", "x")], proto, trainer, None)
    assert [r["lr"] for r in out["losses"]] == [0.02, 0.02]
    assert out["losses"][1]["paired"]["wins"] == 3 and out["losses"][1]["paired"]["mean"] == -0.5


def test_ties_go_to_the_configured_lr_and_failures_are_worst():
    proto = _protocol(grid=(0.5, 1.0, 2.0))
    assert choose_lr(proto, {0.5: [0.8], 1.0: [0.8], 2.0: [0.8]}) == (1.0, 0.05)
    assert choose_lr(proto, {0.5: [0.7], 1.0: [float("nan")], 2.0: [0.6]})[0] == 0.5
    low = Protocol(lr=1.0, seeds=[0], run_seed=0, metric="m", higher_is_better=False,
                   grid=(0.5, 1.0, 2.0))
    assert choose_lr(low, {0.5: [float("inf")], 1.0: [3.0], 2.0: [2.0]})[0] == 2.0


def test_resume_retrains_nothing_done_and_ends_as_the_uninterrupted_run():
    CALLS.clear()
    full = tuned_comparison(ARMS, _protocol(seeds=[0, 1]), fake_trainer, {"lr": 0.05})
    n = len(CALLS)
    saved = {}

    class Kill(Exception):
        pass

    def dying(context, spec, lr, seed, split):
        if len(CALLS) >= 9:
            raise Kill()
        return fake_trainer(context, spec, lr, seed, split)
    CALLS.clear()
    with pytest.raises(Kill):
        tuned_comparison(ARMS, _protocol(seeds=[0, 1]), dying, {"lr": 0.05}, ident="x",
                         checkpoint=lambda s: saved.update(json.loads(json.dumps(s))))
    assert len(saved["results"]) == 9
    CALLS.clear()
    again = tuned_comparison(ARMS, _protocol(seeds=[0, 1]), fake_trainer, {"lr": 0.05}, ident="x",
                             state=saved)
    assert len(CALLS) == n - 9 and again == full
    CALLS.clear()          # another ident (other training settings): everything retrained
    tuned_comparison(ARMS, _protocol(seeds=[0, 1]), fake_trainer, {"lr": 0.05}, ident="y",
                     state=saved)
    assert len(CALLS) == n


def test_paired_stats_and_table():
    p = paired_stats([0.9, 0.8, 0.7], [0.8, 0.8, 0.9], higher_is_better=True, of="f - b")
    assert (p["wins"], p["ties"], p["losses"]) == (1, 1, 1)
    assert p["diff"] == pytest.approx([0.1, 0.0, -0.2])
    q = paired_stats([0.9, 0.8, 0.7], [0.8, 0.8, 0.9], higher_is_better=False)
    assert (q["wins"], q["losses"]) == (1, 1) and q["wilcoxon_p"] is not None
    assert paired_stats([float("inf")], [1.0], higher_is_better=False) is None
    out = tuned_comparison(ARMS, _protocol(seeds=[0, 1]), fake_trainer, {"lr": 0.05})
    text = "\n".join(table_lines(out))
    assert "base" in text and "(baseline)" in text and "W/" in text and "×{1/8,1/4" in text


@pytest.mark.parametrize("higher, worst", [(True, -math.inf), (False, math.inf)])
def test_a_failed_metric_scores_worst_and_stays_out_of_the_mean(higher, worst):
    for bad in (None, "oops", float("nan"), worst):
        assert metric_score(bad, higher) == worst
    assert metric_score(-worst, higher) == worst     # the wrong infinity is no win
    assert metric_score("0.25", higher) == 0.25
    s = seed_summary([0.5, worst, 0.7], higher)
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1 * math.sqrt(2))
    assert s["test"] == [0.5, worst, 0.7]
    assert seed_summary([worst], higher) == {"mean": worst, "std": 0.0, "test": [worst]}


@pytest.mark.parametrize("text,why", [("0,1", "positive"), ("1,x", "not a number"),
                                      ("1,1", "repeated"), ("", "no learning")])
def test_parse_grid_rejects(text, why):
    with pytest.raises(ValueError, match=why):
        parse_grid(text)


def test_parse_grid_fractions():
    assert parse_grid("1/8, 1/4,1,2") == [0.125, 0.25, 1.0, 2.0]


# --- scale report ----------------------------------------------------------------------------
def test_scale_report_flags_multiples_of_ce_and_label_smoothing():
    from deapnn.losses.library import get
    from deapnn.losses.scale import scale_report
    state = torch.random.get_rng_state()
    for k in (0.5, 2.606):
        rep = scale_report(lambda z, y, k=k: k * F.cross_entropy(z, y), 10)
        assert rep["flag"] is not None and rep["flag"].endswith("× CE")
        assert rep["multiples"]["CE"]["k"] == pytest.approx(k, rel=1e-9)
        assert rep["grad_ratio"] == pytest.approx(k, rel=1e-9)
    # CE as an evolved graph (protected log) plus a constant: still k × CE
    rep = scale_report(lambda z, y: 2.606 * get("-(y * log(yhat))")(z, y) + 1.0, 10)
    assert rep["flag"] and "CE" in rep["flag"] and "label" not in rep["flag"]
    rep = scale_report(get("label_smoothing"), 10)
    assert rep["flag"] and rep["flag"].endswith("× label-smoothed CE")
    for name in ("baikal", "mse", "focal"):
        rep = scale_report(get(name), 10)
        assert rep["flag"] is None, name
        assert min(m["residual"] for m in rep["multiples"].values()) > 1e-2
    assert torch.equal(state, torch.random.get_rng_state())      # global RNG untouched


def test_scale_report_of_an_evomal_network_and_regression():
    from deapnn.losses.metaloss import MetaLossNetwork
    from deapnn.losses.scale import scale_report
    # the squared error tree with every edge weight c: c⁴ × the squared error (k = 3)
    net = MetaLossNetwork("square(sub(y, fx))", task="regression")
    net.set_weights([3 ** 0.25] * net.n_edges)
    rep = scale_report(net, 1, "regression")
    assert rep["flag"] is not None and rep["flag"].endswith("× MSE")
    assert rep["multiples"]["MSE"]["k"] == pytest.approx(3, rel=1e-5)
    bad = scale_report(lambda z, y: (z - y.reshape(z.shape)).abs().mean(), 1, "regression")
    assert bad["flag"] is None
    nan = scale_report(lambda z, y: (z * float("nan")).sum(), 10)
    assert nan["grad_ratio"] is None and nan["flag"] is None
