"""Deprecated names: one removal version, one message (``CHANGELOG.md`` lists every rename).

A name renamed in this release keeps working until :data:`REMOVAL`, with a
``DeprecationWarning`` that names its replacement and that version.
"""
from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

#: the release that removes every name deprecated in this one
REMOVAL = "0.3.0"


def renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is now ``new`` (``stacklevel``: the caller to name, as for
    ``warnings.warn``, counted from the function that calls this one)."""
    warnings.warn(f"{old} is deprecated: use {new} (the old name is removed in deapnn "
                  f"{REMOVAL})", DeprecationWarning, stacklevel=stacklevel)


def warn_count(owner: str, name: str, count: int) -> None:
    """Warn that a seed count ``name=count`` of ``owner`` is now a list of seeds."""
    seeds = f"0-{count - 1}" if count else "none"
    warnings.warn(f"{owner}: {name} as a count ({count}) is deprecated: give a list of seeds, "
                  f"--{name.replace('_', '-')} {seeds} on the command line or "
                  f"list(range({count})) (a count is refused from deapnn {REMOVAL})",
                  DeprecationWarning, stacklevel=_caller_of_the_configuration())


def _caller_of_the_configuration() -> int:
    """The ``stacklevel`` that names the code which made the configuration: past this module
    and the dataclass ``__init__`` / ``__post_init__`` chain (its depth depends on the class)."""
    import sys
    frame: FrameType | None = sys._getframe(2)
    level = 2                                 # warn_count's caller: stacklevel 2
    while frame is not None and frame.f_code.co_name in ("seed_indices", "__post_init__",
                                                         "__init__"):
        frame, level = frame.f_back, level + 1
    return level


def former_name(old_value, value, old: str, new: str, *, default):
    """The value of a renamed keyword: ``value`` (the new keyword's), or ``old_value`` with a
    warning when the former keyword was given; both given and different is a
    ``deapnn.config.ConfigError``. ``default``: the new keyword's default (given as is, it does
    not conflict)."""
    if old_value is None:
        return value
    renamed(old, new, stacklevel=5)
    field = new.rstrip("=")
    if value != default and value != old_value:
        from .config import ConfigError
        raise ConfigError(f"{field} and its former name {old} disagree: give {field} only",
                          field)
    return old_value


def former_keywords(**pairs: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: each keyword ``old=`` of ``pairs`` (``old="new"``) is a former name of the
    function's keyword ``new=``, warned about by :func:`renamed` and passed on as ``new=``.
    Giving both is a ``TypeError``, whatever the values (the new one's default included, by
    name or positionally), as Python refuses an argument given twice."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        names = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            for old, new in pairs.items():
                if kwargs.get(old) is None:
                    continue
                if new in kwargs or names.index(new) < len(args):
                    raise TypeError(f"{fn.__name__}() got both {old}= and {new}=: give {new}= "
                                    f"only ({old}= is its former name)")
                renamed(f"{old}=", f"{new}=")
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)
        return call
    return wrap


__all__ = ["REMOVAL", "renamed", "former_name", "former_keywords", "warn_count"]
