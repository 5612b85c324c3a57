"""R's ``.`` in a formula's fixed part: every column of the data not on the left-hand side.

``y ~ . + (1 | g)`` with columns y, x, g has fixed effects for x *and* g, as in lmer (``.``
knows nothing of the bars). Terms combine as R's ``terms.formula`` combines them: ``. - x``
removes x, ``z + .`` puts z first and does not repeat it, and ``.`` inside an operator
(``.^2``, ``x * .``) stands for the parenthesized sum of the columns. The expansion is text
that then passes the same whitelist as everything else: ``.`` itself never reaches an
evaluator, and a ``.`` inside a call (``log(.)``) or a random-effects term is refused.
"""

from __future__ import annotations

import re
from itertools import combinations

from .errors import FormulaError
from .parse import split_top_level

__all__ = ["has_dot", "expand_dot"]

_NAME = re.compile(r"[A-Za-z][\w.]*|\.[A-Za-z_][\w.]*")


def _dots(text: str) -> list[int]:
    """Positions of ``.`` tokens outside quotes, names and numbers."""
    out, quote = [], None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "`'\"":
            quote = ch
        elif ch == "." and not (i and (text[i - 1].isalnum() or text[i - 1] in "._")) \
                and not (i + 1 < len(text) and (text[i + 1].isalnum() or text[i + 1] in "._")):
            out.append(i)
    return out


def has_dot(text: str) -> bool:
    """Whether a formula side holds R's ``.``."""
    return bool(_dots(text))


def _signed_terms(text: str) -> list[tuple[str, str]]:
    """Top-level ``+``/``-`` separated terms with their signs (quotes and calls kept whole)."""
    out, depth, quote, cur, sign = [], 0, None, "", "+"
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "`'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in "+-":
            if cur.strip():
                out.append((sign, cur.strip()))
            cur, sign = "", ch
            continue
        cur += ch
    if cur.strip():
        out.append((sign, cur.strip()))
    return out


def _column_term(col) -> str:
    if not isinstance(col, str) or "`" in col:
        raise FormulaError(f"column {col!r} cannot be named in a formula, so '.' cannot stand "
                           "for it; rename it or list the columns instead of '.'")
    return col if _NAME.fullmatch(col) else f"`{col}`"


def _substitute(term: str, columns: list[str], source: str) -> str:
    """``.`` inside an operator term (``.^2``, ``x * .``) -> ``(a + b + ...)``."""
    group = "(" + " + ".join(columns) + ")"
    out, last = [], 0
    for pos in _dots(term):
        if not _only_grouping(term[:pos]):
            raise FormulaError(f"'.' cannot be the argument of a function (in {source!r}); "
                               "it stands for columns, not for a value")
        out += [term[last:pos], group]
        last = pos + 1
    return "".join(out) + term[last:]


def _only_grouping(prefix: str) -> bool:
    """Whether every parenthesis open at the end of ``prefix`` groups terms (not a call)."""
    stack = []
    for i, ch in enumerate(prefix):
        if ch == "(":
            j = i - 1
            while j >= 0 and prefix[j] == " ":
                j -= 1
            stack.append(j >= 0 and (prefix[j].isalnum() or prefix[j] in "._"))
        elif ch == ")" and stack:
            stack.pop()
    return not any(stack)


def _norm(term: str) -> frozenset:
    """A term's identity: ``a:b`` and ``b:a`` are one term, as in R."""
    return frozenset(split_top_level(re.sub(r"\s+", "", term), ":"))


def _power(term: str, cols: list[str]) -> list[str] | None:
    """``.^k`` -> every interaction of up to k columns, in R's order, so that ``- a:b``
    can remove one of them whichever way round it is written."""
    m = re.fullmatch(r"\.\s*\^\s*(\d+)", term)
    if m is None:
        return None
    k = int(m.group(1))
    return [":".join(c) for r in range(1, k + 1) for c in combinations(cols, r)]


def expand_dot(rhs: str, columns, exclude, source: str) -> str:
    """Replace ``.`` in the fixed part ``rhs`` by the columns of the data not in ``exclude``
    (the response's columns), combining terms as R does. ``rhs`` without ``.`` comes back
    unchanged, so formulas that do not use ``.`` take exactly the paths they took before."""
    if not has_dot(rhs):
        return rhs
    cols = [_column_term(c) for c in columns if c not in set(exclude)]
    terms, removed, intercept = [], [], None
    for sign, term in _signed_terms(rhs):
        items = cols if term == "." else _power(term, cols) or [
            _substitute(term, cols, source)] if has_dot(term) else [term]
        for t in items:
            if t in ("0", "1"):
                intercept = "0" if (t == "0") == (sign == "+") else "1"
            elif sign == "+":
                if _norm(t) not in {_norm(x) for x in terms}:
                    terms.append(t)
            else:
                kept = [x for x in terms if _norm(x) != _norm(t)]
                if len(kept) == len(terms):
                    removed.append(t)  # a term of an expansion (x:z of .^2): formulae's job
                terms = kept
    text = " + ".join(([intercept] if intercept else []) + terms) or (intercept or "1")
    return text + "".join(f" - {t}" for t in removed)
