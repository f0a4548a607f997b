"""Per-class metrics (issue 25): balanced, worst-class and rarest-3 accuracy against a hand
computation, the classes of GLS's deciding cases, the comparison table's new columns and the
per-class section of ``deapnn report``; and a GLS run with ``--imbalance`` and the rebalancing
arms end to end."""
import csv
import json

import pytest
import torch

from deapnn.class_metrics import (class_metrics, decider_classes, decider_noise, flipped_fit,
                                  per_class_accuracy, rarest_classes)
from deapnn.data.base import Split
from deapnn.evaluation import Evaluation
from deapnn.gls.runner import class_lines, summarize
from deapnn.report.classes import class_section
from deapnn.report.document import Report

#: 4 classes; per class (label: predictions): 0: 0 0 0 1 -> 3/4; 1: 1 1 -> 2/2; 2: 0 1 2 -> 1/3;
#: 3: none in the split
PRED = [0, 0, 0, 1, 1, 1, 0, 1, 2]
TRUE = [0, 0, 0, 0, 1, 1, 2, 2, 2]
TRAIN = [40, 5, 12, 5]        # rarest: 1 and 3 (5 each, lower index first), then 2


def test_per_class_metrics_equal_a_hand_computation():
    assert per_class_accuracy(PRED, TRUE, 4) == [0.75, 1.0, pytest.approx(1 / 3), None]
    assert rarest_classes(TRAIN) == [1, 3, 2] and rarest_classes(TRAIN, 1) == [1]
    m = class_metrics(torch.tensor(PRED), torch.tensor(TRUE), 4, TRAIN)
    assert m["balanced_acc"] == pytest.approx((0.75 + 1.0 + 1 / 3) / 3)
    assert m["worst_class_acc"] == pytest.approx(1 / 3)
    # class 3 has no test example: the rarest-3 mean is over classes 1 and 2
    assert m["rare_classes"] == [1, 3, 2] and m["rare3_acc"] == pytest.approx((1.0 + 1 / 3) / 2)
    # balanced accuracy is plain accuracy on a balanced split with equal counts
    even = class_metrics([0, 1, 1, 1], [0, 0, 1, 1], 2, [3, 3])
    assert even["balanced_acc"] == 0.75 and even["worst_class_acc"] == 0.5
    assert even["rare3_acc"] == 0.75 and even["rare_classes"] == [0, 1]


def test_deciding_cases_by_class():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    records = [{"deciding_case": 0}, {"deciding_case": 6}, {"deciding_case": None},
               {"deciding_case": 7}, {}]
    d = decider_classes(records, labels, 3, rare=[2])
    assert d["diag_decider_classes"] == [1, 0, 2]
    assert d["diag_rare_decider"] == pytest.approx(2 / 3) and d["rare_train_share"] == 0.25
    assert decider_classes([], labels, 3, [2])["diag_rare_decider"] is None


def test_mislabelled_deciding_cases_against_the_flipped_share():
    records = [{"deciding_case": 0}, {"deciding_case": 6}, {"deciding_case": None},
               {"deciding_case": 7}, {}, {"deciding_case": 6}]
    d = decider_noise(records, flipped=[6, 7, 3], n_train=8)
    assert d["diag_noisy_decider"] == pytest.approx(3 / 4) and d["noisy_train_share"] == 3 / 8
    assert decider_noise([{}], [1], 4) == {"diag_noisy_decider": None, "noisy_train_share": 0.25}


class _Lookup(torch.nn.Module):
    """Predicts class ``x[:, 0]`` (a fixed prediction per case)."""

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0].long(), 3).float()


def test_flipped_fit_is_the_share_of_flipped_labels_predicted():
    train = Split(torch.tensor([[0.], [1.], [2.], [0.], [1.]]), torch.tensor([0, 2, 2, 1, 1]))
    # flipped cases 1, 2, 3: predicted 1, 2, 0 against their (noisy) labels 2, 2, 1
    assert flipped_fit(_Lookup(), train, [1, 2, 3]) == pytest.approx(1 / 3)
    assert flipped_fit(_Lookup(), train, [2, 4]) == 1.0
    assert flipped_fit(_Lookup(), train, []) is None


def _row(arm, seed, bal, acc, order=(0, 1, 2), deciders=None):
    counts = [30, 10, 3] if order == (0, 1, 2) else [3, 10, 30]
    row = {"arm": arm, "seed": seed, "test_acc": bal, "val_acc": None, "seconds": 1.0,
           "balanced_acc": bal, "worst_class_acc": min(acc), "rare3_acc": sum(acc) / 3,
           "rare_classes": [2, 1, 0], "class_acc": list(acc), "train_class_counts": counts,
           "imbalance": 10.0, "label_noise": 0.0, "class_order": list(order), "n_flipped": 0,
           "flipped_fit": 0.01 * (seed + 1)}
    if deciders:
        row.update(diag_decider_classes=deciders, diag_rare_decider=0.25, rare_train_share=0.07,
                   diag_noisy_decider=0.5 - 0.1 * seed, noisy_train_share=0.2)
    return row


ROWS = [_row("gls", 0, 0.6, [0.9, 0.6, 0.3], deciders=[2, 1, 1]),
        _row("gls", 1, 0.5, [0.2, 0.5, 0.8], order=(2, 1, 0), deciders=[1, 1, 2]),
        _row("sgd_balanced", 0, 0.7, [0.8, 0.7, 0.6]),
        _row("sgd_balanced", 1, 0.4, [0.1, 0.4, 0.7], order=(2, 1, 0))]


def test_the_comparison_table_gains_the_per_class_columns():
    summary = summarize([Evaluation((r["test_acc"],), r) for r in ROWS])
    pair = summary["sgd_balanced"]["gls_minus_arm_balanced_acc"]
    assert pair["mean"] == pytest.approx(0.0) and (pair["wins"], pair["losses"]) == (1, 1)
    assert summary["sgd_balanced"]["gls_minus_arm_worst_class_acc"]["mean"] == \
        pytest.approx(((0.3 - 0.6) + (0.2 - 0.1)) / 2)
    assert summary["gls"]["balanced_acc"]["mean"] == pytest.approx(0.55)
    lines = class_lines(summary)
    assert "balanced acc" in lines[0] and "worst-class acc" in lines[0]
    assert lines[2].startswith("SGD, class-weighted loss") and "(1W/0T/1L)" in lines[2]
    assert lines[-3] == ("flipped training labels the final network predicts (memorised "
                         "noise): GLS 0.015, SGD, class-weighted loss 0.015")
    assert "GLS deciding case in a rarest-3 class: 0.250" in lines[-2]
    assert lines[-1] == ("GLS deciding case mislabelled: 0.450 of decided generations, against "
                         "the 0.200 flipped share of the training split")


def test_report_renders_the_per_class_table_by_frequency_rank(tmp_path):
    rep = Report(str(tmp_path), str(tmp_path / "report.md"))
    class_section(rep, ROWS + [{"arm": "sgd", "seed": 0, "class_acc": "tampered"}],
                  {"gls": "GLS", "sgd_balanced": "SGD, class-weighted loss"})
    text = rep.text()
    assert "## Classes" in text and "long tail RHO 10" in text
    # rank 0 is class 0 for seed 0 and class 2 for seed 1: GLS (0.9 + 0.8) / 2
    assert "| 0 | 0, 2 | 30.0 | 0.8500 | 0.7500 |" in text
    assert "| 2 | 0, 2 | 3.0 | 0.2500 | 0.3500 |" in text
    assert (tmp_path / "report_per_class.png").is_file()
    assert "share of deciding cases" in text
    # GLS's deciders at rank 0: seed 0 2/4 (class 0), seed 1 2/4 (class 2)
    assert "| 0 | 0.698 | 0.500 |" in text
    assert "the noise it memorised" in text and "GLS 0.0150 ± 0.0071" in text
    assert "Deciding case mislabelled (`--label-noise`): 0.450 of decided generations, " \
        "against the 0.200 flipped share" in text


def test_gls_with_imbalance_and_rebalancing_arms_end_to_end(cli, tmp_path):
    out = tmp_path / "run"
    argv = ["gls", "--dataset", "iris", "--model", "mlp", "--epochs", "1",
            "--population-size", "2", "--batch-size", "16", "--imbalance", "3",
            "--label-noise", "0.1", "--compare", "sgd_balanced,sgd_resampled",
            "--tune-factors", "1", "--diagnostics", "--quiet"]
    code, stdout, err = cli(*argv, "--out", out)
    assert code == 0, err
    assert "training split long tail RHO 3, label noise 0.1" in stdout
    assert "SGD, balanced sampling" in stdout and "balanced acc" in stdout
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["imbalance"] == 3.0 and cfg["label_noise"] == 0.1
    rows = json.loads((out / "results.json").read_text())["results"]
    assert {r["arm"] for r in rows} == {"gls", "sgd_balanced", "sgd_resampled"}
    for r in rows:
        assert r["imbalance"] == 3.0 and r["label_noise"] == 0.1 and r["n_flipped"] > 0
        assert len(r["class_acc"]) == 3 and 0 <= r["balanced_acc"] <= 1
        assert {"worst_class_acc", "rare3_acc", "class_order"} <= set(r)
    gls = next(r for r in rows if r["arm"] == "gls")
    assert "diag_rare_decider" in gls and 0 <= gls["diag_noisy_decider"] <= 1
    assert all(0 <= r["flipped_fit"] <= 1 for r in rows)
    # the deciding cases of the logbook checked against the flipped indices of regime.json
    regime = json.loads((out / "gls" / "seed0" / "regime.json").read_text())
    assert gls["noisy_train_share"] == regime["n_flipped"] / sum(gls["train_class_counts"])
    with open(out / "gls" / "seed0" / "logbook.csv") as fh:
        cases = [int(r["deciding_case"]) for r in csv.DictReader(fh) if r["deciding_case"]]
    assert cases and gls["diag_noisy_decider"] == \
        sum(c in set(regime["flipped"]) for c in cases) / len(cases)
    code, _, err = cli("report", out)
    assert code == 0, err
    text = (out / "report.md").read_text()
    assert "## Classes" in text and "Per-class test accuracy by frequency rank" in text
    # a resume with the same flags is the same run; another value is refused
    code, again, _ = cli("gls", "--resume", out, "--imbalance", "3", "--quiet")
    assert code == 0 and "balanced acc" in again
    code, _, err = cli("gls", "--resume", out, "--imbalance", "4", "--quiet")
    assert code == 2 and "--imbalance 4.0 differs from the run's 3.0" in err
