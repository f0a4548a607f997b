"""The API reference (docs/, ``make docs``): it builds with zero warnings, every public operator
and algorithm has a rendered entry with a Parameters section, and the docstring examples run.

The build is the one ``make docs`` runs (``sphinx-build -W --keep-going``, nitpicky: a broken
cross-reference or a public name without a docstring is a warning, hence a failure), into a
temporary directory, once per session.
"""
import doctest
import importlib
import inspect
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

import deapnn.algorithms
import operators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
PUBLIC = [("operators", n) for n in operators.__all__] + \
         [("deapnn.algorithms", n) for n in deapnn.algorithms.__all__]
#: the modules whose docstring examples are run (every public operator and algorithm lives here)
EXAMPLE_MODULES = ["operators.lexicase", "operators.dalex", "operators.lexicase_deap",
                   "operators.lexicase_batch", "operators.lexicase_informed",
                   "operators.lexicase_informed_deap",
                   "operators.plexicase", "operators.lexicase_variants", "operators.lexicase_exact",
                   "operators.gls", "operators.graph", "operators.aging", "operators.gp_loss",
                   "deapnn.losses.tree", "deapnn.algorithms.gradient_lexicase",
                   "deapnn.algorithms.regularized", "deapnn.algorithms.regularized_restart",
                   "deapnn.algorithms.evomal"]


def _sphinx_missing():
    for mod in ("sphinx", "myst_parser"):
        try:
            importlib.import_module(mod)
        except ImportError:
            return f"{mod} is not installed (pip install -e '.[docs]')"
    return None


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory):
    """Build the HTML reference as ``make docs`` does; return (exit code, output, html dir)."""
    why = _sphinx_missing()
    if why:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("docs")
    html = out / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(out / "doctrees"), DOCS, str(html)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "DEAPNN_THREADS": "1", "PYTHONPATH": ROOT})
    return proc.returncode, proc.stdout + proc.stderr, html


class _Entries(HTMLParser):
    """The text of the ``<dd>`` that follows each ``<dt id=...>`` object signature."""

    def __init__(self):
        super().__init__()
        self.entries: dict[str, str] = {}
        self._pending = None        # id of the last signature seen, waiting for its <dd>
        self._open: list = []       # [id, depth, text parts] of the <dd>s being read
        self._depth = 0             # <dd> nesting

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "dt" and "sig-object" in (attrs.get("class") or "") and attrs.get("id"):
            self._pending = attrs["id"]
        elif tag == "dd":
            self._depth += 1
            if self._pending is not None:
                self._open.append([self._pending, self._depth, []])
                self._pending = None

    def handle_endtag(self, tag):
        if tag == "dd":
            if self._open and self._open[-1][1] == self._depth:
                ident, _, parts = self._open.pop()
                self.entries[ident] = "".join(parts)
            self._depth -= 1

    def handle_data(self, data):
        for entry in self._open:
            entry[2].append(data)


@pytest.fixture(scope="session")
def entries(built_docs):
    code, output, html = built_docs
    if code != 0:
        pytest.fail(f"docs build failed:\n{output[-4000:]}")
    parser = _Entries()
    for page in sorted((html / "api").glob("*.html")):
        parser.feed(page.read_text(encoding="utf-8"))
    return parser.entries


def test_docs_build_without_warnings(built_docs):
    code, output, html = built_docs
    assert code == 0, f"sphinx-build -W reported warnings or errors:\n{output[-4000:]}"
    assert (html / "index.html").is_file()
    for page in ("api/operators.gls.html", "api/algorithms.regularized.html",
                 "methods/gls.html", "concepts/toolbox.html", "faithfulness.html",
                 "results.html"):
        assert (html / page).is_file(), page


def _module_attr(ident):
    """The object a module-level entry ``module.name`` documents (None for a class member)."""
    module, _, name = ident.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


@pytest.mark.parametrize("package,name", PUBLIC, ids=[f"{p}.{n}" for p, n in PUBLIC])
def test_public_name_has_rendered_entry_with_parameters(entries, package, name):
    obj = getattr(importlib.import_module(package), name)
    ids = [i for i in entries if i.endswith("." + name) and _module_attr(i) is obj]
    assert ids, f"{package}.{name} has no entry in the rendered API reference"
    text = entries[ids[0]]
    assert re.search(r"Parameters\s*:", text), f"{ids[0]}: no Parameters section rendered"
    params = [p.name for p in inspect.signature(obj).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for param in params:        # rendered as "name (type) – description"
        assert re.search(rf"(^|\s){re.escape(param)} \(", text), \
            f"{ids[0]}: parameter {param!r} is not documented"


@pytest.mark.parametrize("package,name", PUBLIC, ids=[f"{p}.{n}" for p, n in PUBLIC])
def test_public_docstring_has_sections_of_deap_tools_style(package, name):
    """Parameters, Returns (functions), an example and the paper it comes from."""
    obj = getattr(importlib.import_module(package), name)
    doc = obj.__doc__ or ""
    sections = ["Parameters", "Examples", "References"]
    if callable(obj) and not isinstance(obj, type):
        sections.append("Returns")
    for section in sections:
        assert re.search(rf"^\s*{section}\n\s*-{{{len(section)}}}\s*$", doc, re.M), \
            f"{package}.{name}: no {section} section"
    assert ">>> " in doc, f"{package}.{name}: no example"


@pytest.mark.parametrize("module", EXAMPLE_MODULES)
def test_docstring_examples_run(module):
    """The examples in the docstrings are what the code does (doctest)."""
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module}: no example found"
    assert result.failed == 0, f"{module}: {result.failed} example(s) failed (see output)"
