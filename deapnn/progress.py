"""Progress bars for long runs (tqdm on stderr, or a silent stand-in)."""
from __future__ import annotations

import sys


def progress(total: int, desc: str, quiet: bool, unit: str = "it"):
    """A tqdm progress bar on stderr, or a silent stand-in when ``quiet``."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def no_progress(total: int, desc: str = "", unit: str = "it"):
    """A bar that shows nothing (the runners' default)."""
    return progress(total, desc, True, unit)


__all__ = ["progress", "no_progress"]
