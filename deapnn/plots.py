"""PNG plots for run directories (matplotlib, headless)."""
from __future__ import annotations

import os


def plot_curves(series: dict, path: str | os.PathLike, xlabel: str, ylabel: str,
                title: str = "", bands: dict | None = None) -> str:
    """Plot ``{label: (xs, ys)}`` as lines into ``path`` (PNG); ``bands`` optionally gives
    ``{label: (lower, upper)}`` shaded around a line (e.g. mean ± std over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for label, (xs, ys) in series.items():
        line, = ax.plot(list(xs), list(ys), label=label)
        if bands and label in bands:
            lo, hi = bands[label]
            ax.fill_between(list(xs), list(lo), list(hi), alpha=0.2, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if series:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> str:
    """Save a matplotlib figure as PNG atomically (a fresh temporary file renamed over ``path``:
    never written through a link planted at ``path``) and close it."""
    import io

    import matplotlib.pyplot as plt

    from .rundir import atomic_write
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **kwargs)
    plt.close(fig)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return atomic_write(os.fspath(path), lambda fh: fh.write(buffer.getvalue()))
