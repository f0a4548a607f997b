"""``deapnn report RUN_DIR``: one Markdown page summarising any run directory.

Every command writes ``config.json`` first (``command`` names the run type), then its logbook,
``results.json`` and plots; a report reads only those files (checkpoints through the safe
loader, never unpickling objects; ``config.json`` and ``results.json`` of any version through the
migration table, :mod:`deapnn.results`, the results as the command's
:class:`~deapnn.results.Summary`), so it works on finished, still-running and killed runs alike.
Sections: configuration, environment (``environment.json``: what the run ran on), results
(mean ± std per arm / loss), curves (the run's PNGs, or PNGs drawn from ``logbook.csv`` when the
run made none), best formulas (loss searches), timings and recorded failures.
"""
from __future__ import annotations

import os

from ..results import CONFIG_FILE, config_class, migrate, read_summary
from ..rundir import RunDirError, atomic_write, check_no_links
from ..safefs import guard
from .document import (Report, ReportError, cell, code, forget_reads, last_read, one_line, plain,
                       read_json, setting)

__all__ = ["ReportError", "render_report", "write_report", "RUN_KINDS"]


def _section(kind):
    """The section builder of a run type: ``(Report, run configuration, Summary or None) ->
    status line``."""
    from . import basic, gls, search
    return {"train": basic.train, "gls": gls.gls, "nlfs": search.nlfs,
            "evomal": search.evomal}.get(kind, basic.generic)


RUN_KINDS = ("train", "gls", "nlfs", "evomal")


def load_config(run_dir: str) -> dict:
    """``run_dir``'s ``config.json`` in the current layout (:func:`deapnn.results.migrate`),
    its settings checked (:func:`check_settings`); :class:`ReportError` naming the file."""
    if not os.path.isdir(run_dir):
        raise ReportError(f"{run_dir!r}: no such run directory")
    config = read_json(os.path.join(run_dir, "config.json"))
    if config is None:
        raise ReportError(f"{run_dir!r} is not a deapnn run directory (no config.json); "
                          f"run types: {', '.join(RUN_KINDS)}")
    path = os.path.join(run_dir, "config.json")
    command = config.get("command")
    if command is not None and not isinstance(command, str):
        raise ReportError(f"{path}: command must be a run type ({', '.join(RUN_KINDS)}), "
                          f"found {type(command).__name__}")
    try:
        config = migrate({CONFIG_FILE: config})[CONFIG_FILE]
    except ValueError as exc:
        raise ReportError(f"cannot report {run_dir}: {exc}") from None
    if not isinstance(config.get("config"), dict):
        raise ReportError(f"{path}: the run's configuration (config) is missing or not a JSON "
                          "object")
    check_settings(path, command, config["config"])
    return config


def load_summary(run_dir: str):
    """The run's :class:`~deapnn.results.Summary` (None before it wrote ``results.json``, or
    for a run type without one); :class:`ReportError` naming a file that does not hold one."""
    try:
        return read_summary(run_dir, read_json)
    except ReportError:
        raise
    except ValueError as exc:
        raise ReportError(f"cannot report {run_dir}: {exc}") from None


def check_settings(path: str, kind, block: dict) -> None:
    """Each setting of a known run type's configuration block has its field's kind of value
    (number, string, true/false or list, or null): a tampered block is a :class:`ReportError`
    naming the file and the setting, not a crash while rendering."""
    import dataclasses
    cls = config_class(kind)
    if cls is None:
        return
    number = (int, float)
    for f in dataclasses.fields(cls):
        if f.name not in block or block[f.name] is None:
            continue
        value = block[f.name]
        default = f.default if f.default is not dataclasses.MISSING else \
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if isinstance(default, bool) or "bool" in str(f.type):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, (list, tuple)) or "list" in str(f.type) or "tuple" in str(f.type):
            ok, want = isinstance(value, list) and all(
                isinstance(v, (str, int, float)) for v in value), "a list"
        elif isinstance(default, number) or "int" in str(f.type) or "float" in str(f.type):
            ok, want = isinstance(value, number) and not isinstance(value, bool), "a number"
        elif isinstance(default, str) or "str" in str(f.type):
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise ReportError(f"{path}: setting {f.name} must be {want}, found "
                              f"{type(value).__name__}")


def flat_config(config: dict) -> dict:
    """``config.json`` (current layout) as ``key → value``: the run's configuration block
    (``config``) unprefixed, other nested blocks as ``block.key``; the command and the schema
    version left out."""
    flat = {}
    for key, value in config.items():
        if key in ("command", "schema_version"):
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                flat[k if key == "config" else f"{key}.{k}"] = v
        else:
            flat[key] = value
    return dict(sorted(flat.items()))


def render_report(run_dir: str, out: str | None = None) -> Report:
    """Build the report of ``run_dir`` (plots it draws go next to ``out``, default
    ``run_dir/report.md``); raises :class:`ReportError` for a missing or foreign directory."""
    run_dir = os.path.normpath(run_dir)
    try:        # the report writes into the run directory: never through a planted link
        check_no_links(run_dir)
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    guard(run_dir)      # and reads and writes it without following links (deapnn.safefs)
    forget_reads()
    config = load_config(run_dir)
    summary = load_summary(run_dir)
    out = out or os.path.join(run_dir, "report.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    kind = config.get("command")
    body = Report(run_dir, out)           # built first: the header shows its status
    section = _section(kind)
    try:
        status = section(body, config if section.__name__ == "generic" else config["config"],
                         summary)
    except ReportError:         # a file a section read, named already
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError,
            RecursionError) as exc:
        # a file of the run holds something its writer never writes (tampered, or of
        # another version): name it rather than crash
        raise ReportError(f"cannot report {run_dir}: {last_read() or 'a file'} holds unexpected "
                          f"contents ({type(exc).__name__}: {one_line(exc)[:200]})") from None
    rep = Report(run_dir, out)
    shown = kind if kind in RUN_KINDS else None
    rep.add(f"# deapnn {shown or 'run'} report: {code(run_dir)}", "",
            f"- run type: **{shown or 'unknown'}**"
            + ("" if shown or kind is None else f" ({code(kind)})"), f"- status: {status}",
            f"- directory: {code(os.path.abspath(run_dir))}")
    rep.heading("Configuration")
    rep.table(["setting", "value"], [[code(k), setting(v)] for k, v in flat_config(config).items()])
    environment_section(rep, run_dir)
    rep.lines += body.lines
    rep.images = body.images
    return rep


def environment_section(rep: Report, run_dir: str) -> None:
    """The "Environment" section: what the run ran on (its ``environment.json``,
    :mod:`deapnn.environment`), and each resume on another environment; a file that is not
    one deapnn writes is a :class:`ReportError` naming it."""
    from ..environment import ENVIRONMENT_FILE, RELEVANT, check_record
    path = os.path.join(run_dir, ENVIRONMENT_FILE)
    data = read_json(path)
    rep.heading("Environment")
    if data is None:
        rep.para(f"Not recorded (no `{ENVIRONMENT_FILE}`: a run directory of an earlier deapnn, "
                 "or a run stopped before it recorded it).")
        return
    try:
        check_record(data)
    except ValueError as exc:
        raise ReportError(f"{path} is {exc}") from None

    def v(key):
        return cell(data.get(key))
    commit = f" (git {cell(str(data['git_commit'])[:12])})" if data.get("git_commit") else ""
    gpu = (f", GPU {v('gpu')} (compute capability {v('gpu_capability')}, CUDA {v('cuda')}, "
           f"cuDNN {v('cudnn')}, driver {v('gpu_driver')})") if data.get("gpu") else ""
    hosts = f"; SCOOP hosts {v('hosts')}" if data.get("hosts") else ""
    when = "when the run started" if data.get("recorded") == "start" else \
        "when the run was first resumed (where it started is unknown)"
    rep.add(f"- software: deapnn {v('deapnn')}{commit}, Python {v('python')}, torch "
            f"{v('torch')}, torchvision {v('torchvision')}, numpy {v('numpy')}, deap "
            f"{v('deap')}, scoop {v('scoop')}",
            f"- CPU: {v('cpu')} (torch uses {v('cpu_capability')}), {v('threads')} torch "
            f"thread(s); {v('os')}",
            f"- device: {v('device')}{gpu}",
            f"- deterministic algorithms: {v('deterministic_algorithms')}, cuDNN deterministic: "
            f"{v('cudnn_deterministic')}, cuDNN benchmark: {v('cudnn_benchmark')}",
            f"- host: {v('hostname')}{hosts}, workers: {v('workers')}",
            f"- recorded {when}: {v('recorded_at')}")
    for entry in data.get("resumes", []):
        changes = ", ".join(f"{plain(k)} {cell(value)} (was {cell(data.get(k))})"
                            for k, value in entry.items() if k != "resumed_at")
        numerics = " — results not bit-identical to an uninterrupted run" \
            if set(entry) & set(RELEVANT) else ""
        rep.add(f"- resumed {cell(entry.get('resumed_at'))} on another environment: "
                f"{changes or 'the one it started on'}{numerics}")
    rep.add("")


def write_report(run_dir: str, out: str | None = None) -> str:
    """Render ``run_dir``'s report to ``out`` (default ``run_dir/report.md``) atomically; return
    the path written."""
    rep = render_report(run_dir, out)
    atomic_write(rep.out, lambda fh: fh.write(rep.text()), mode="w")
    return rep.out
