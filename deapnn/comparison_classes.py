"""Per-class metrics in the tuned final comparison of the loss searches (issue 25).

A loss can win on mean test accuracy while the rare classes of a long-tailed (``--imbalance``)
or noisy (``--label-noise``) training split pay for it, so every arm of the tuned comparison
(:func:`deapnn.comparison.tuned_comparison`) also reports its balanced, worst-class and rarest-3
test accuracy (:data:`deapnn.class_metrics.SCALAR_KEYS`, higher is better) at its tuned
learning rate, paired by final seed against the tuned baseline — what ``deapnn gls`` and
``deapnn train`` report for their arms.

The trainers return these keys with their test results (classification only, never for the
validation split); the record gets them as ``row["classes"] = {key: {"tuned": summary,
"paired": paired_stats}}``. A key is left out for an arm when any of its final trainings lacks
it: a regression dataset, or a comparison stored by a deapnn before issue 25 and resumed (its
stored trainings are reused, not retrained), loads and prints without them.
"""
from __future__ import annotations

from .class_metrics import SCALAR_KEYS, TITLES
from .paired import metric_score, paired_short, paired_stats, seed_summary


def class_entries(finals: list, names: list) -> list[dict]:
    """Per arm (``finals[i]``: the results of arm ``names[i]``'s final trainings at its tuned
    learning rate, one per final seed; the baseline first) its ``"classes"`` entry: per key of
    :data:`~deapnn.class_metrics.SCALAR_KEYS` that all its results carry, ``"tuned"`` (mean,
    std and per-seed values, as the tuned metric's summary; a missing or non-finite value is
    the worst, −∞, and left out of the mean) and, for the arms after the baseline,
    ``"paired"``: the per-seed differences against the baseline
    (:func:`~deapnn.paired.paired_stats`, higher is better; None when the baseline lacks
    the key or no pair is finite). Empty when no key is carried (module docstring)."""
    values = [{key: [metric_score(r.get(key), True) for r in results] for key in SCALAR_KEYS
               if results and all(key in r for r in results)} for results in finals]
    out = []
    for i, (mine, name) in enumerate(zip(values, names)):
        entry: dict[str, dict] = {}
        for key, vals in mine.items():
            summary: dict = {"tuned": seed_summary(vals, True)}
            if i:
                base = values[0].get(key)
                summary["paired"] = paired_stats(vals, base, higher_is_better=True,
                                                 of=f"{name} - {names[0]}") if base else None
            entry[key] = summary
        out.append(entry)
    return out


def class_lines(record: dict) -> list[str]:
    """The printed per-class block of a tuned comparison ``record``: per loss the tuned
    balanced / worst-class / rarest-3 test accuracy (mean ± std) and each paired against the
    tuned baseline; none when no row has them (regression, a record before issue 25)."""
    rows = [r for r in record["losses"] if r.get("classes")]
    if not rows:
        return []
    base = record["baseline"]
    lines = ["  per-class test accuracy at the tuned lr (mean ± std; issue 25):",
             f"  {'loss':<22}" + "".join(f" {t:>16}" for t in TITLES.values())
             + f"  tuned − tuned {base} (paired): balanced / worst / rarest-3"]
    for row in rows:
        classes = row["classes"]
        cells = "".join(f" {classes[k]['tuned']['mean']:>7.4f} ± "
                        f"{classes[k]['tuned']['std']:<6.4f}" if k in classes else f" {'—':>16}"
                        for k in TITLES)
        pairs = " / ".join(paired_short(classes[k].get("paired")) if k in classes else "—"
                           for k in TITLES) if row is not record["losses"][0] else "(baseline)"
        lines.append(f"  {row['loss']:<22}{cells}  {pairs}")
    return lines


__all__ = ["class_entries", "class_lines"]
