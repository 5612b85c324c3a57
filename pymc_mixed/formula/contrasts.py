"""R's contrasts for factors that formulae codes: polynomial contrasts for ordered factors.

R codes an ordered factor with ``contr.poly`` wherever it enters a model matrix through
contrasts -- as a main effect, in interactions (``Days * o`` gives ``o.L``, ``Days:o.L``, ...),
next to functions of other columns and in random-effect left sides -- and with one indicator
per level where ``model.matrix`` needs the full coding (``x:o`` without the main effect ``o``,
or no intercept). formulae knows only treatment and sum coding, so an ordered column ``o`` is
handed to it as ``C(o, pmm_poly)``: a formulae ``Encoding`` that gives exactly those two
codings, with R's column labels.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["contr_poly", "poly_suffixes", "poly_encodings", "code_ordered", "r_column_order"]

POLY = "pmm_poly"  # the encoding's name in formulae's environment (not a user-reachable name)
POLY_FACTOR = "pmm_polyf"  # the same encoding, for a column the user wrote as factor(o)


def contr_poly(k: int) -> np.ndarray:
    """R's ``contr.poly(k)``: orthonormal polynomial contrasts on the scores 1..k (k x k-1)."""
    x = np.arange(1, k + 1, dtype=float)
    X = np.vander(x - x.mean(), k, increasing=True)
    Q, R = np.linalg.qr(X)
    raw = Q * np.diag(R)  # sign-free: a flipped column of Q flips its diagonal of R too
    Z = raw / np.linalg.norm(raw, axis=0)
    return Z[:, 1:]


def poly_suffixes(k: int) -> list[str]:
    """R's names of the ``contr.poly(k)`` columns: ``.L``, ``.Q``, ``.C``, ``^4``, ..."""
    return [(".L", ".Q", ".C")[d - 1] if d <= 3 else f"^{d}" for d in range(1, k)]


def poly_encodings() -> dict:
    """The formulae environment entries of the polynomial encoding (imported lazily: formulae
    costs a quarter of a second to import, and plain-column models never need it)."""
    from formulae.categorical import ContrastMatrix, Encoding

    class PolyEncoding(Encoding):
        """Ordered factor coding as R's ``model.matrix``: ``contr.poly`` when the term's
        column space needs contrasts, one indicator per level when it needs the full set."""

        def code_with_intercept(self, levels):  # formulae: "spans the intercept" = full
            return ContrastMatrix(np.eye(len(levels)), [str(v) for v in levels])

        def code_without_intercept(self, levels):
            return ContrastMatrix(contr_poly(len(levels)), poly_suffixes(len(levels)))

    return {POLY: PolyEncoding, POLY_FACTOR: PolyEncoding}


def _ordered_names(data: pd.DataFrame, columns) -> list[str]:
    return [c for c in columns if c in data.columns and isinstance(data[c].dtype,
            pd.CategoricalDtype) and data[c].cat.ordered]


def code_ordered(text: str, data: pd.DataFrame, columns) -> tuple[str, dict]:
    """Rewrite the ordered columns among ``columns`` of a formulae right side so that formulae
    codes them as R does: a bare ``o`` at formula level becomes ``C(o, pmm_poly)``, a
    ``C(o)`` (the user's ``factor(o)``) ``C(o, pmm_polyf)``. Returns the text and the map
    from formulae's spelling back to R's, for the column labels. Names inside other calls
    (``I(o == "lo")``) are left alone: there they are values, not factors."""
    back = {}
    for col in _ordered_names(data, columns):
        name = re.escape(col)
        spelled = rf"(?:`{name}`|(?<![\w.`]){name}(?![\w.`(]))"
        factor = re.compile(rf"C\(\s*({spelled})\s*\)")
        text = _at_depth0(text, factor, lambda m: f"C({m.group(1)}, {POLY_FACTOR})", calls=True)
        text = _at_depth0(text, re.compile(spelled), lambda m: f"C({m.group(0)}, {POLY})")
        back[f"C({col}, {POLY})"] = col
        back[f"C(`{col}`, {POLY})"] = col
        back[f"C({col}, {POLY_FACTOR})"] = f"factor({col})"
        back[f"C(`{col}`, {POLY_FACTOR})"] = f"factor({col})"
    return text, back


def _at_depth0(text: str, pattern, repl, calls: bool = False) -> str:
    """``pattern.sub(repl, text)`` for matches that start outside every call's parentheses
    (parentheses that only group terms, ``(a + b):c``, do not count)."""
    out, last = [], 0
    for m in pattern.finditer(text):
        if _call_depth(text, m.start()) == 0:
            out.append(text[last:m.start()])
            out.append(repl(m))
            last = m.end()
    out.append(text[last:])
    return "".join(out)


def _call_depth(text: str, pos: int) -> int:
    """How many call parentheses (``f(``, not grouping ``(``) are open at ``pos``."""
    stack, quoted = [], False
    for i, ch in enumerate(text[:pos]):
        if ch == "`":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            j = i - 1
            while j >= 0 and text[j] == " ":
                j -= 1
            stack.append(j >= 0 and (text[j].isalnum() or text[j] in "._"))
        elif ch == ")" and stack:
            stack.pop()
    return sum(stack)


def r_column_order(terms) -> list[int]:
    """Within each interaction, formulae varies the *last* component fastest and R's
    ``model.matrix`` the *first*; the permutation of a term's columns into R's order."""
    out, start = [], 0
    for term in terms:
        comps = getattr(term, "components", [])
        sizes = [len(c.labels) for c in comps] if len(comps) > 1 else [len(term.labels)]
        n = int(np.prod(sizes))
        r_to_formulae = np.ravel_multi_index(np.unravel_index(np.arange(n), sizes, order="F"),
                                             sizes)
        out.extend(start + r_to_formulae)
        start += n
    return out
