"""Per-class metrics of a classifier (issue 25): what a long-tailed or noisy training split does
to each class, measured on the balanced, clean test split.

* ``class_acc``: per class, the share of its test examples predicted as it (its recall; None
  for a class without test examples);
* ``balanced_acc``: the mean of ``class_acc`` over the classes with test examples (balanced
  accuracy, Brodersen et al. 2010; the metric of the long-tailed benchmarks, Cui et al. 2019
  and Cao et al. 2019, whose test sets are balanced);
* ``worst_class_acc``: the smallest ``class_acc``;
* ``rare3_acc``: the mean ``class_acc`` of ``rare_classes``, the :data:`RARE_K` classes with the
  fewest *training* examples (ties: the lower class index first; fewer when the dataset has
  fewer classes) — the tail of a long-tailed split.

Under ``--label-noise``, ``flipped_fit`` is the share of the flipped training labels the final
network predicts: the noise it memorised (Zhang et al. 2017, "Understanding deep learning
requires rethinking generalization"; chance is about (1 − accuracy)/(C − 1)).

:func:`decider_classes` is the class view of GLS's ``--diagnostics``: how often the case that
decided a selection belongs to a rare class, against the rare classes' share of the training
split (the share a deciding case drawn at random would have). :func:`class_results` gathers the
result-row keys of a trained model (:data:`ROW_KEYS`), the regime of its training split
included.
"""
from __future__ import annotations

import statistics

import torch

#: how many of the rarest training classes ``rare3_acc`` averages over
RARE_K = 3
#: the result-row keys of :func:`class_metrics` that are single numbers (averaged per arm)
SCALAR_KEYS = ("balanced_acc", "worst_class_acc", "rare3_acc")
#: the column title of each of :data:`SCALAR_KEYS` in printed tables and reports
TITLES = dict(zip(SCALAR_KEYS, ("balanced acc", "worst-class acc", "rarest-3 acc")))
#: what the :data:`SCALAR_KEYS` measure, in the words of a report
DEFINITIONS = ("Balanced accuracy: the mean of the per-class accuracies; worst-class: the "
               "smallest; rarest-3: the mean over the 3 classes with the fewest training "
               "examples")
#: the result-row keys of :func:`class_results` (without the ``--diagnostics`` ones)
ROW_KEYS = ("imbalance", "label_noise", "class_order", "train_class_counts", "n_flipped",
            *SCALAR_KEYS, "rare_classes", "class_acc", "flipped_fit")


def per_class_accuracy(pred, y, num_classes: int) -> list:
    """Per class ``c``: the share of the examples labelled ``c`` predicted ``c`` (None when no
    example is labelled ``c``)."""
    pred, y = torch.as_tensor(pred).cpu().long(), torch.as_tensor(y).cpu().long()
    out = []
    for c in range(num_classes):
        mask = y == c
        n = int(mask.sum())
        out.append(float((pred[mask] == c).float().mean()) if n else None)
    return out


def rarest_classes(train_counts, k: int = RARE_K) -> list[int]:
    """The ``k`` classes with the fewest training examples (``train_counts[c]``), rarest first;
    ties go to the lower class index."""
    counts = [int(n) for n in train_counts]
    return sorted(range(len(counts)), key=lambda c: (counts[c], c))[:k]


def class_metrics(pred, y, num_classes: int, train_counts, k: int = RARE_K) -> dict:
    """``balanced_acc``, ``worst_class_acc``, ``rare3_acc``, ``rare_classes`` and ``class_acc``
    (module docstring) of predictions ``pred`` against labels ``y``; ``train_counts``: the
    training examples per class, which decide the rare classes.

    >>> m = class_metrics([0, 0, 1, 1, 2, 0], [0, 0, 1, 2, 2, 2], 3, [50, 10, 5])
    >>> m["class_acc"], round(m["balanced_acc"], 4), m["worst_class_acc"], m["rare_classes"]
    ([1.0, 1.0, 0.3333333432674408], 0.7778, 0.3333333432674408, [2, 1, 0])
    """
    acc = per_class_accuracy(pred, y, num_classes)
    present = [a for a in acc if a is not None]
    rare = rarest_classes(train_counts, k)
    rare_acc = [acc[c] for c in rare if acc[c] is not None]
    return {"balanced_acc": statistics.fmean(present) if present else None,
            "worst_class_acc": min(present) if present else None,
            "rare3_acc": statistics.fmean(rare_acc) if rare_acc else None,
            "rare_classes": rare, "class_acc": acc}


def model_class_metrics(model, split, num_classes: int, train_counts) -> dict:
    """:func:`class_metrics` of ``model``'s top-1 predictions on ``split`` (a
    :class:`~deapnn.data.Split`)."""
    from .training import predict
    return class_metrics(predict(model, split.x).argmax(1), split.y, num_classes, train_counts)


def flipped_fit(model, train, flipped) -> float | None:
    """The share of the ``flipped`` training cases (indices into ``train``, a
    :class:`~deapnn.data.Split` holding the noisy labels) that ``model`` predicts as their
    flipped label; None without flipped cases."""
    if not len(flipped):
        return None
    from .training import predict
    index = torch.as_tensor(list(flipped), dtype=torch.long)
    pred = predict(model, train.x[index]).argmax(1).cpu()
    return float((pred == train.y[index].cpu()).float().mean())


def decider_classes(records, train_y, num_classes: int, rare) -> dict:
    """The classes of the deciding cases of GLS's ``--diagnostics`` records
    (``deciding_case``: an index into the training split ``train_y``, None when no case
    decided): ``diag_decider_classes`` (generations decided by a case of each class),
    ``diag_rare_decider`` (the share of decided generations whose case is in ``rare``, None
    when none was decided) and ``rare_train_share`` (the share of the training split in
    ``rare``)."""
    labels = torch.as_tensor(train_y).cpu().long()
    cases = [int(r["deciding_case"]) for r in records if r.get("deciding_case") is not None]
    counts = [0] * num_classes
    for case in cases:
        counts[int(labels[case])] += 1
    rare = set(rare)
    in_rare = sum(counts[c] for c in rare)
    share = float(sum(int((labels == c).sum()) for c in rare)) / max(len(labels), 1)
    return {"diag_decider_classes": counts,
            "diag_rare_decider": in_rare / len(cases) if cases else None,
            "rare_train_share": share}


def decider_noise(records, flipped, n_train: int) -> dict:
    """How often a mislabelled case decided GLS's selection (``--label-noise``): the share of
    decided generations whose ``deciding_case`` is one of the ``flipped`` training indices
    (``diag_noisy_decider``, None when none was decided) against the flipped share of the
    training split (``noisy_train_share``, what a case drawn at random would give). Above the
    share, lexicase rewards the children that fit wrong labels; below it, it avoids them."""
    flipped = {int(i) for i in flipped}
    cases = [int(r["deciding_case"]) for r in records if r.get("deciding_case") is not None]
    return {"diag_noisy_decider": (sum(c in flipped for c in cases) / len(cases)
                                   if cases else None),
            "noisy_train_share": len(flipped) / max(int(n_train), 1)}


def class_results(data, model, records=None) -> dict:
    """The result-row keys of the data regime and the classes (issue 25), for a classification
    dataset: the regime (:func:`deapnn.data.regimes.regime_summary`: ``imbalance``,
    ``label_noise``, ``class_order``, ``train_class_counts``, ``n_flipped``), the per-class
    metrics on the test split (:func:`class_metrics`: ``balanced_acc``,
    ``worst_class_acc``, ``rare3_acc``, ``rare_classes``, ``class_acc``), under label noise the
    memorised share of the flipped labels (:func:`flipped_fit`) and, with the
    ``--diagnostics`` ``records`` of a GLS job, the classes of the deciding cases
    (:func:`decider_classes`) and, under label noise, how often they were mislabelled
    (:func:`decider_noise`)."""
    if data.task != "classification":
        return {}
    from .data.regimes import regime_summary
    from .rebalance import class_counts
    row = regime_summary(data.meta.get("regime"))
    row["train_class_counts"] = class_counts(data.train.y, data.num_classes).tolist()
    row.update(model_class_metrics(model, data.test, data.num_classes, row["train_class_counts"]))
    flipped = (data.meta.get("regime") or {}).get("flipped")
    if flipped:
        row["flipped_fit"] = flipped_fit(model, data.train, flipped)
    if records is not None and any("deciding_case" in r for r in records):
        row.update(decider_classes(records, data.train.y, data.num_classes, row["rare_classes"]))
        if flipped:
            row.update(decider_noise(records, flipped, len(data.train.y)))
    return row


__all__ = ["RARE_K", "SCALAR_KEYS", "TITLES", "DEFINITIONS", "ROW_KEYS", "per_class_accuracy",
           "rarest_classes", "class_metrics", "model_class_metrics", "flipped_fit",
           "decider_classes", "decider_noise", "class_results"]
