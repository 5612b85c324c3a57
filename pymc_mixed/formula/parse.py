"""Split an lme4-style formula into its response, fixed part and random-effect bars.

formulae (bambi's formula library) builds the fixed-effects model matrix well, but it flattens
``(1 + x | g)`` into separate terms and knows no ``||``. The bar structure *is* the covariance
structure of a mixed model, so bars are parsed here and only the pieces between them are handed
to formulae.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FormulaError

__all__ = ["Bar", "ParsedFormula", "parse_formula", "split_top_level"]


@dataclass(frozen=True)
class Bar:
    """One random-effects term ``(lhs | group)`` after expanding ``/`` and ``||``.

    ``lhs`` is the model formula of the term's columns (``"1 + Days"``), ``group`` the grouping
    factor, with ``:`` for interactions of factors (``"cask:batch"``), and ``source`` the bar as
    the user wrote it, for error messages.
    """

    lhs: str
    group: str
    source: str


@dataclass(frozen=True)
class ParsedFormula:
    """The three parts of a mixed-model formula."""

    response: str
    fixed: str
    bars: tuple[Bar, ...]
    formula: str


def split_top_level(text: str, sep: str) -> list[str]:
    """Split ``text`` on the one-character ``sep`` outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"unbalanced parentheses in {text!r}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise FormulaError(f"unbalanced parentheses in {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _strip_outer_parens(text: str) -> str | None:
    """Return the inside of ``(...)`` if the parentheses enclose the whole text, else None."""
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return None
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return None
    return text[1:-1]


def _expand_group(group: str) -> list[str]:
    """Expand nesting: ``a/b`` -> ``b:a`` and ``a``; ``a/b/c`` -> ``c:b:a``, ``b:a``, ``a``.

    lme4 names the nested factor ``b:a`` (inner first), and so do we, so that users find the
    names they know from ``VarCorr`` output; the innermost comes first, as in lme4's
    ``findbars`` (the order decides theta's order when terms tie in number of levels).
    """
    group = re.sub(r"\s+", "", group)
    if "/" not in group:
        return [group]
    parts = group.split("/")
    out, outer = [], []
    for part in parts:
        outer = [part, *outer]
        out.append(":".join(outer))
    return out[::-1]


def _lhs_terms(lhs: str) -> list[str]:
    """Split a bar's left side into the scalar terms that ``||`` makes independent.

    ``1 + x`` -> ``["1", "0 + x"]``; ``x`` (implicit intercept) -> ``["1", "0 + x"]``;
    ``0 + x + z`` -> ``["0 + x", "0 + z"]``.
    """
    pieces = [p for p in split_top_level(lhs, "+") if p]
    has_intercept = True
    terms = []
    for p in pieces:
        if p in ("0", "-1"):
            has_intercept = False
        elif p == "1":
            continue
        else:
            for q in split_top_level(p, "-"):
                if q in ("1",):
                    has_intercept = False
                elif q:
                    terms.append(q)
    out = ["1"] if has_intercept else []
    return out + [f"0 + {t}" for t in terms]


def parse_formula(formula: str) -> ParsedFormula:
    """Parse ``"y ~ x + (1 + x | g) + (1 | a/b) + (x || h)"``.

    Returns the response expression, the fixed-effects right-hand side (``"1"`` when only the
    intercept remains, ``"0"`` when it was removed) and the expanded bars, in formula order.
    """
    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaError(f"formula must be a string 'response ~ terms', got {formula!r}")
    lhs, _, rhs = formula.partition("~")
    response = lhs.strip()
    if not response:
        raise FormulaError(f"formula {formula!r} has no response on the left of '~'")
    fixed, bars = [], []
    for term in split_top_level(rhs, "+"):
        if not term:
            raise FormulaError(f"empty term in formula {formula!r}")
        inner = _strip_outer_parens(term)
        if inner is None or "|" not in inner:
            fixed.append(term)
            continue
        double = "||" in inner
        left, _, right = inner.partition("||" if double else "|")
        left, right = left.strip(), right.strip()
        if not left or not right or "|" in right:
            raise FormulaError(f"cannot read random-effects term {term!r} in {formula!r}")
        lhs_list = _lhs_terms(left) if double else [left]
        for group in _expand_group(right):
            for part in lhs_list:
                bars.append(Bar(lhs=part, group=group, source=term))
    fixed_rhs = " + ".join(fixed) if fixed else "1"
    return ParsedFormula(response=response, fixed=fixed_rhs, bars=tuple(bars), formula=formula)
