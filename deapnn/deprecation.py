"""Deprecated names: one removal version, one message (``CHANGELOG.md`` lists every rename).

A name renamed in this release keeps working until :data:`REMOVAL`, with a
``DeprecationWarning`` that names its replacement and that version.
"""
from __future__ import annotations

import warnings

#: the release that removes every name deprecated in this one
REMOVAL = "0.3.0"


def renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is now ``new`` (``stacklevel``: the caller to name, as for
    ``warnings.warn``, counted from the function that calls this one)."""
    warnings.warn(f"{old} is deprecated: use {new} (the old name is removed in deapnn "
                  f"{REMOVAL})", DeprecationWarning, stacklevel=stacklevel)


__all__ = ["REMOVAL", "renamed"]
