"""Import strings: ``package.module:function`` names a user's factory on the command line
(``--dataset`` and ``--model``), the convention of Lightning's ``class_path``, Hydra's
``_target_`` and uvicorn's ``module:app``.

:func:`resolve` imports the module and returns the named object, refusing with one
:class:`ImportStringError` line (the flag named) what cannot be a user's factory: text without
a colon, a module that does not import, a missing attribute, and anything but a Python function
or class (a built-in such as ``os:system`` is never called). The current directory is searched
first, as ``python -m`` does, so ``--model mymodels:build`` finds ``./mymodels.py`` from the
``deapnn`` console script too; :func:`search_path` is what SCOOP workers are given so they
import the same module.
"""
from __future__ import annotations

import importlib
import inspect
import os
import re
import sys

#: ``package.module:attribute`` (dotted Python identifiers on both sides of one colon)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
IMPORT_STRING = re.compile(rf"^{_IDENT}(?:\.{_IDENT})*:{_IDENT}(?:\.{_IDENT})*$")


class ImportStringError(ValueError):
    """An import string that names no usable factory; the message is one line naming the flag."""


def is_import_string(text) -> bool:
    """True when ``text`` has the form ``package.module:function`` (nothing is imported)."""
    return isinstance(text, str) and bool(IMPORT_STRING.match(text))


def search_path() -> list[str]:
    """The directories an import string's module is looked up in beyond ``sys.path``: the
    current directory (absolute, so workers started elsewhere find it too)."""
    return [os.getcwd()]


def _ensure_search_path() -> None:
    for entry in reversed(search_path()):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def resolve(text: str, flag: str):
    """The object ``text`` (``package.module:function``) names: a Python function or class.

    Raises :class:`ImportStringError` naming ``flag`` when the text is not an import string,
    the module cannot be imported (its own error, first line, is quoted), the attribute is
    missing, or the object is not a function or class defined in Python."""
    if not isinstance(text, str) or ":" not in text:
        raise ImportStringError(f"{flag}: {text!r} is not an import string "
                                "(expected package.module:function)")
    if not IMPORT_STRING.match(text):
        raise ImportStringError(f"{flag}: {text!r} is not an import string (expected "
                                "package.module:function, dotted Python names around one colon)")
    module_name, attribute = text.split(":")
    _ensure_search_path()
    try:
        obj = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:    # a user's module may raise anything on import
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        if missing and (module_name + ".").startswith(missing + "."):   # the module itself
            raise ImportStringError(f"{flag}: no module named {missing!r} (looked in the current "
                                    f"directory and on sys.path){_on_worker()}") from None
        raise ImportStringError(f"{flag}: importing {module_name} failed: "
                                f"{exception_line(exc)}") from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportStringError(f"{flag}: {module_name} has no attribute "
                                    f"{attribute!r}") from None
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        kind = "a built-in" if inspect.isbuiltin(obj) else type(obj).__name__
        raise ImportStringError(f"{flag}: {text} is {kind}, not a Python function or class "
                                "(a factory deapnn may call)")
    return obj


def _on_worker() -> str:
    """On a SCOOP worker (not the origin), where the module was not found: what to do."""
    try:
        import scoop
    except ImportError:
        return ""
    if not getattr(scoop, "IS_RUNNING", False) or getattr(scoop, "IS_ORIGIN", True):
        return ""
    import socket
    return (f" on SCOOP worker {socket.gethostname()} in {os.getcwd()}: the module must be "
            "importable on every worker; start the run in the directory that holds it (SCOOP "
            "starts its workers there) or put its directory on PYTHONPATH")


def exception_line(exc: BaseException) -> str:
    """``Type: first line of the message``: a user's code's exception inside one error line."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else '(no message)'}"


__all__ = ["IMPORT_STRING", "ImportStringError", "exception_line", "is_import_string", "resolve",
           "search_path"]
