"""``deapnn report RUN_DIR``: one Markdown page summarising any run directory.

Every command writes ``config.json`` first (``command`` names the run type), then its logbook,
results and plots; a report reads only those files (checkpoints through the safe loader, never
unpickling objects), so it works on finished, still-running and killed runs alike. Sections:
configuration, results (mean ± std per arm / loss), curves (the run's PNGs, or PNGs drawn from
``logbook.csv`` when the run made none), best formulas (loss searches), timings and recorded
failures.
"""
from __future__ import annotations

import os

from ..rundir import RunDirError, atomic_write, check_no_links
from .document import Report, ReportError, code, read_json, setting

__all__ = ["ReportError", "render_report", "write_report", "RUN_KINDS"]


def _section(kind):
    """The section builder of a run type: ``(Report, run configuration) -> status line``."""
    from . import basic, gls, search
    return {"train": basic.train, "gls": gls.gls, "nlfs": search.nlfs,
            "evomal": search.evomal}.get(kind, basic.generic)


RUN_KINDS = ("train", "gls", "nlfs", "evomal")


def load_config(run_dir: str) -> dict:
    if not os.path.isdir(run_dir):
        raise ReportError(f"{run_dir!r}: no such run directory")
    config = read_json(os.path.join(run_dir, "config.json"))
    if config is None:
        raise ReportError(f"{run_dir!r} is not a deapnn run directory (no config.json); "
                          f"run types: {', '.join(RUN_KINDS)}")
    if not isinstance(config, dict):
        raise ReportError(f"{os.path.join(run_dir, 'config.json')}: not a JSON object")
    return config


def flat_config(config: dict) -> dict:
    """``config.json`` as ``key → value``: the run's configuration block (``config``; in older
    run directories the block under the command's name) unprefixed, other nested blocks as
    ``block.key``; bookkeeping of the command line (func, check) dropped."""
    command = config.get("command")
    own = "config" if "config" in config else command
    flat = {}
    for key, value in config.items():
        if key in ("command", "func", "check"):
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                flat[k if key == own else f"{key}.{k}"] = v
        else:
            flat[key] = value
    return dict(sorted(flat.items()))


def run_config(config: dict) -> dict:
    """The run's configuration block of a ``config.json`` (any layout deapnn has written)."""
    block = config.get("config", config.get(config.get("command")))
    if isinstance(block, dict):
        return block
    return {k: v for k, v in config.items() if k not in ("command", "func", "check")}


def render_report(run_dir: str, out: str | None = None) -> Report:
    """Build the report of ``run_dir`` (plots it draws go next to ``out``, default
    ``run_dir/report.md``); raises :class:`ReportError` for a missing or foreign directory."""
    run_dir = os.path.normpath(run_dir)
    try:        # the report writes into the run directory: never through a planted link
        check_no_links(run_dir)
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    config = load_config(run_dir)
    out = out or os.path.join(run_dir, "report.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    kind = config.get("command")
    body = Report(run_dir, out)           # built first: the header shows its status
    section = _section(kind)
    status = section(body, config if section.__name__ == "generic" else run_config(config))
    rep = Report(run_dir, out)
    shown = kind if kind in RUN_KINDS else None
    rep.add(f"# deapnn {shown or 'run'} report: {code(run_dir)}", "",
            f"- run type: **{shown or 'unknown'}**"
            + ("" if shown or kind is None else f" ({code(kind)})"), f"- status: {status}",
            f"- directory: {code(os.path.abspath(run_dir))}")
    rep.heading("Configuration")
    rep.table(["setting", "value"], [[code(k), setting(v)] for k, v in flat_config(config).items()])
    rep.lines += body.lines
    rep.images = body.images
    return rep


def write_report(run_dir: str, out: str | None = None) -> str:
    """Render ``run_dir``'s report to ``out`` (default ``run_dir/report.md``) atomically; return
    the path written."""
    rep = render_report(run_dir, out)
    atomic_write(rep.out, lambda fh: fh.write(rep.text()), mode="w")
    return rep.out
