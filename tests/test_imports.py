"""No import cycles among deapnn's modules at module level.

A cycle of module-level imports works or breaks depending on which module of the cycle a program
imports first (a partially initialised module raises ImportError on ``from x import name``), so
it shows up only for some entry points: a SCOOP worker, a pickle load, a test run alone.  The
graph is read from the source with ``ast`` (nothing is imported): the imports executed when a
module loads, i.e. those at top level and inside top-level ``if``/``try``/``with``/``class``
blocks, but not inside functions (deferred) nor under ``if TYPE_CHECKING:`` (never run).
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules(package="deapnn"):
    """{dotted name: (path, is_package)} of every module of ``package``."""
    out = {}
    for dirpath, dirs, files in os.walk(os.path.join(ROOT, package)):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__pycache__"))]
        for f in files:
            if f.endswith(".py"):
                parts = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].split(os.sep)
                is_pkg = parts[-1] == "__init__"
                out[".".join(parts[:-1] if is_pkg else parts)] = (os.path.join(dirpath, f), is_pkg)
    return out


def _is_type_checking(test) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _load_time_imports(body):
    """The import statements run when a module body ``body`` executes."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _load_time_imports(node.body)
            yield from _load_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _load_time_imports(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _load_time_imports(node.body)


def _targets(name, is_pkg, node, modules):
    """The deapnn modules an import statement of module ``name`` loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module
    # ``from pkg import sub`` loads the submodule ``pkg.sub``; ``from mod import name`` loads mod
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source
            for a in node.names]


def import_graph():
    modules = _modules()
    graph = {}
    for name, (path, is_pkg) in modules.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        graph[name] = sorted({t for node in _load_time_imports(tree.body)
                              for t in _targets(name, is_pkg, node, modules)
                              if t in modules and t != name})
    return graph


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state, stack = {}, []

    def visit(v):
        state[v] = "open"
        stack.append(v)
        for w in graph[v]:
            if state.get(w) == "open":
                return stack[stack.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        stack.pop()
        state[v] = "done"
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_the_cycle_finder_sees_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None


def test_the_graph_is_read_from_load_time_imports_only():
    graph = import_graph()
    assert "deapnn.losses.graph_ops" in graph["deapnn.losses.graph"]       # top level
    assert "deapnn.losses.graph" not in graph["deapnn.losses.graph_expr"]  # TYPE_CHECKING only
    assert "deapnn.operators.lexicase_deap" in graph["deapnn.operators"]   # relative import


def test_no_module_level_import_cycle_in_deapnn():
    cycle = find_cycle(import_graph())
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)
