"""Paired comparisons by seed: the statistics every table of deapnn reports when two arms (a
method and a baseline, a fast path and eager float32, a found loss and cross-entropy) ran on
the same seeds — same split, initial network and batch order — so their per-seed differences
are the measurement: mean ± sample std, wins/ties/losses and two paired tests (Student's t and
Wilcoxon signed-rank, from scipy when installed)."""
from __future__ import annotations

import math
import statistics


def worst_score(higher: bool) -> float:
    """The worst value a metric can take: −∞ when higher is better, else +∞."""
    return -math.inf if higher else math.inf


def metric_score(value, higher: bool) -> float:
    """A metric as a finite-or-worst number (NaN, None, text and the wrong infinity are the
    worst, :func:`worst_score`), so a failed training ranks last instead of crashing a table."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return worst_score(higher)
    return value if math.isfinite(value) else worst_score(higher)


def seed_summary(values: list, higher: bool) -> dict:
    """One arm's per-seed values as ``{"mean", "std", "test": values}``: mean and sample std of
    the finite values (the worst score when none is finite); the values themselves are kept."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return {"mean": statistics.fmean(finite) if finite else worst_score(higher),
            "std": statistics.stdev(finite) if len(finite) > 1 else 0.0, "test": values}


def paired_stats(values: list, base: list, *, higher_is_better: bool, of: str = "") -> dict | None:
    """Per-seed differences ``values − base`` (the finite pairs): mean ± sample std,
    wins/ties/losses (a win is a higher metric when ``higher_is_better``, else a lower one),
    two-sided paired t-test and Wilcoxon signed-rank p-values (None when undefined). None when
    no pair is finite."""
    pairs = [(a, b) for a, b in zip(values, base)
             if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if not pairs:
        return None
    d = [a - b for a, b in pairs]
    sd = statistics.stdev(d) if len(d) > 1 else 0.0
    win = (lambda x: x > 0) if higher_is_better else (lambda x: x < 0)
    out = {"of": of, "n": len(d), "diff": d, "mean": statistics.fmean(d), "std": sd,
           "wins": sum(win(x) for x in d), "ties": sum(x == 0 for x in d),
           "losses": sum(x != 0 and not win(x) for x in d), "t_p": None, "wilcoxon_p": None}
    try:
        from scipy import stats
        if len(d) > 1 and sd > 0:
            out["t_p"] = float(stats.ttest_rel([a for a, _ in pairs], [b for _, b in pairs]).pvalue)
        if any(x != 0 for x in d):
            out["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
    except Exception:  # scipy missing or a degenerate sample: report without p-values
        pass
    return out


def paired_text(p: dict) -> str:
    """One :func:`paired_stats` record as ``+mean ± std, WW/TT/LL (t p=…, Wilcoxon p=…)``."""
    ps = ", ".join(f"{label} p={p[k]:.3g}"
                   for k, label in (("t_p", "t"), ("wilcoxon_p", "Wilcoxon"))
                   if p.get(k) is not None)
    return (f"{p['mean']:+.4f} ± {p['std']:.4f}, {p['wins']}W/{p['ties']}T/{p['losses']}L"
            + (f" ({ps})" if ps else ""))


def paired_short(p: dict | None) -> str:
    """A :func:`paired_stats` record as ``+mean (WW/TT/LL)`` (the per-class columns); ``—``
    for None. A record read back from a file prints as it is, never raises: a mean that is not
    a number is shown as text, a missing count as None."""
    if not p:
        return "—"
    mean = p.get("mean")
    mean = (f"{mean:+.4f}" if isinstance(mean, (int, float))
            else "—" if mean is None or mean == "" else str(mean))
    return f"{mean} ({p.get('wins')}W/{p.get('ties')}T/{p.get('losses')}L)"


__all__ = ["paired_stats", "paired_text", "paired_short"]
