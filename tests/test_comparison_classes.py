"""Per-class metrics in the tuned final comparison of the loss searches (issue 25,
deapnn.comparison_classes): each arm's balanced / worst-class / rarest-3 test accuracy at its
tuned lr, paired against the tuned baseline, equal to a hand computation; the real trainers
return deapnn.class_metrics' numbers of the network the test metric is measured on, and never
touch the test split while tuning; a comparison stored before issue 25 loads, resumes and
renders without them."""
import math
import statistics

import pytest
import torch

from deapnn.class_metrics import SCALAR_KEYS
from deapnn.comparison import Arm, Protocol, final_seed, table_lines, tuned_comparison

LR = 0.1
SEEDS = [0, 1, 2]
INDEX = {final_seed(0, s): s for s in SEEDS}
BEST = {"a": 1.0, "b": 2.0}                   # the validation optimum of each arm (multiplier)
#: per arm, the class metrics of its final seeds at its *tuned* lr (None: a failed measurement)
TUNED = {"a": {"balanced_acc": [0.8, 0.8, 0.8], "worst_class_acc": [0.5, 0.6, 0.7],
               "rare3_acc": [0.6, 0.7, None]},
         "b": {"balanced_acc": [0.7, 0.9, 0.85], "worst_class_acc": [0.6, 0.6, 0.9],
               "rare3_acc": [0.9, 0.6, 0.8]}}
CALLS = []


def trainer(context, spec, lr, seed, split):
    """Validation peaks at the arm's BEST multiplier; the test results carry TUNED at the tuned
    lr and 0 elsewhere (so summarising the untuned trainings shows); the val results never
    carry class metrics (a real trainer does not evaluate test there)."""
    CALLS.append((spec, lr, seed, split))
    m = lr / LR
    if split == "val":
        return {"metric": 1.0 - abs(math.log2(m) - math.log2(BEST[spec]))}
    tuned = math.isclose(m, BEST[spec])
    return {"metric": 0.5, **{k: (v[INDEX[seed]] if tuned else 0.0)
                              for k, v in TUNED[spec].items()}}


def old_trainer(context, spec, lr, seed, split):
    """A trainer of a deapnn before issue 25: the metric only."""
    return {"metric": trainer(context, spec, lr, seed, split)["metric"]}


ARMS = [Arm("base", "a", "baseline"), Arm("found", "b", "found")]
PROTO = Protocol(lr=LR, seeds=tuple(SEEDS), run_seed=0, metric="test accuracy",
                 higher_is_better=True, grid=(0.5, 1.0, 2.0))


def test_each_arm_summarises_and_pairs_its_tuned_class_metrics_by_hand():
    out = tuned_comparison(ARMS, PROTO, trainer, None)
    base, found = out["losses"]
    assert (base["multiplier"], found["multiplier"]) == (1.0, 2.0)
    # the baseline: its tuned values, no pair
    worst = base["classes"]["worst_class_acc"]
    assert worst["tuned"]["test"] == [0.5, 0.6, 0.7] and "paired" not in worst
    assert worst["tuned"]["mean"] == pytest.approx(0.6)
    assert worst["tuned"]["std"] == pytest.approx(0.1)
    # a failed measurement is the worst value, left out of the mean
    rare = base["classes"]["rare3_acc"]["tuned"]
    assert rare["test"] == [0.6, 0.7, -math.inf] and rare["mean"] == pytest.approx(0.65)
    assert rare["std"] == pytest.approx(statistics.stdev([0.6, 0.7]))
    # the found loss at its tuned lr (×2, not the configured ×1 whose values are 0)
    c = found["classes"]
    assert c["balanced_acc"]["tuned"]["test"] == [0.7, 0.9, 0.85]
    assert c["balanced_acc"]["tuned"]["mean"] == pytest.approx(0.8166666666666667)
    p = c["worst_class_acc"]["paired"]            # found − base: +0.1, 0, +0.2
    assert p["of"] == "found - base" and p["n"] == 3
    assert p["diff"] == pytest.approx([0.1, 0.0, 0.2]) and p["mean"] == pytest.approx(0.1)
    assert p["std"] == pytest.approx(0.1) and (p["wins"], p["ties"], p["losses"]) == (2, 1, 0)
    p = c["balanced_acc"]["paired"]               # −0.1, +0.1, +0.05
    assert p["mean"] == pytest.approx(0.05 / 3) and (p["wins"], p["losses"]) == (2, 1)
    p = c["rare3_acc"]["paired"]                  # the baseline's failed seed has no pair
    assert p["n"] == 2 and p["diff"] == pytest.approx([0.3, -0.1])
    # the printed table and the report show them
    text = "\n".join(table_lines(out))
    assert "worst-class acc" in text and "rarest-3 acc" in text
    lines = text.splitlines()
    block = lines[next(i for i, t in enumerate(lines) if "per-class" in t):]
    assert block[2].split()[:4] == ["base", "0.8000", "±", "0.0000"]
    assert "(baseline)" in block[2]
    assert "0.7000 ± 0.1732" in block[3] and "+0.1000 (2W/1T/0L)" in block[3]
    assert "| `found` | 0.8167 ± 0.1041 | 0.7000 ± 0.1732 |" in _report(out)


def _report(record) -> str:
    from deapnn.report.document import Report
    from deapnn.report.search import tuned_section
    rep = Report("run", "run/report.md")
    tuned_section(rep, record)
    text = "\n".join(rep.lines)
    assert "unreadable" not in text
    return text


def test_a_comparison_stored_before_issue_25_resumes_and_renders_without_them():
    saved = {}
    old = tuned_comparison(ARMS, PROTO, old_trainer, None, ident="x",
                           checkpoint=lambda s: saved.update(s))
    assert all("classes" not in r for r in old["losses"])
    CALLS.clear()             # resumed by this deapnn: nothing retrained, nothing added
    again = tuned_comparison(ARMS, PROTO, trainer, None, ident="x", state=saved)
    assert CALLS == [] and again == old
    text = "\n".join(table_lines(old))
    assert "per-class" not in text and "worst-class" not in text and "(baseline)" in text
    report = _report(old)
    assert "| `found` |" in report and "worst-class" not in report
    # stopped after the baseline's final trainings: the found loss's come from this deapnn
    partial = {"ident": "x", "results": {k: v for k, v in saved["results"].items()
                                         if not k.startswith("found") or k.endswith("|val")}}
    mixed = tuned_comparison(ARMS, PROTO, trainer, None, ident="x", state=partial)
    base, found = mixed["losses"]
    assert "classes" not in base and found["classes"]["worst_class_acc"]["paired"] is None
    assert found["classes"]["worst_class_acc"]["tuned"]["test"] == [0.6, 0.6, 0.9]
    assert "—" in "\n".join(table_lines(mixed)) and "worst-class" in _report(mixed)


# --- the real trainers ---------------------------------------------------------------------
def _spy(monkeypatch, module):
    """Record the data and the weights each ``class_results`` call of ``module`` measures."""
    import deapnn.class_metrics as cm
    real, seen = cm.class_results, []

    def spy(data, model, records=None):
        seen.append((data, {k: v.detach().clone() for k, v in model.state_dict().items()},
                     model))
        return real(data, model, records)
    monkeypatch.setattr(module, "class_results", spy)
    return seen


def _by_hand(data, state, model):
    """deapnn.class_metrics.class_metrics of the recorded weights' test predictions, and their
    test accuracy."""
    from deapnn.class_metrics import class_metrics
    from deapnn.rebalance import class_counts
    from deapnn.training import predict
    model.load_state_dict(state)
    pred = predict(model, data.test.x).argmax(1)
    expected = class_metrics(pred, data.test.y, data.num_classes,
                             class_counts(data.train.y, data.num_classes).tolist())
    return expected, float((pred == data.test.y.cpu()).float().mean())


class Unlearning:
    """Cross-entropy for the first ``at`` steps, then its negative: the accuracy falls, so the
    best-validation weights are not the last ones."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, logits, y):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss if self.calls <= self.at else -loss


def test_nlfs_tuned_job_reports_the_class_metrics_of_its_best_validation_weights(monkeypatch):
    import deapnn.nlfs.compare as nc
    import deapnn.nlfs.evaluator as ev
    from deapnn.nlfs import NLFSConfig
    from deapnn.nlfs.compare import final_config, tuned_job
    torch.set_num_threads(1)
    final = final_config(NLFSConfig(imbalance=20.0, final_steps=30))
    monkeypatch.setattr(nc, "loss_of", lambda spec: Unlearning(15))
    seen = _spy(monkeypatch, ev)
    val = tuned_job(final, "ce", final.lr, 3, "val")
    assert seen == [] and "test_acc" not in val and not set(SCALAR_KEYS) & set(val)
    res = tuned_job(final, "ce", final.lr, 3, "test")
    (data, state, model), = seen
    assert data.meta["regime"]["imbalance"] == 20.0          # a long-tailed training split
    expected, acc = _by_hand(data, state, model)
    assert acc == pytest.approx(res["metric"]) == pytest.approx(res["test_acc"])
    assert {k: res[k] for k in SCALAR_KEYS} == {k: expected[k] for k in SCALAR_KEYS}
    assert res["worst_class_acc"] <= res["balanced_acc"]


def test_evomal_tuned_job_reports_the_class_metrics_of_its_network(monkeypatch):
    import deapnn.class_metrics as cm
    from deapnn.evomal.compare import tuned_job
    from deapnn.evomal.config import EvoMALRunConfig
    torch.set_num_threads(1)
    cfg = EvoMALRunConfig(dataset="digits", imbalance=20.0, hidden=(8,), final_steps=20,
                          population_size=4, generations=2).validate()
    seen = _spy(monkeypatch, cm)
    spec = {"loss": "baseline", "stop": "last"}
    val = tuned_job(cfg, spec, cfg.lr, 3, "val")
    assert seen == [] and not set(SCALAR_KEYS) & set(val)
    res = tuned_job(cfg, spec, cfg.lr, 3, "test")
    (data, state, model), = seen
    expected, acc = _by_hand(data, state, model)
    assert res["metric"] == pytest.approx(1 - acc)            # the test error of that network
    assert {k: res[k] for k in SCALAR_KEYS} == {k: expected[k] for k in SCALAR_KEYS}
    # regression: nothing changes
    reg = EvoMALRunConfig(dataset="diabetes", hidden=(8,), final_steps=5, population_size=4,
                          generations=2).validate()
    out = tuned_job(reg, spec, reg.lr, 3, "test")
    assert len(seen) == 1 and set(out) == {"metric", "step", "reason", "seconds"}
