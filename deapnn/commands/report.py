"""``deapnn report RUN_DIR``: a Markdown summary (with PNG plots) of any run directory."""
from __future__ import annotations

from .common import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="summarise a run directory as Markdown with PNG plots",
        description="Render RUN_DIR (from train, gls, nlfs or evomal; finished, running or "
                    "killed) as Markdown: configuration, the environment it ran on, results "
                    "(mean ± std), curves, best formulas, timings and recorded failures.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holds config.json)")
    p.add_argument("--out", metavar="FILE.md", default=None,
                   help="where to write the report [default: RUN_DIR/report.md]; plots the run "
                        "lacks are drawn next to it")
    p.set_defaults(func=run, check=check)


def check(args) -> None:
    from ..report import ReportError, load_config
    from ..rundir import RunDirError, refuse_run_dir_link
    try:
        refuse_run_dir_link(args.run_dir)
    except RunDirError as exc:
        raise UsageError(str(exc)) from None
    try:
        load_config(args.run_dir)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    if args.out is not None:
        import os

        from .common import check_writable_dir
        if not args.out.endswith(".md"):
            raise UsageError(f"--out must name a .md file, got {args.out!r}")
        if os.path.isdir(args.out):
            raise UsageError(f"--out {args.out}: is a directory, not a .md file")
        check_writable_dir(os.path.dirname(os.path.abspath(args.out)), "--out")
    else:
        from .common import check_writable_dir
        check_writable_dir(args.run_dir, "RUN_DIR")


def run(args) -> int:
    from ..report import ReportError, write_report
    try:
        path = write_report(args.run_dir, args.out)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    from ..report.document import printable
    print(printable(path))      # a path that is not UTF-8 printed with \xNN escapes
    return 0
