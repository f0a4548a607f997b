"""Report section of the classes of a ``deapnn gls`` run (issue 25): the training split's regime
(long tail, label noise), the per-class metrics of every arm on the test split with GLS − arm
paired by seed (:mod:`deapnn.class_metrics`), a per-class table and plot of test accuracy by
class frequency (one line per arm), and with ``--diagnostics`` how often each class decided
GLS's selection against its share of the training split.

Classes are compared by *frequency rank* (0: the class with the most training examples, ties to
the lower class index), not by label: with ``--imbalance`` the class order is drawn from each
seed, so rank ``r`` is the same place in the long tail for every seed."""
from __future__ import annotations

import statistics

from ..class_metrics import DEFINITIONS, TITLES
from ..paired import paired_short, paired_stats
from .document import Report, code, finite, mean_std, plain, sample_std

#: (result-row key, column title) of the per-class metrics
_METRICS = tuple(TITLES.items())


def _counts(row: dict) -> list[int] | None:
    counts = row.get("train_class_counts")
    if isinstance(counts, list) and counts and all(isinstance(n, int) and not isinstance(n, bool)
                                                   and n >= 0 for n in counts):
        return counts
    return None


def _by_rank(row: dict) -> list[tuple[int, int, float | None]] | None:
    """``(class, training examples, test accuracy)`` of a result row, most frequent first;
    None for a row without well-formed per-class fields."""
    counts, acc = _counts(row), row.get("class_acc")
    if counts is None or not isinstance(acc, list) or len(acc) != len(counts) \
            or not all(a is None or finite(a) for a in acc):
        return None
    order = sorted(range(len(counts)), key=lambda c: (-counts[c], c))
    return [(c, counts[c], acc[c]) for c in order]


def _mean(values) -> float | None:
    values = [v for v in values if finite(v)]
    return statistics.fmean(values) if values else None


def _pairs(rows: list[dict], arm: str, key: str) -> str:
    gls = {r["seed"]: r[key] for r in rows if r["arm"] == "gls" and finite(r.get(key))}
    other = {r["seed"]: r[key] for r in rows if r["arm"] == arm and finite(r.get(key))}
    seeds = sorted(set(gls) & set(other), key=str)
    p = paired_stats([gls[s] for s in seeds], [other[s] for s in seeds], higher_is_better=True)
    return paired_short(p)


def _regime(rep: Report, rows: list[dict]) -> None:
    from ..data.regimes import regime_text
    regimes = sorted({(r.get("imbalance"), r.get("label_noise")) for r in rows
                      if (r.get("imbalance") is None or finite(r.get("imbalance")))
                      and (not r.get("label_noise") or finite(r.get("label_noise")))}, key=str)
    words = "; ".join(regime_text(i, n) for i, n in regimes) or "unknown"
    rep.para(f"Training split: {plain(words)} (validation and test splits balanced and clean; "
             "`--imbalance`, `--label-noise`).")
    seeds = {}
    for r in rows:
        if r.get("class_order") is not None or r.get("n_flipped"):
            seeds.setdefault(r["seed"], r)
    if seeds:
        rep.table(["seed", "class order (head first)", "training examples of class 0, 1, …",
                   "labels flipped"],
                  [[str(s), r.get("class_order") or "—", _counts(r) or "—",
                    r.get("n_flipped", 0)] for s, r in sorted(seeds.items(), key=str)])


def class_section(rep: Report, rows: list[dict], titles: dict, paired: bool = True) -> None:
    """The section (module docstring) over the finished jobs' result ``rows``; nothing when no
    row has per-class metrics (a regression dataset, a run of an earlier deapnn). ``paired``:
    with the GLS − arm column (a ``train`` run has one arm)."""
    rows = [r for r in rows if _by_rank(r) is not None and isinstance(r.get("seed"), int)
            and isinstance(r.get("arm"), str)]
    if not rows:
        return
    rep.heading("Classes")
    _regime(rep, rows)
    arms = [a for a in titles if any(r["arm"] == a for r in rows)]
    arms += [a for a in dict.fromkeys(r["arm"] for r in rows) if a not in arms]
    table = []
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        cells = [f"{titles.get(arm, arm)} ({code(arm)})"]
        for key, _ in _METRICS:
            vals = [r[key] for r in mine if finite(r.get(key))]
            cells.append(mean_std(statistics.fmean(vals), sample_std(vals)) if vals else "—")
        if paired:
            cells.append(" / ".join(_pairs(rows, arm, k) for k, _ in _METRICS)
                         if arm != "gls" else "—")
        table.append(cells)
    rep.table(["arm"] + [t for _, t in _METRICS]
              + ["GLS − arm, paired: balanced / worst / rarest-3"] * paired, table)
    rep.para(f"Test split, mean ± std over seeds. {DEFINITIONS} (Cui et al. 2019; Cao et "
             "al. 2019).")
    _memorised(rep, rows, arms, titles)
    _per_class(rep, rows, arms, titles)
    _deciders(rep, [r for r in rows if r["arm"] == "gls"])


def _memorised(rep: Report, rows: list[dict], arms: list, titles: dict) -> None:
    fits = []
    for arm in arms:
        vals = [r["flipped_fit"] for r in rows if r["arm"] == arm and finite(r.get("flipped_fit"))]
        if vals:
            spread = mean_std(statistics.fmean(vals), sample_std(vals))
            fits.append(f"{titles.get(arm, arm)} {spread}")
    if fits:
        rep.para("Flipped training labels the final network predicts (`--label-noise`: the noise "
                 "it memorised; chance is about (1 − accuracy)/(classes − 1)), mean ± std over "
                 "seeds: " + "; ".join(fits) + ".")


def _per_class(rep: Report, rows: list[dict], arms: list[str], titles: dict) -> None:
    ranked = {id(r): _by_rank(r) for r in rows}
    size = min(len(v) for v in ranked.values())
    table, series = [], {}
    counts = [_mean(ranked[id(r)][k][1] for r in rows) for k in range(size)]
    for k in range(size):
        classes = sorted({ranked[id(r)][k][0] for r in rows})
        cells = [str(k), classes, f"{counts[k]:.1f}" if counts[k] is not None else "—"]
        for arm in arms:
            acc = _mean(ranked[id(r)][k][2] for r in rows if r["arm"] == arm)
            cells.append(f"{acc:.4f}" if acc is not None else "—")
        table.append(cells)
    for arm in arms:
        points = sorted((counts[k], _mean(ranked[id(r)][k][2] for r in rows if r["arm"] == arm))
                        for k in range(size))
        points = [(x, y) for x, y in points if x is not None and y is not None]
        series[titles.get(arm, arm)] = ([x for x, _ in points], [y for _, y in points])
    rep.para("Per-class test accuracy by frequency rank (0: the class with the most training "
             "examples; with `--imbalance` the class order is drawn per seed, so a rank is one "
             "place in the long tail), mean over seeds:")
    rep.table(["rank", "classes (over seeds)", "training examples"]
              + [f"{titles.get(a, a)} ({code(a)})" for a in arms], table)
    rep.plot("per_class", series, "training examples of the class (mean over seeds)",
             "test accuracy of the class", "per-class test accuracy by class frequency")


def _deciders(rep: Report, rows: list[dict]) -> None:
    rows = [r for r in rows if isinstance(r.get("diag_decider_classes"), list)
            and len(r["diag_decider_classes"]) == len(_counts(r))
            and all(isinstance(n, int) for n in r["diag_decider_classes"])]
    if not rows:
        return
    table = []
    size = min(len(_counts(r)) for r in rows)
    for k in range(size):
        decided, share = [], []
        for r in rows:
            counts, deciders = _counts(r), r["diag_decider_classes"]
            c = _by_rank(r)[k][0]
            if sum(deciders):
                decided.append(deciders[c] / sum(deciders))
            share.append(counts[c] / max(sum(counts), 1))
        d = _mean(decided)
        table.append([str(k), f"{_mean(share):.3f}", f"{d:.3f}" if d is not None else "—"])
    rep.para("GLS's deciding cases by class (`--diagnostics`): the share of the decided "
             "generations whose deciding case is of the class at each frequency rank, against "
             "the class's share of the training split (what a case drawn at random would give); "
             "mean over seeds.")
    rep.table(["rank", "share of the training split", "share of deciding cases"], table)
    rare = [(r["diag_rare_decider"], r["rare_train_share"]) for r in rows
            if finite(r.get("diag_rare_decider")) and finite(r.get("rare_train_share"))]
    if rare:
        rep.para(f"Deciding case in one of the 3 rarest classes: "
                 f"{statistics.fmean(a for a, _ in rare):.3f} of decided generations, against "
                 f"their {statistics.fmean(b for _, b in rare):.3f} share of the training split.")
    noisy = [(r["diag_noisy_decider"], r["noisy_train_share"]) for r in rows
             if finite(r.get("diag_noisy_decider")) and finite(r.get("noisy_train_share"))]
    if noisy:
        rep.para(f"Deciding case mislabelled (`--label-noise`): "
                 f"{statistics.fmean(a for a, _ in noisy):.3f} of decided generations, against "
                 f"the {statistics.fmean(b for _, b in noisy):.3f} flipped share of the training "
                 "split.")


__all__ = ["class_section"]
