"""``deapnn defaults [gls|nlfs|evomal|train] [--dataset NAME]``: every resolved default of a
command, read from its configuration class and named by its flag.

The defaults are declared once, on the configuration dataclasses beside their citations
(``docs/faithfulness.md`` explains each); this command prints them as the command line sees
them, and ``tests/test_defaults.py`` checks the "deapnn default" column of
``docs/faithfulness.md`` against this output, so the document cannot drift from the code.
Settings that depend on the dataset (EvoMAL's reference SGD and final schedule) are resolved
for ``--dataset`` (default: the command's own default dataset).
"""
from __future__ import annotations

from ..results import RUN_TYPES, config_class

#: the commands whose defaults it prints (the run types, :data:`deapnn.results.RUN_TYPES`)
CONFIGS = tuple(sorted(RUN_TYPES))


def _flags_of(command: str) -> dict[str, tuple[str, bool]]:
    """field -> (flag, inverted): the flags the command generates from its configuration's
    fields (:func:`deapnn.commands.flags.flags_by_field`); a ``--no-X`` flag of a boolean is
    inverted (typed, it turns the setting off)."""
    from .flags import flags_by_field
    return {field: (flag, flag.startswith("--no-"))
            for field, flag in flags_by_field(config_class(command)).items()}


def text(value) -> str:
    """A default as the command line writes it: lists comma-joined (``''``: empty), booleans
    true/false, ``unset`` for None (the setting's "when not given" rule applies, see
    ``deapnn COMMAND --help``)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(text(v) for v in value) or "''"
    return str(value)


def resolved_defaults(command: str, dataset: str | None = None) -> dict[str, object]:
    """field -> default value of ``command``'s configuration as ``config.json`` stores it
    (resolved per dataset where the reference does so)."""
    cls = config_class(command)
    cfg = cls() if dataset is None else cls(dataset=dataset)
    return cfg.to_dict()


def defaults_lines(command: str, dataset: str | None = None) -> list[str]:
    """The printed table: ``--flag value`` per setting with a flag, then the settings that are
    set from Python only."""
    values = resolved_defaults(command, dataset)
    if command == "gls":       # --compare lists the arms beside GLS
        values["arms"] = [a for a in values["arms"] if a != "gls"] or None
    flags = _flags_of(command)
    rows, python_only = [], []
    for field in sorted(values):
        if field in flags:
            flag, inverted = flags[field]
            value = values[field]
            rows.append((flag, text(not value if inverted else value), field))
        else:
            python_only.append(f"  {field} = {text(values[field])}")
    width = max(len(r[0]) for r in rows)
    lines = [f"deapnn {command}: resolved defaults"
             + (f" for dataset {dataset}" if dataset else "")]
    lines += [f"  {flag:<{width}}  {value}" for flag, value, _ in sorted(rows)]
    if python_only:
        lines += ["settings without a flag (set from Python):", *python_only]
    return lines


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "defaults", help="print every resolved default of a command",
        description="Every default of a command, as declared on its configuration beside "
                    "the paper's or reference's citation (docs/faithfulness.md).")
    # choices are checked in check(): argparse would check them against a suppressed default
    p.add_argument("method", nargs="?", default=None, metavar="|".join(sorted(CONFIGS)),
                   help="the command (default: all four)")
    p.add_argument("--dataset", default=None,
                   help="resolve the per-dataset defaults (EvoMAL's reference SGD and final "
                        "schedule) for this dataset")
    p.set_defaults(func=run, check=check)


def check(args) -> None:
    from ..config import ConfigError
    from .common import check_choice, config_usage_error
    if args.method is not None:
        check_choice(args.method, CONFIGS, "command")
    for command in [args.method] if args.method else sorted(CONFIGS):
        try:
            resolved_defaults(command, args.dataset)
        except ConfigError as exc:
            raise config_usage_error(exc) from None


def run(args) -> int:
    commands = [args.method] if args.method else sorted(CONFIGS)
    for i, command in enumerate(commands):
        if i:
            print()
        print("\n".join(defaults_lines(command, args.dataset)))
    return 0


__all__ = ["CONFIGS", "resolved_defaults", "defaults_lines", "text"]
