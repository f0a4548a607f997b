"""The operator set of the NLFS loss graphs (Morgan & Hougen 2024, §3.1 "Search space").

27 unary and 7 binary element-wise operations, each given three ways from one table so they can
never drift apart:

* a torch callable (used by the compiled loss and by the integrity probe),
* a sympy builder (``to_sympy`` / LaTeX),
* a name used by ``to_expression`` and accepted by ``LossGraph.from_expression``.

Protected forms use ``EPS = 1e-7``: ``log`` is ln(|x|+ε), ``log10`` is log10(|x|+ε), ``recip`` is
1/(x+ε), ``sqrt`` is √|x| and the binary ``protected_div`` is a/(b+ε) (printed and parsed as
``a / b``; ``div(a, b)`` is accepted too).  ``aq`` is the analytic quotient a/√(1+b²) (what EvoMAL's
GP trees call ``div``, hence the distinct name here).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-7


def _neg(x):
    return torch.neg(x)


def _log(x):
    return torch.log(torch.abs(x) + EPS)


def _log10(x):
    return torch.log10(torch.abs(x) + EPS)


def _inv1pabs(x):
    return torch.reciprocal(torch.abs(x) + 1.0)


def _recip(x):
    return torch.reciprocal(x + EPS)


def _max0(x):
    return torch.clamp(x, min=0.0)


def _min0(x):
    return torch.clamp(x, max=0.0)


def _square(x):
    return x * x


def _sqrt(x):
    return torch.sqrt(torch.abs(x))


def _softsign(x):
    return x / (torch.abs(x) + 1.0)


def _dtanh(x):
    t = torch.tanh(x)
    return 1.0 - t * t


def _dsigmoid(x):
    s = torch.sigmoid(x)
    return s * (1.0 - s)


def _protected_div(a, b):
    return a / (b + EPS)


def _aq(a, b):
    return a / torch.sqrt(1.0 + b * b)


def _sym():
    import sympy
    return sympy


def _sigmoid_sym(a):
    sp = _sym()
    return 1 / (1 + sp.exp(-a))


#: (name, torch fn, sympy builder(a, eps)) — index = op id stored in the genome.
UNARY = [
    ("neg", _neg, lambda a, e: -a),
    ("log", _log, lambda a, e: _sym().log(_sym().Abs(a) + e)),
    ("log10", _log10, lambda a, e: _sym().log(_sym().Abs(a) + e, 10)),
    ("exp", torch.exp, lambda a, e: _sym().exp(a)),
    ("abs", torch.abs, lambda a, e: _sym().Abs(a)),
    ("sigmoid", torch.sigmoid, lambda a, e: _sigmoid_sym(a)),
    ("inv1pabs", _inv1pabs, lambda a, e: 1 / (1 + _sym().Abs(a))),
    ("softplus", F.softplus, lambda a, e: _sym().log(1 + _sym().exp(a))),
    ("erf", torch.special.erf, lambda a, e: _sym().erf(a)),
    ("erfc", torch.special.erfc, lambda a, e: _sym().erfc(a)),
    ("sin", torch.sin, lambda a, e: _sym().sin(a)),
    ("sinh", torch.sinh, lambda a, e: _sym().sinh(a)),
    ("asinh", torch.asinh, lambda a, e: _sym().asinh(a)),
    ("tanh", torch.tanh, lambda a, e: _sym().tanh(a)),
    ("atan", torch.atan, lambda a, e: _sym().atan(a)),
    ("recip", _recip, lambda a, e: 1 / (a + e)),
    ("i0", torch.special.i0, lambda a, e: _sym().besseli(0, a)),
    ("i0e", torch.special.i0e, lambda a, e: _sym().exp(-_sym().Abs(a)) * _sym().besseli(0, a)),
    ("i1", torch.special.i1, lambda a, e: _sym().besseli(1, a)),
    ("i1e", torch.special.i1e, lambda a, e: _sym().exp(-_sym().Abs(a)) * _sym().besseli(1, a)),
    ("max0", _max0, lambda a, e: _sym().Max(a, 0)),
    ("min0", _min0, lambda a, e: _sym().Min(a, 0)),
    ("square", _square, lambda a, e: a ** 2),
    ("sqrt", _sqrt, lambda a, e: _sym().sqrt(_sym().Abs(a))),
    ("softsign", _softsign, lambda a, e: a / (1 + _sym().Abs(a))),
    ("dtanh", _dtanh, lambda a, e: 1 - _sym().tanh(a) ** 2),
    ("dsigmoid", _dsigmoid, lambda a, e: _sigmoid_sym(a) * (1 - _sigmoid_sym(a))),
]

BINARY = [
    ("add", torch.add, lambda a, b, e: a + b),
    ("sub", torch.sub, lambda a, b, e: a - b),
    ("mul", torch.mul, lambda a, b, e: a * b),
    ("max", torch.maximum, lambda a, b, e: _sym().Max(a, b)),
    ("min", torch.minimum, lambda a, b, e: _sym().Min(a, b)),
    ("protected_div", _protected_div, lambda a, b, e: a / (b + e)),
    ("aq", _aq, lambda a, b, e: a / _sym().sqrt(1 + b ** 2)),
]

UNARY_NAMES = [u[0] for u in UNARY]
BINARY_NAMES = [b[0] for b in BINARY]
UNARY_INDEX = {n: i for i, n in enumerate(UNARY_NAMES)}
BINARY_INDEX = {n: i for i, n in enumerate(BINARY_NAMES)}
N_UNARY, N_BINARY = len(UNARY), len(BINARY)

#: binary ops printed infix (name -> (symbol, precedence)); the others print as calls.
INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "protected_div": ("/", 2)}

#: extra names accepted by the parser (alias -> canonical name).
UNARY_ALIASES = {"ln": "log", "relu": "max0", "sq": "square", "sigma": "sigmoid",
                 "arcsinh": "asinh", "arctan": "atan", "reciprocal": "recip", "softabs": "inv1pabs"}
BINARY_ALIASES = {"plus": "add", "minus": "sub", "times": "mul", "maximum": "max",
                  "minimum": "min", "div": "protected_div", "divide": "protected_div",
                  "analytic_quotient": "aq"}

assert N_UNARY == 27 and N_BINARY == 7
