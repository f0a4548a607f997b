"""Command-line flags generated from configuration fields (issue 21, "One truth": flags).

A configuration field declared with :func:`deapnn.config.setting` carries its help, its flag
name when that is not ``--field-name``, its help section, a parser for values argparse cannot
read as int/float/str, former names and whether it belongs to the invocation rather than the
run. :func:`add_config_flags` turns those fields into flags whose default is *absent*
(``argparse.SUPPRESS``): a flag not typed leaves the field to the configuration, which resolves
its own default (``deapnn defaults`` prints them), so each default is declared once, on the
dataclass. :func:`given_values` reads the typed ones back by field name, :func:`flag_of` names
a field's flag (error messages say ``--weight-decay``, not ``weight_decay``) and
:func:`resume_conflicts` compares typed flags with a stored run.
"""
from __future__ import annotations

import argparse
import dataclasses
import warnings

from ..deprecation import REMOVAL
from .common import argument_type

#: a field's type (as written in the dataclass) -> argparse ``type``
_SCALARS = {"int": int, "float": float, "str": str}


def flag_of(field: dataclasses.Field) -> str:
    """The flag of a configuration field: its metadata's ``flag`` or ``--field-name``."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def cli_fields(cls) -> list[dataclasses.Field]:
    """The fields of ``cls`` that have a flag (declared with a ``help``)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("help")]


def flags_by_field(cls) -> dict[str, str]:
    """field name -> flag, for every field of ``cls`` with a flag."""
    return {f.name: flag_of(f) for f in cli_fields(cls)}


class _Deprecated(argparse.Action):
    """Stores the value; notes a former name (``args._warnings``, printed by
    :func:`warn_deprecated` once the command line is accepted) and a setting typed under two
    names (``args._conflicts``, refused by the command's check)."""

    def __init__(self, option_strings, dest, aliases=(), **kwargs):
        self.aliases = tuple(aliases)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        typed = namespace.__dict__.setdefault("_typed_as", {})
        first = typed.setdefault(self.dest, option_string)
        if first != option_string:          # reported by the command's check, as one line
            namespace.__dict__.setdefault("_conflicts", []).append(
                f"{first} and {option_string} set the same setting: give "
                f"{self.option_strings[0]} only")
        if option_string in self.aliases:      # said once the command line is accepted
            namespace.__dict__.setdefault("_warnings", []).append(
                f"{option_string} is deprecated: use {self.option_strings[0]} (the old name "
                f"is removed in deapnn {REMOVAL})")
        setattr(namespace, self.dest, values)


def _kind(field: dataclasses.Field) -> str:
    """``bool``, ``int``, ``float``, ``str`` or ``other`` from the field's declared type."""
    words = {w.strip() for w in str(field.type).split("|")} - {"None"}
    return next(iter(words)) if len(words) == 1 and next(iter(words)) in (*_SCALARS, "bool") \
        else "other"


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def add_config_flags(parser: argparse.ArgumentParser, cls, *, groups: dict | None = None,
                     sections: tuple = (), title: str = "settings", exclude=(),
                     default_text: str | None = None) -> dict:
    """One flag per field of ``cls`` declared with a help (see the module docstring), in the
    help sections the fields name (``sections``: those to show first, in this order;
    ``groups``: section name -> argument group, extended and returned). The help ends with
    the configuration's default (``cls()``) unless it is None or the help states it;
    ``default_text`` replaces that default where the default comes from elsewhere (``deapnn
    compare``: the stored run's value)."""
    groups = {} if groups is None else groups
    for section in sections:
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
    example = cls()
    for field in cli_fields(cls):
        if field.name in exclude:
            continue
        meta = field.metadata
        section = meta.get("group") or title
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
        group = groups[section]
        flag, kind = flag_of(field), _kind(field)
        value = getattr(example, field.name)
        states = value is None or "default:" in meta["help"] or flag.startswith("--no-")
        shown = (default_text if default_text is not None
                 else (meta.get("show") or _shown)(value))
        text = meta["help"] + ("" if states else f" [default: {shown}]")
        common = {"dest": field.name, "default": argparse.SUPPRESS, "help": text}
        if kind == "bool":
            if flag.startswith("--no-"):
                group.add_argument(flag, action="store_false", **common)
            else:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
            continue
        parse = argument_type(meta["parse"]) if meta.get("parse") else _SCALARS.get(kind)
        if parse is None:
            raise TypeError(f"{cls.__name__}.{field.name}: a {field.type} setting needs a "
                            f"parse= to have a flag")
        names = [flag, *meta.get("aliases", ())]
        extra = {"action": _Deprecated, "aliases": meta["aliases"]} if meta.get("aliases") \
            else {}
        group.add_argument(*names, type=parse, metavar=meta.get("metavar"), **common, **extra)
    return groups


def warn_deprecated(args) -> None:
    """A ``DeprecationWarning`` per former flag name typed; the command line prints each as one
    ``deapnn: warning:`` line once it is accepted (``deapnn.cli``), as it does for every other
    former name or form."""
    for line in getattr(args, "_warnings", ()):
        warnings.warn(line, DeprecationWarning, stacklevel=2)


def given_values(cls, args) -> dict:
    """field -> value for every flag of ``cls`` typed on the command line."""
    return {f.name: getattr(args, f.name) for f in cli_fields(cls) if hasattr(args, f.name)}


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def resume_conflicts(cls, stored, args) -> list[str]:
    """The typed flags of ``cls`` whose value differs from the ``stored`` run's (a resumed
    run is the stored one: a flag that equals it is accepted, one that differs is refused),
    each as ``--flag VALUE differs from the run's STORED``; invocation settings never
    conflict."""
    out = []
    for field in cli_fields(cls):
        if field.metadata.get("invocation") or not hasattr(args, field.name):
            continue
        given, have = getattr(args, field.name), getattr(stored, field.name)
        if not _same(given, have):
            out.append(f"{flag_of(field)} {_shown(given)} differs from the run's {_shown(have)}")
    return out


__all__ = ["add_config_flags", "given_values", "warn_deprecated", "flag_of", "flags_by_field",
           "cli_fields", "resume_conflicts"]
