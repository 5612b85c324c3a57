"""Formula expressions are data, not code: a whitelist reader and evaluator.

Every expression a formula holds (the response, each term of the fixed part and of a bar's left
side, offsets) is parsed with :mod:`ast` and checked node by node against a whitelist: column
names, numbers, arithmetic, comparisons and calls of a fixed table of functions. Anything else
(attribute chains, subscripts, lambdas, comprehensions, keyword tricks, dunder names, strings
outside a comparison) raises a :class:`FormulaError` naming the token. Nothing is ever handed to
``eval``; :func:`evaluate` walks the checked tree itself, so a formula can only read columns.

``np.log`` is a *spelling* of ``log`` looked up in the table, never an attribute access.
R's backtick quoting names columns that are not Python identifiers (`` `my col` ``), and a dotted
name that is a column of the data (``total.fruits``) is that column.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import FormulaError

__all__ = ["Expr", "FUNCTIONS", "parse_expression", "evaluate", "rhs_atoms", "safe_namespace"]


def _scale(x):
    """R's ``scale(x)``: centre and divide by the (n - 1) standard deviation."""
    x = np.asarray(x, dtype=float)
    return (x - np.nanmean(x)) / np.nanstd(x, ddof=1)


def _center(x):
    x = np.asarray(x, dtype=float)
    return x - np.nanmean(x)


def _poly(x, degree=1):
    """R's ``poly(x, degree)``: orthonormal polynomial columns (n x degree)."""
    x = np.asarray(x, dtype=float)
    X = np.vander(x - x.mean(), int(degree) + 1, increasing=True)
    Q, R = np.linalg.qr(X)
    Z = Q * np.diag(R)
    return Z[:, 1:] / np.linalg.norm(Z[:, 1:], axis=0)


def _identity(x):
    return x


# name -> (function, number of positional arguments allowed, keyword names allowed)
FUNCTIONS = {
    "log": (np.log, 1, ()), "log2": (np.log2, 1, ()), "log10": (np.log10, 1, ()),
    "log1p": (np.log1p, 1, ()), "exp": (np.exp, 1, ()), "expm1": (np.expm1, 1, ()),
    "sqrt": (np.sqrt, 1, ()), "abs": (np.abs, 1, ()), "sin": (np.sin, 1, ()),
    "cos": (np.cos, 1, ()), "I": (_identity, 1, ()), "scale": (_scale, 1, ()),
    "center": (_center, 1, ()), "poly": (_poly, 2, ("degree",)), "offset": (_identity, 1, ()),
}
# These spellings with an ``np.`` / ``numpy.`` prefix mean the function of the same name.
_NP_SPELLED = {"log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs", "sin", "cos"}
FACTOR_FUNCTIONS = {"factor", "C"}  # make a factor of a column: whole terms only
RESPONSE_FUNCTIONS = {"cbind", "p"}  # the response's two-column forms
_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.true_divide, ast.Pow: np.power, ast.BitXor: np.power}  # R's ^ is power
_CMPOPS = {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
           ast.Gt: np.greater, ast.GtE: np.greater_equal}
_MAX_LEN = 2000
_QUOTE = "pmm_bq_"


def _token(text: str, node) -> str:
    seg = ast.get_source_segment(text, node) or type(node).__name__
    return seg if len(seg) <= 60 else seg[:57] + "..."


def _refuse(what: str, token: str, source: str):
    raise FormulaError(f"{what} {token!r} is not allowed in formula expression {source!r} "
                       "(formulas are data, not code: column names, numbers, arithmetic, "
                       "comparisons and the functions " + ", ".join(sorted(FUNCTIONS)) + ")")


@dataclass(frozen=True)
class Expr:
    """A checked formula expression: its text, tree, and the columns it reads."""

    text: str
    tree: ast.Expression
    code_text: str  # the text the tree was parsed from (backticks replaced)
    names: dict  # placeholder or identifier in the tree -> column name
    columns: tuple  # the columns read, in order of appearance

    @property
    def call(self) -> str | None:
        """The function name when the whole expression is one call (``offset``, ``factor``)."""
        body = self.tree.body
        return _callee(body) if isinstance(body, ast.Call) else None


def _callee(node: ast.Call) -> str | None:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
            and f.value.id in ("np", "numpy") and f.attr in _NP_SPELLED):
        return f.attr
    return None


def _quote_names(text: str, columns) -> tuple[str, dict]:
    """Replace `` `quoted` `` and dotted column names by placeholder identifiers."""
    names: dict = {}

    def sub(name: str) -> str:
        key = f"{_QUOTE}{len(names)}"
        names[key] = name
        return key

    text = re.sub(r"`([^`]*)`", lambda m: sub(m.group(1)), text)
    if columns is not None:
        dotted = {c for c in columns if isinstance(c, str) and "." in c}
        if dotted:
            text = re.sub(r"(?<![\w.])[A-Za-z_][\w]*(?:\.\w+)+(?![\w.(])",
                          lambda m: sub(m.group(0)) if m.group(0) in dotted else m.group(0),
                          text)
    return text, names


def parse_expression(text: str, columns=None, allow=()) -> Expr:
    """Parse and check one formula expression; ``allow`` adds ``"factor"``, ``"response"``
    (cbind/p) or ``"string"`` (string constants in comparisons) where they make sense."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula expression must be text, got {type(text).__name__}")
    if len(text) > _MAX_LEN:
        raise FormulaError(f"formula expression longer than {_MAX_LEN} characters")
    code, names = _quote_names(text.strip(), columns)
    try:
        tree = ast.parse(code, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        msg = err.msg if isinstance(err, SyntaxError) else type(err).__name__
        raise FormulaError(f"cannot read formula expression {text.strip()!r}: {msg}") from None
    cols: list = []
    _check(tree.body, code, text.strip(), names, cols, set(allow), top=True)
    return Expr(text=text.strip(), tree=tree, code_text=code, names=names,
                columns=tuple(dict.fromkeys(cols)))


def _check(node, code, source, names, cols, allow, top=False, in_compare=False):
    """Walk the tree and refuse every node outside the whitelist."""
    rec = lambda n, **kw: _check(n, code, source, names, cols, allow, **kw)  # noqa: E731
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        rec(node.left), rec(node.right)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        rec(node.operand)
    elif isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
        for part in (node.left, *node.comparators):
            rec(part, in_compare=True)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, str) and in_compare:
            return
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            _refuse("the constant", _token(code, node), source)
    elif isinstance(node, ast.Name):
        if node.id.startswith("_") or "__" in node.id:
            _refuse("the name", node.id, source)
        cols.append(names.get(node.id, node.id))
    elif isinstance(node, ast.Call):
        _check_call(node, code, source, allow, top, rec)
    elif isinstance(node, ast.Attribute):
        _refuse("attribute access", _token(code, node), source)
    else:
        _refuse(f"the {type(node).__name__.lower()}", _token(code, node), source)


def _check_call(node, code, source, allow, top, rec):
    name = _callee(node)
    if name is None:
        what = "attribute access" if isinstance(node.func, ast.Attribute) else "the call"
        _refuse(what, _token(code, node.func), source)
    if name in FACTOR_FUNCTIONS and "factor" in allow and top:
        if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Name):
            _refuse("the call", _token(code, node), source)
        return rec(node.args[0])
    if name in RESPONSE_FUNCTIONS and "response" in allow and top:
        if len(node.args) != 2 or node.keywords:
            raise FormulaError(f"{name}() in the response takes two arguments: {source!r}")
        return [rec(a) for a in node.args]
    if name not in FUNCTIONS:
        raise FormulaError(f"unknown function {name!r} in formula expression {source!r}; "
                           f"known functions: {', '.join(sorted(FUNCTIONS))}")
    _, nargs, kwnames = FUNCTIONS[name]
    if name == "offset" and not top:
        raise FormulaError(f"offset() must be a whole term, not part of {source!r}")
    if len(node.args) + len(node.keywords) > nargs or not node.args:
        _refuse("the call", _token(code, node), source)
    for a in node.args:
        if isinstance(a, ast.Starred):
            _refuse("the starred argument", _token(code, a), source)
    for k in node.keywords:
        if k.arg not in kwnames or not isinstance(k.value, ast.Constant) \
                or not isinstance(k.value.value, int):
            _refuse("the keyword argument", _token(code, k.value) if k.arg is None
                    else f"{k.arg}=", source)
    if len(node.args) == 2 and not (isinstance(node.args[1], ast.Constant)
                                    and isinstance(node.args[1].value, int)):
        _refuse("the argument", _token(code, node.args[1]), source)
    rec(node.args[0])


def _column(data: pd.DataFrame, name: str) -> np.ndarray:
    if name not in data.columns:
        raise FormulaError(f"column {name!r} not found in data")
    s = data[name]
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return s.astype(object).to_numpy()


def evaluate(expr: Expr, data: pd.DataFrame) -> np.ndarray:
    """Evaluate a checked expression on ``data``: a float array (n,) or (n, k) for ``poly``.

    Non-finite results (``log(0)``) are returned as they are; callers drop or refuse them.
    """
    with np.errstate(all="ignore"):
        try:
            out = _eval(expr.tree.body, expr, data)
        except FormulaError:
            raise
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as err:
            raise FormulaError(f"cannot evaluate {expr.text!r} on the data: "
                               f"{type(err).__name__}") from None
    out = np.asarray(out)
    if out.dtype == object or not np.issubdtype(out.dtype, np.number) \
            and not np.issubdtype(out.dtype, np.bool_):
        raise FormulaError(f"{expr.text!r} is not numeric")
    out = out.astype(float)
    return np.broadcast_to(out, (len(data),)).copy() if out.ndim == 0 else out


def _eval(node, expr: Expr, data):
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else np.float64(node.value)
    if isinstance(node, ast.Name):
        return _column(data, expr.names.get(node.id, node.id))
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, expr, data), _eval(node.right, expr, data)
        return _BINOPS[type(node.op)](_numeric(left, expr), _numeric(right, expr))
    if isinstance(node, ast.UnaryOp):
        v = _numeric(_eval(node.operand, expr, data), expr)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Compare):
        out, left = None, _eval(node.left, expr, data)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, expr, data)
            res = np.asarray(_CMPOPS[type(op)](left, right), dtype=bool)
            out = res if out is None else out & res
            left = right
        return out.astype(float)
    name = _callee(node)
    if name in FACTOR_FUNCTIONS or name in RESPONSE_FUNCTIONS:
        raise FormulaError(f"{name}() cannot be evaluated as a number in {expr.text!r}")
    fun = FUNCTIONS[name][0]
    args = [_numeric(_eval(node.args[0], expr, data), expr)]
    args += [a.value for a in node.args[1:]] + [k.value.value for k in node.keywords]
    return fun(*args)


def _numeric(v, expr: Expr):
    if isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype == object):
        raise FormulaError(f"arithmetic on a non-numeric column or text in {expr.text!r}")
    return v


_FORMULA_OPS = re.compile(r"%in%|[+\-*:/^]")


def rhs_atoms(text: str) -> list[str]:
    """The operands of a formula's right side: the pieces between the formula operators
    ``+ - * : / ^ %in%`` at the top level, with parenthesized groups opened recursively."""
    out, depth, start, i = [], 0, 0, 0
    quoted = False
    while i < len(text):
        ch = text[i]
        if ch == "`":
            quoted = not quoted
        elif quoted:
            pass
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            m = _FORMULA_OPS.match(text, i)
            if m:
                out.append(text[start:i])
                start = i = m.end()
                continue
        i += 1
    out.append(text[start:])
    atoms = []
    for a in (a.strip() for a in out):
        inner = a[1:-1] if a.startswith("(") and a.endswith(")") and _balanced(a[1:-1]) else None
        if inner is not None:
            atoms.extend(rhs_atoms(inner))
        elif a:
            atoms.append(a)
    return atoms


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


class RScale:
    """R's ``scale(x)`` as a formulae stateful transform: centre and divide by the (n - 1)
    standard deviation of the fitted data, and reuse both on new data (formulae's own
    ``scale`` divides by the n standard deviation, which changes the coefficient)."""

    __stateful_transform__ = True

    def __init__(self):
        self.mean = self.sd = None

    def __call__(self, x):
        x = np.asarray(x, dtype=float)
        if self.mean is None:
            self.mean, self.sd = np.nanmean(x), np.nanstd(x, ddof=1)
        return (x - self.mean) / self.sd


class _SafeNumpy:
    """What formulae may reach under ``np.``: only the whitelisted functions, no attributes."""

    __slots__ = ()


for _n in _NP_SPELLED:
    setattr(_SafeNumpy, _n, staticmethod(FUNCTIONS[_n][0]))


def safe_namespace() -> dict:
    """The only names formulae can resolve when it builds a model matrix."""
    ns = {name: f for name, (f, _, _) in FUNCTIONS.items() if name not in ("I", "offset", "poly",
                                                                          "scale", "center")}
    ns["np"] = ns["numpy"] = _SafeNumpy()
    ns[R_SCALE] = RScale
    return ns


R_SCALE = "pmm_rscale"  # the name scale() is handed to formulae under
