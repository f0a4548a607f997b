"""Sphinx configuration of the deapnn API reference (``make docs``).

The build runs with warnings as errors (``sphinx-build -W``) and ``nitpicky = True``: a broken
cross-reference fails it.  References to another library's objects (torch, numpy, DEAP, the
standard library) are not checked: the build is offline, so there is no intersphinx inventory.
A public name (in a documented module's ``__all__``) without a docstring is reported as a
warning too, by :func:`_check_docstrings`.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys

from sphinx.util import logging

logger = logging.getLogger("deapnn.docs")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

project = "deapnn"
author = "deapnn developers"
copyright = "deapnn developers"
release = version = importlib.import_module("deapnn").__version__   # one place: deapnn/__init__.py

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

html_theme = "alabaster"
html_static_path: list = []
html_title = "deapnn reference"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
napoleon_preprocess_types = True   # value sets {"a", "b"}, "optional", literals
strip_signature_backslash = True   # napoleon then escapes a trailing "_" (min_) in parameter names
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

nitpicky = True
# Objects of other libraries: no inventory is fetched (offline build), so they are not checked.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|deap|scoop|sympy|scipy|sklearn|tqdm|matplotlib)(\..*)?"),
    (r"py:.*", r"(typing|collections|dataclasses|pathlib|random|functools|contextlib|"
               r"concurrent|enum|abc|os|io|json|types)(\..*)?"),
    (r"py:(class|obj|data)", r"(int|float|str|bool|bytes|dict|list|tuple|set|object|callable|"
                             r"None|NoneType|Any|Callable|Sequence|Iterable|Iterator|Mapping|"
                             r"sequence|iterable|mapping|shape|array|"
                             r"Generator|Path|Optional|Union|Protocol|NamedTuple|array_like|"
                             r"optional|ndarray|Tensor|Module|Exception|ValueError|TypeError|"
                             r"RuntimeError|FileNotFoundError|KeyError|type)"),
]


def _lookup(target: str, modname: str | None, clsname: str | None):
    """The object a reference ``target`` names, imported (``None`` when it names none)."""
    candidates = [target]
    if modname:
        if clsname:
            candidates.append(f"{modname}.{clsname}.{target}")
        candidates.append(f"{modname}.{target}")
    for name in candidates:
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            return obj
    return None


def _documented_names(obj):
    """Names under which ``obj`` may be documented: ``module.qualname`` and the same qualname in
    each package above the module (packages re-export their modules' names)."""
    if inspect.ismodule(obj):
        return [obj.__name__]
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (mod and qual) or not (inspect.isclass(obj) or inspect.isroutine(obj)):
        return []
    parts = mod.split(".")
    return [".".join(parts[:i] + [qual]) for i in range(len(parts), 0, -1)]


def _resolve_alias(app, env, node, contnode):
    """Resolve a reference through the name its object is documented under, e.g.
    ``operators.mutSubGD`` -> ``deapnn.operators.gls.mutSubGD``: the reference documents each
    object once, in its module (or in the package that exports it)."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    obj = _lookup(target, node.get("py:module"), node.get("py:class"))
    if obj is None:
        return None
    domain = env.get_domain("py")
    for name in _documented_names(obj):
        if name != target and name in domain.objects:
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], name,
                                       node, contnode)
    return None


def _exported(app, what, name, obj) -> bool:
    """Whether ``name`` is a name the module being documented exports: in its ``__all__``, or,
    without one, defined in it. Sphinx 8 (the last for Python 3.10) also passes a module's
    imported names and the names outside its ``__all__`` to ``autodoc-skip-member`` (as skipped);
    Sphinx 9 passes only the exported ones."""
    modname = app.env.temp_data.get("autodoc:module") if what == "module" else None
    module = sys.modules.get(modname) if modname else None
    if module is None:
        return True
    exported = getattr(module, "__all__", None)
    return name in exported if exported is not None else getattr(obj, "__module__", None) == modname


def _check_docstrings(app, what, name, obj, skip, options):
    """Warn (an error under ``-W``) about a public function, class or method that autodoc leaves
    out for want of a docstring: every public name of a documented module is in the reference."""
    if skip and not name.startswith("_") and (inspect.isclass(obj) or inspect.isroutine(obj)) \
            and not inspect.getdoc(obj) and _exported(app, what, name, obj):
        where = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', name)}"
        logger.warning("public name %s has no docstring, so the reference leaves it out", where)
    return None


def setup(app):
    app.connect("missing-reference", _resolve_alias)
    app.connect("autodoc-skip-member", _check_docstrings)
