"""Formulas for NLFS loss graphs: text, sympy, LaTeX, and parsing text back into a genome.

Morgan & Hougen 2024 report discovered losses as formulas (§4, NeuroLoss1–3); here
every found loss is exportable as text / sympy / LaTeX and formulas load back as genomes.

Text grammar (Python expression syntax, ``^`` allowed for powers)
----------------------------------------------------------------
* variables: ``y`` (one-hot label) and ``yhat`` (softmax output; also ``y_hat``, ``ŷ``, ``f``);
  constants ``1`` and ``-1`` (input slots, no node needed).
* ``a + b``, ``a - b``, ``a * b`` → add / sub / mul;  ``a / b`` → protected_div = a/(b+ε);
  ``1 / x`` → recip = 1/(x+ε) (same value, one unary node);  ``-x`` → neg;  ``x**2`` or ``x^2``
  → square.
* calls ``name(x)`` for the 27 unary ops: neg log log10 exp abs sigmoid inv1pabs softplus erf
  erfc sin sinh asinh tanh atan recip i0 i0e i1 i1e max0 min0 square sqrt softsign dtanh dsigmoid,
  where ``log(x)`` = ln(|x|+ε), ``log10(x)`` = log10(|x|+ε), ``sqrt(x)`` = √|x|,
  ``inv1pabs(x)`` = 1/(1+|x|), ``dtanh`` = 1−tanh², ``dsigmoid`` = σ(1−σ);
  aliases ``ln``→log, ``relu``→max0, ``sq``→square.
* calls ``name(a, b)`` for the binary ops add sub mul max min div aq (aq = a/√(1+b²));
  ``max(x, 0)`` / ``min(x, 0)`` → max0 / min0.
* identical sub-expressions share one node.  A formula fits when it needs at most 4 hidden nodes
  plus the root; a top-level ``-( … )`` that does not fit as a node becomes the genome's ``flip``.
Anything else (other numbers, unknown names, wrong arity, too many nodes, a formula missing y or
yhat) raises ``ValueError`` naming the problem.
"""
from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from .graph_ops import (BINARY, BINARY_ALIASES, BINARY_INDEX, BINARY_NAMES, INFIX, UNARY,
                        UNARY_ALIASES, UNARY_INDEX, UNARY_NAMES)
from .graph_slots import MONE, N_HIDDEN, N_INPUTS, ONE, ROOT, Y, YHAT, GraphError, check_active

if TYPE_CHECKING:                   # graph imports this module: no runtime import back
    from .graph import LossGraph

_ATOM, _POW, _NEG, _MUL, _ADD = 5, 4, 3, 2, 1
_VARS = {"y": Y, "yhat": YHAT, "y_hat": YHAT, "ŷ": YHAT, "f": YHAT}


# --- genome -> text ---------------------------------------------------------------------------
def to_expression(g: LossGraph, flip: bool = True) -> str:
    g.validate()
    memo = {}

    def slot(s):
        if s < N_INPUTS:
            return [("y", _ATOM), ("yhat", _ATOM), ("1", _ATOM), ("-1", _NEG)][s]
        return node(s - N_INPUTS)

    def paren(t, p, need):
        return (f"({t})", _ATOM) if p < need else (t, p)

    def node(i):
        if i in memo:
            return memo[i]
        u, b, binary, a, c = g.nodes[i]
        if binary:
            name = BINARY_NAMES[b]
            (ta, pa), (tc, pc) = slot(a), slot(c)
            if name in INFIX:
                sym, p = INFIX[name]
                ta, _ = paren(ta, pa, p)
                tc, _ = paren(tc, pc, p + 1 if pc != _NEG else _POW)
                out = (f"{ta} {sym} {tc}", p)
            else:
                out = (f"{name}({ta}, {tc})", _ATOM)
        else:
            name = UNARY_NAMES[u]
            ta, pa = slot(a)
            if name == "neg":
                out = (f"-{ta}" if pa >= _POW else f"-({ta})", _NEG)
            elif name == "square":
                out = (f"{paren(ta, pa, _ATOM)[0]}^2", _POW)
            else:
                out = (f"{name}({ta})", _ATOM)
        memo[i] = out
        return out

    text, p = node(ROOT)
    if flip and g.flip:
        text = f"-{text}" if p >= _POW else f"-({text})"
    return text


# --- genome -> sympy / LaTeX --------------------------------------------------------------------
def to_sympy(g: LossGraph, eps=0, flip: bool = True):
    import sympy
    g.validate()
    y, yhat = sympy.Symbol("y"), sympy.Symbol("yhat")
    eps = sympy.sympify(eps)
    inputs = [y, yhat, sympy.Integer(1), sympy.Integer(-1)]
    memo = {}

    def slot(s):
        return inputs[s] if s < N_INPUTS else node(s - N_INPUTS)

    def node(i):
        if i not in memo:
            u, b, binary, a, c = g.nodes[i]
            memo[i] = BINARY[b][2](slot(a), slot(c), eps) if binary else UNARY[u][2](slot(a), eps)
        return memo[i]

    expr = node(ROOT)
    return -expr if (flip and g.flip) else expr


def to_latex(g: LossGraph, eps=0, simplify: bool = False) -> str:
    import sympy
    term = to_sympy(g, eps=eps)
    if simplify:
        term = sympy.simplify(term)
    body = sympy.latex(term, symbol_names={sympy.Symbol("yhat"): r"\hat{y}"})
    return r"\mathcal{L} = \frac{1}{N}\sum_{n=1}^{N}\sum_{c=1}^{C}\left(" + body + r"\right)"


# --- text -> genome ---------------------------------------------------------------------------
#: longest formula accepted, in tokens (names, numbers, operators, parentheses)
MAX_FORMULA_TOKENS = 1000
#: deepest nesting accepted (parentheses, or operators inside operators)
MAX_FORMULA_DEPTH = 100
_TOKEN = re.compile(r"\w+|\*\*|\S")


def _fail(text, why):
    shown = text if len(text) <= 120 else text[:120] + "..."
    raise ValueError(f"cannot read loss formula {shown!r}: {why}")


def _check_size(text: str) -> None:
    """``ValueError`` for a formula of more than :data:`MAX_FORMULA_TOKENS` tokens or nested
    deeper than :data:`MAX_FORMULA_DEPTH` parentheses (checked before Python parses it)."""
    tokens = _TOKEN.findall(text)
    if len(tokens) > MAX_FORMULA_TOKENS:
        _fail(text, f"{len(tokens)} tokens; at most {MAX_FORMULA_TOKENS} are allowed")
    depth = deepest = 0
    for tok in tokens:
        if tok == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif tok == ")":
            depth -= 1
    if deepest > MAX_FORMULA_DEPTH:
        _fail(text, f"parentheses nested {deepest} deep; at most {MAX_FORMULA_DEPTH} are allowed")


def _is_const(node, value) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) \
        and isinstance(node.value, (int, float)) and node.value == value


def from_expression(text: str) -> dict:
    """Parse ``text`` (module docstring grammar) into ``{"nodes": [...], "flip": bool}``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a loss formula must be a non-empty string")
    _check_size(text)
    try:
        tree = ast.parse(text.replace("^", "**").strip(), mode="eval").body
    except SyntaxError as exc:
        _fail(text, f"syntax error ({exc.msg})")
    except (RecursionError, MemoryError):
        _fail(text, f"nested too deeply (at most {MAX_FORMULA_DEPTH} levels)")

    def conv(n, depth=0):
        if depth > MAX_FORMULA_DEPTH:
            _fail(text, f"operators nested more than {MAX_FORMULA_DEPTH} deep")
        d = depth + 1
        if isinstance(n, ast.Name):
            if n.id not in _VARS:
                _fail(text, f"unknown variable {n.id!r}; use y and yhat")
            return ("s", _VARS[n.id])
        if isinstance(n, ast.Constant):
            if _is_const(n, 1):
                return ("s", ONE)
            _fail(text, f"constant {n.value!r} is not allowed (only 1 and -1)")
        if isinstance(n, ast.UnaryOp):
            if isinstance(n.op, ast.UAdd):
                return conv(n.operand, d)
            if isinstance(n.op, ast.USub):
                if _is_const(n.operand, 1):
                    return ("s", MONE)
                return ("u", UNARY_INDEX["neg"], conv(n.operand, d))
            _fail(text, f"operator {type(n.op).__name__} is not allowed")
        if isinstance(n, ast.BinOp):
            if isinstance(n.op, ast.Pow):
                if _is_const(n.right, 2):
                    return ("u", UNARY_INDEX["square"], conv(n.left, d))
                _fail(text, "only the power 2 is allowed (x**2); use sqrt() for √|x|")
            if isinstance(n.op, ast.Div) and _is_const(n.left, 1):
                return ("u", UNARY_INDEX["recip"], conv(n.right, d))
            ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "protected_div"}
            name = ops.get(type(n.op))
            if name is None:
                _fail(text, f"operator {type(n.op).__name__} is not allowed")
            return ("b", BINARY_INDEX[name], conv(n.left, d), conv(n.right, d))
        if isinstance(n, ast.Call):
            if not isinstance(n.func, ast.Name) or n.keywords:
                _fail(text, "only plain calls like log(x) are allowed")
            fname, args = n.func.id, n.args
            if fname in ("max", "min") and len(args) == 2 and any(_is_const(a, 0) for a in args):
                other = args[1] if _is_const(args[0], 0) else args[0]
                return ("u", UNARY_INDEX[fname + "0"], conv(other, d))
            uname = UNARY_ALIASES.get(fname, fname)
            bname = BINARY_ALIASES.get(fname, fname)
            if uname in UNARY_INDEX:
                if len(args) != 1:
                    _fail(text, f"{fname}() takes 1 argument, got {len(args)}")
                return ("u", UNARY_INDEX[uname], conv(args[0], d))
            if bname in BINARY_INDEX:
                if len(args) != 2:
                    _fail(text, f"{fname}() takes 2 arguments, got {len(args)}")
                return ("b", BINARY_INDEX[bname], conv(args[0], d), conv(args[1], d))
            _fail(text, f"unknown op {fname!r}; unary: {', '.join(UNARY_NAMES)}; "
                        f"binary: {', '.join(BINARY_NAMES)}")
        _fail(text, f"unsupported syntax {type(n).__name__}")

    top = conv(tree)
    if top[0] == "s":
        _fail(text, "the formula must apply at least one op")

    def ops_of(root):
        order, seen = [], set()

        def walk(k):
            if k[0] == "s" or k in seen:
                return
            for child in k[2:]:
                walk(child)
            seen.add(k)
            order.append(k)
        walk(root)
        return order

    flip = False
    order = ops_of(top)
    if len(order) - 1 > N_HIDDEN and top[0] == "u" and top[1] == UNARY_INDEX["neg"] \
            and top[2][0] != "s":
        flip, top = True, top[2]
        order = ops_of(top)
    if len(order) - 1 > N_HIDDEN:
        _fail(text, f"needs {len(order) - 1} hidden nodes plus the root; a loss graph has "
                    f"{N_HIDDEN} hidden nodes")
    slot_of = {}
    nodes = []
    for k in order[:-1]:
        slot_of[k] = N_INPUTS + len(nodes)
        nodes.append(k)

    def ref(k):
        return k[1] if k[0] == "s" else slot_of[k]

    rows = []
    for k in nodes + [None] * (N_HIDDEN - len(nodes)) + [top]:
        if k is None:
            rows.append([0, 0, 0, Y, YHAT])
        elif k[0] == "u":
            rows.append([k[1], 0, 0, ref(k[2]), Y])
        else:
            rows.append([0, k[1], 1, ref(k[2]), ref(k[3])])
    try:
        check_active(rows)
    except GraphError as exc:
        _fail(text, str(exc))
    return {"nodes": rows, "flip": flip}
