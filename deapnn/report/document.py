"""The Markdown document a report is built into, and the run-directory readers it shares.

A :class:`Report` collects Markdown lines and the PNGs it references; plots it has to draw itself
(a killed run has no plots yet, NLFS / EvoMAL never plot their fitness) are written next to the
report as ``<report stem>_<name>.png`` so re-rendering never touches the run's own files.
"""
from __future__ import annotations

import json
import math
import os
import re
import statistics
from collections import Counter


class ReportError(ValueError):
    """A path that is not a readable run directory (reported as one line, exit code 2)."""


# --- formatting ---------------------------------------------------------------------------------
def num(value, digits: int = 4) -> str:
    """A number for a table cell: fixed ``digits`` decimals for ordinary sizes, ``g`` otherwise."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value != 0 and not 1e-4 <= abs(value) < 1e6:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def mean_std(mean, std) -> str:
    """``mean ± std`` with the same fixed decimals on both sides (a tiny std stays 0.0000)."""
    def fixed(v):
        return f"{v:.4f}" if finite(v) and abs(v) < 1e6 else num(v)
    return f"{fixed(mean)} ± {fixed(std)}"


def seconds(value) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    if value < 1:
        return f"{1000 * value:.1f} ms"
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.2f} s"


#: line breaks Markdown honours (and the C0 controls): a field from a run directory that holds one
#: could start a line of its own in the report (a heading, a shell line, an HTML tag)
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|#$~!])")
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` that any UTF-8 stream takes: the bytes of a path that are not UTF-8 (Python
    holds them as lone surrogates, as a JSON ``\\udcff`` escape also gives) become ``\\xNN``
    (other lone surrogates ``\\uNNNN``)."""
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match) -> str:
    code_point = ord(match.group())
    return f"\\x{code_point - 0xdc00:02x}" if 0xdc80 <= code_point <= 0xdcff \
        else f"\\u{code_point:04x}"


def one_line(text) -> str:
    """``text`` on one line: every line break and control character becomes a space."""
    return _BREAKS.sub(" ", str(text))


def plain(text) -> str:
    """Text read from a run directory as inert Markdown: one line, every Markdown/HTML special
    character backslash-escaped (no markup, link, tag, heading or math can come from a file)."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def cell(value) -> str:
    """Any value as one Markdown table cell (no pipes or newlines to break the row)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return plain(json.dumps(value, sort_keys=True, default=str))
    if isinstance(value, (int, float, bool)) or value is None:
        return num(value)
    return plain(value)


def math_or_code(latex) -> str:
    """A formula from a run directory as display math when it is one plain line of LaTeX,
    else as inline code (it can then neither break out of the math nor start a line)."""
    text = str(latex)
    if _BREAKS.search(text) or "$" in text or "<" in text or ">" in text or "`" in text:
        return code(text)
    return f"$${text}$$"


def setting(value) -> str:
    """A configuration value as the user wrote it (``0.0005``, not a rounded ``0.0005``)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(setting(v) for v in value) + "]"
    if value is None:
        return "—"
    return cell(value)


def code(text) -> str:
    """Inline code, on one line, whatever ``text`` holds: the backtick fence is longer than any
    run of backticks inside (CommonMark), so the span cannot be closed early."""
    text = one_line(text).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sample_std(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


_NUMBER = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def reason_kind(reason: str) -> str:
    """A failure reason with its numbers masked, so 'non-finite loss at step 3' and '... step 7'
    count as one kind of failure."""
    return _NUMBER.sub("#", str(reason)).strip()


def count_reasons(reasons) -> list[tuple[str, int, str]]:
    """``(kind, count, first example)`` for the non-empty reasons, most frequent first."""
    counts, example = Counter(), {}
    for r in reasons:
        if r:
            kind = reason_kind(r)
            counts[kind] += 1
            example.setdefault(kind, str(r))
    return [(k, n, example[k]) for k, n in counts.most_common()]


# --- reading a run directory --------------------------------------------------------------------
#: the files a report read, in order (:func:`last_read` names the one a failure concerns)
_READ: list[str] = []


def last_read() -> str | None:
    """The file the report read last (its contents are the ones being rendered)."""
    return _READ[-1] if _READ else None


def forget_reads() -> None:
    _READ.clear()


def read_json(path: str, expect: type | None = dict):
    """A JSON file, or None when absent; a corrupt file, or one that holds something else than
    an ``expect`` (a JSON object by default), is a :class:`ReportError` naming it."""
    if not os.path.lexists(path):
        return None
    _READ.append(path)
    from ..rundir import RunDirError
    from ..safefs import read_text
    try:        # a regular file of bounded size (a FIFO would block), never through a link
        # results may hold Infinity/NaN (json.dump writes them), which json.loads accepts
        data = json.loads(read_text(path))
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ReportError(f"cannot read {path}: {one_line(exc)}") from None
    if expect is not None and not isinstance(data, expect):
        what = {dict: "a JSON object", list: "a JSON list"}.get(expect, expect.__name__)
        raise ReportError(f"{path}: expected {what}, found {type(data).__name__}")
    return data


def read_rows(path: str) -> list[dict]:
    """``logbook.csv`` rows with numbers parsed ([] when absent)."""
    if not os.path.lexists(path):
        return []
    import csv

    from ..rundir import RunDirError, read_logbook
    _READ.append(path)
    try:        # streamed from a regular file of bounded size (deapnn.safefs)
        rows = read_logbook(path)
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    except (OSError, ValueError, csv.Error) as exc:
        raise ReportError(f"cannot read {path}: {one_line(exc)}") from None
    for row in rows:  # repr(inf) / repr(nan) come back as strings from the CSV
        for k, v in row.items():
            if v in ("inf", "-inf", "nan"):
                row[k] = float(v)
    return rows


def read_checkpoint(path: str):
    """The checkpoint's state (safe loader: no code runs), or ``(None, reason)`` when unreadable."""
    if not os.path.exists(path):
        return None, "no checkpoint"
    from ..checkpoint import CheckpointError, load_checkpoint
    try:
        return load_checkpoint(path), None
    except CheckpointError as exc:
        return None, str(exc)


_TIMING = re.compile(r"(^|_)(time|seconds|elapsed|wall)(_s)?$")


def timing_columns(rows: list[dict]) -> list[str]:
    """Logbook columns that hold durations in seconds (``select_time``, ``seconds``…)."""
    cols = []
    for row in rows:
        cols += [k for k in row if k not in cols and _TIMING.search(k)]
    return [c for c in cols if any(finite(r.get(c)) for r in rows)]


def column(rows: list[dict], x: str, y: str) -> tuple[list, list]:
    """The finite ``(x, y)`` pairs of two logbook columns."""
    pairs = [(r.get(x), r.get(y)) for r in rows]
    pairs = [(a, b) for a, b in pairs if finite(a) and finite(b)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def file_span(run_dir: str, exclude: str = "report") -> float | None:
    """Seconds from ``config.json`` (written first) to the newest file (the report's own files,
    named ``exclude*``, left out): the run's wall time when it records none itself (a resumed
    run's idle gap included)."""
    try:
        start = os.path.getmtime(os.path.join(run_dir, "config.json"))
        newest = max(os.path.getmtime(os.path.join(root, f))
                     for root, _, files in os.walk(run_dir) for f in files
                     if not f.startswith(exclude))
    except (OSError, ValueError):
        return None
    return max(0.0, newest - start)


#: the most points a curve of a report is drawn through: a PNG a few hundred pixels wide shows
#: no more
MAX_POINTS = 4000


def _thinned(series: dict, bands: dict | None) -> tuple[dict, dict | None]:
    """``series`` (and their ``bands``) with each curve of more than :data:`MAX_POINTS` points
    cut to that many evenly spaced ones, the last included."""
    out, out_bands = {}, dict(bands) if bands else bands
    for label, (xs, ys) in series.items():
        n = len(xs)
        if n <= MAX_POINTS:
            out[label] = (xs, ys)
            continue
        keep = sorted({i * n // MAX_POINTS for i in range(MAX_POINTS)} | {n - 1})
        out[label] = ([xs[i] for i in keep], [ys[i] for i in keep])
        if out_bands and label in out_bands:
            out_bands[label] = tuple([b[i] for i in keep] for b in out_bands[label])
    return out, out_bands


# --- the document -------------------------------------------------------------------------------
class Report:
    """Markdown lines plus the PNGs referenced (paths relative to the report's directory)."""

    def __init__(self, run_dir: str, out: str):
        self.run_dir = run_dir
        self.out = out
        self.out_dir = os.path.dirname(os.path.abspath(out))
        self.stem = os.path.splitext(os.path.basename(out))[0]
        self.lines: list[str] = []
        self.images: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def heading(self, text: str, level: int = 2) -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")
        self.lines += ["#" * level + " " + text, ""]

    def para(self, text: str) -> None:
        self.lines += [text, ""]

    def table(self, headers, rows, align=None) -> None:
        if not rows:
            return
        align = align or ["---"] * len(headers)
        self.lines.append("| " + " | ".join(headers) + " |")
        self.lines.append("|" + "|".join(align) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(cell(v) if not isinstance(v, str) else
                                                one_line(v) for v in row) + " |")
        self.lines.append("")

    def image(self, path: str, alt: str) -> bool:
        """Reference a PNG (absolute or run-relative path); False when it is missing."""
        if not os.path.isabs(path):
            path = os.path.join(self.run_dir, path)
        if not os.path.isfile(path):
            return False
        rel = os.path.relpath(os.path.abspath(path), self.out_dir)
        target = rel.replace(os.sep, "/").replace(" ", "%20").replace(")", "%29")
        self.lines += [f"![{plain(alt)}]({one_line(target)})", ""]
        self.images.append(os.path.abspath(path))
        return True

    def plot(self, name: str, series: dict, xlabel: str, ylabel: str, title: str = "",
             alt: str | None = None, bands: dict | None = None) -> bool:
        """Draw ``{label: (xs, ys)}`` (empty series dropped) to ``<stem>_<name>.png`` and
        reference it; False when there is nothing to draw. A curve of more than
        :data:`MAX_POINTS` points is drawn through that many evenly spaced ones (the last kept):
        a long logbook is drawn in bounded time and memory."""
        series = {k: v for k, v in series.items() if v[0]}
        if not series:
            return False
        series, bands = _thinned(series, bands)
        import matplotlib
        from ..plots import plot_curves
        path = os.path.join(self.out_dir, f"{self.stem}_{name}.png")
        # short runs (a killed job, a 1-epoch arm) have series of one point: mark the points,
        # or a lone point draws nothing at all
        short = min(len(xs) for xs, _ in series.values()) <= 30
        with matplotlib.rc_context({"lines.marker": "o", "lines.markersize": 4} if short else {}):
            plot_curves(series, path, xlabel, ylabel, title, bands)
        return self.image(path, alt or title or name)

    def image_or_plot(self, filename: str, alt: str, name: str, series_fn, xlabel: str,
                      ylabel: str, title: str = "") -> bool:
        """The run's own ``filename`` when present, else a plot drawn from ``series_fn()``."""
        if self.image(filename, alt):
            return True
        return self.plot(name, series_fn(), xlabel, ylabel, title, alt=alt)

    def timing_table(self, rows: list[dict], per: str = "generation") -> None:
        cols = timing_columns(rows)
        out = []
        for c in cols:
            vals = [r[c] for r in rows if finite(r.get(c))]
            out.append([code(c), seconds(sum(vals)), seconds(statistics.fmean(vals)),
                        seconds(max(vals)), str(len(vals))])
        self.table(["logbook column", "total", f"mean per {per}", "max", per + "s"], out)

    def failures(self, sources, looked: str) -> int:
        """One table of counted failure reasons over ``sources`` = ``[(where, reasons)]``;
        returns the number of failures."""
        rows = [[where, code(kind), str(n), code(example)] for where, reasons in sources
                for kind, n, example in count_reasons(reasons)]
        self.table(["recorded in", "reason (numbers masked)", "count", "example"], rows)
        if not rows:
            self.para(f"No failures recorded ({looked}).")
        return sum(int(r[2]) for r in rows)

    def failed_column(self, rows: list[dict], per: str) -> None:
        """The logbook's per-row failure count (``failed``), when it has one."""
        counts = [r["failed"] for r in rows if finite(r.get("failed"))]
        if counts:
            self.para(f"Logbook `failed` column: {int(sum(counts))} failed evaluations over "
                      f"{len(counts)} {per}s.")

    def text(self) -> str:
        """The Markdown, valid UTF-8 (:func:`printable`: a path that is not UTF-8 is shown
        with ``\\xNN`` escapes)."""
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return printable("\n".join(self.lines) + "\n")
