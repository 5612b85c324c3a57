"""Model matrices of formula right-hand sides, as R's ``model.matrix`` builds them.

Plain main effects are built here directly (:class:`SimpleDesign`: importing formulae costs a
quarter of a second, more than fitting most models); everything else goes to formulae, but only
after every operand has passed the whitelist of :mod:`.expr`, and with an evaluation environment
that holds only the whitelisted functions, so formulae can never resolve a user's name to code.
Columns come back in R's term order: main effects before two-way interactions, and so on.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .contrasts import code_ordered, contr_poly, poly_encodings, poly_suffixes, r_column_order
from .errors import FormulaError
from .expr import R_SCALE, parse_expression, rhs_atoms, safe_namespace

__all__ = ["Design", "SimpleDesign", "contr_poly", "fixed_design", "lme4_name", "check_terms",
           "independent_columns"]

_DUMMY = "pmmresponse"
_NUMBER = re.compile(r"\d+(\.\d*)?")


def check_terms(rhs: str, columns, where: str) -> list[str]:
    """Check every operand of a right-hand side against the whitelist; return the columns read.

    Raises :class:`FormulaError` naming the refused token (and where it was) before formulae or
    anything else sees the text.
    """
    used = []
    for atom in rhs_atoms(rhs):
        if _NUMBER.fullmatch(atom):
            continue
        try:
            expr = parse_expression(atom, columns, allow=("factor",))
        except FormulaError as err:
            raise FormulaError(f"{err} (in the {where})") from None
        used.extend(expr.columns)
    return list(dict.fromkeys(used))


def lme4_name(label: str) -> str:
    """formulae's column label -> lme4's: ``Intercept`` -> ``(Intercept)``, ``f[b]`` -> ``fb``."""
    if label == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[([^\]]*)\]", r"\1", label)


def _ordered_categoricals(data: pd.DataFrame) -> pd.DataFrame:
    """formulae sorts the levels of unordered categoricals alphabetically; R keeps the factor's
    own order (its first level is the reference). Handing formulae an ordered categorical
    keeps R's order. Unused levels are dropped, as lme4's rank check would drop their columns."""
    frame = data.copy(deep=False)
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            cat = frame[col].cat.remove_unused_categories()
            frame[col] = cat.cat.as_ordered()
    return frame


class Design:
    """A model matrix and how to rebuild it on new data (for ``predict``)."""

    def __init__(self, rhs: str, matrix: np.ndarray, names: list[str], formulae_matrix=None,
                 order=None):
        self.rhs = rhs
        self.matrix = matrix
        self.names = names
        self._fm = formulae_matrix
        self._order = order  # column permutation into R's term order

    def on(self, newdata: pd.DataFrame) -> np.ndarray:
        """The same columns evaluated on ``newdata`` (same levels, same transformations)."""
        if self._fm is None:
            return np.ones((len(newdata), len(self.names))) if self.names else \
                np.zeros((len(newdata), 0))
        frame = newdata.copy(deep=False)
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
        try:
            X = np.asarray(self._fm.evaluate_new_data(frame).design_matrix, dtype=float)
        except Exception as err:  # noqa: BLE001 - one line naming the terms, not a traceback
            raise FormulaError(f"cannot evaluate {self.rhs!r} on new data: "
                               f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
        return X if self._order is None else X[:, self._order]


class SimpleDesign(Design):
    """Main effects of plain columns, built as R's ``model.matrix`` builds them.

    Numeric columns enter as they are; a factor (categorical, text, logical) enters through
    contrasts when the model has an intercept or an earlier factor, else with one indicator
    per level. The contrasts are R's defaults: treatment (first level the reference) for
    unordered factors, orthonormal polynomials (``.L``, ``.Q``, ``.C``, ``^4`` ...) for
    ordered ones. Formulae gives the same matrix; this
    path exists because importing formulae costs a quarter of a second (it loads
    scipy.interpolate), more than fitting most models.
    """

    def __init__(self, rhs, columns, intercept, data):
        self.columns = []  # (name, levels or None, full coding, polynomial contrasts)
        spanned = intercept
        for col in columns:
            s = data[col]
            ordered = isinstance(s.dtype, pd.CategoricalDtype) and bool(s.cat.ordered)
            if pd.api.types.is_bool_dtype(s):
                levels = [False, True]
            elif isinstance(s.dtype, pd.CategoricalDtype):
                levels = list(s.cat.remove_unused_categories().cat.categories)
            elif pd.api.types.is_numeric_dtype(s):
                levels = None
            else:
                levels = sorted(pd.unique(s))
            full = levels is not None and not spanned
            self.columns.append((col, levels, full, ordered and not full))
            spanned = spanned or levels is not None
        self.intercept = intercept
        matrix, names = self._build(data)
        super().__init__(rhs, matrix, names)

    def _build(self, data):
        missing = [c for c, *_ in self.columns if c not in data.columns]
        if missing:
            raise FormulaError(f"column {missing[0]!r} of {self.rhs!r} not found in new data")
        cols, names = [], []
        if self.intercept:
            cols.append(np.ones(len(data)))
            names.append("(Intercept)")
        for col, levels, full, poly in self.columns:
            s = data[col]
            if levels is None:
                cols.append(s.to_numpy(dtype=float))
                names.append(col)
                continue
            values = s.to_numpy()
            unknown = set(pd.unique(s)) - set(levels)
            if unknown:
                raise FormulaError(f"levels {sorted(map(str, unknown))[:5]} of {col!r} were not "
                                   "in the data the model was fitted to")
            if poly:
                codes = pd.Categorical(values, categories=levels).codes
                C = contr_poly(len(levels))[codes]
                cols.extend(C.T)
                names.extend(col + sfx for sfx in poly_suffixes(len(levels)))
                continue
            for lev in levels if full else levels[1:]:
                cols.append((values == lev).astype(float))
                names.append(f"{col}{'TRUE' if lev is True else lev}")
        matrix = np.column_stack(cols) if cols else np.zeros((len(data), 0))
        return matrix, names

    def on(self, newdata: pd.DataFrame) -> np.ndarray:
        return self._build(newdata)[0]


def _simple_design(rhs: str, data: pd.DataFrame) -> Design | None:
    """A :class:`SimpleDesign` when ``rhs`` is only an intercept and plain column names."""
    intercept, columns = True, []
    for term in (t.strip() for t in rhs.replace("-1", "+ 0").split("+")):
        if term in ("", "1"):
            continue
        if term == "0":
            intercept = False
        elif re.fullmatch(r"[A-Za-z_][\w.]*", term) and term in data.columns:
            columns.append(term)
        else:
            return None
    if len(set(columns)) != len(columns):
        return None
    return SimpleDesign(rhs, columns, intercept, data)


def _design(rhs: str, data: pd.DataFrame, where: str = "fixed effects") -> Design:
    """Model matrix of a right-hand side (``"1 + Days"``) with lme4 column names."""
    rhs = rhs.strip()
    if rhs in ("0", "-1", "0 + 0"):
        return Design(rhs, np.zeros((len(data), 0)), [])
    if rhs == "1":  # the common random intercept: no need to involve formulae
        return Design(rhs, np.ones((len(data), 1)), ["(Intercept)"])
    simple = _simple_design(rhs, data)
    if simple is not None:
        return simple
    import formulae
    from formulae.environment import Environment

    used = check_terms(rhs, data.columns, where)
    text = re.sub(r"(?<![\w.`])factor\s*\(", "C(", rhs)  # R's factor(x) is formulae's C(x)
    text = re.sub(r"(?<![\w.`])scale\s*\(", f"{R_SCALE}(", text)  # R's scale (n - 1 sd)
    text = text.replace("^", "**")  # R's ^: power of terms at formula level, of numbers in I()
    text, back = code_ordered(text, data, used)  # ordered factors: R's contr.poly
    frame = _ordered_categoricals(data).assign(**{_DUMMY: 0.0})
    env = Environment([{**safe_namespace(), **(poly_encodings() if back else {})}])
    try:
        dm = formulae.design_matrices(f"{_DUMMY} ~ {text}", frame, na_action="pass", env=env)
    except Exception as err:  # noqa: BLE001 - one line naming the terms, not a traceback
        raise FormulaError(f"cannot build the model matrix of {rhs!r} (in the {where}): "
                           f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    if dm.common is None:
        return Design(rhs, np.zeros((len(data), 0)), [])
    # R orders terms by their number of variables (main effects, then 2-way, ...), stably,
    # and varies an interaction's first factor fastest (formulae: the last)
    terms = sorted(dm.common.terms.items(), key=lambda kv: len(getattr(kv[1], "components", [])))
    order = np.array([dm.common.slices[name].start + j for name, term in terms
                      for j in r_column_order([term])], dtype=int)
    formulae_labels = [lab for _, term in terms for lab in term.labels]
    starts = np.cumsum([0] + [len(term.labels) for _, term in terms])
    labels = [formulae_labels[starts[k] + j] for k, (_, term) in enumerate(terms)
              for j in r_column_order([term])]
    labels = [_r_label(_unpoly(lab, back)) for lab in labels]
    if re.search(r"(?<![\w.`])factor\s*\(", rhs) and "C(" not in rhs:
        labels = [re.sub(r"(?<![\w.])C\(", "factor(", lab) for lab in labels]
    X = np.asarray(dm.common.design_matrix, dtype=float)[:, order]
    return Design(rhs, X, labels, dm.common, order)


def _unpoly(label: str, back: dict) -> str:
    """formulae's ``C(o, pmm_poly)`` spelling of an ordered factor -> the user's ``o``."""
    for spelled, name in back.items():
        label = label.replace(spelled, name)
    return label


def _r_label(label: str) -> str:
    """formulae's label -> R's: ``poly(x, 2)0`` -> ``poly(x, 2)1``, ``pmm_rscale(x)`` ->
    ``scale(x)``, and :func:`lme4_name`'s spelling of levels."""
    label = lme4_name(label.replace(f"{R_SCALE}(", "scale("))
    label = label.replace(" ** ", "^").replace("**", "^")
    return re.sub(r"(poly\([^()]*\))(\d+)", lambda m: f"{m.group(1)}{int(m.group(2)) + 1}",
                  label)


def fixed_design(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The fixed-effects model matrix of ``rhs`` on ``data``, with lme4 column names."""
    d = _design(rhs, data)
    return d.matrix, d.names


def independent_columns(X: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices of columns kept when later columns that are linear combinations of earlier
    ones are dropped (lme4 keeps the earlier columns too).

    Column ``j`` is aliased when its distance to the span of the columns before it is below
    ``tol * |X_j|``. A Householder QR without pivoting gives exactly these distances as
    ``|R_jj|`` (the span of all earlier columns equals that of the kept ones), in one LAPACK
    call: O(n p^2) flops in BLAS, where a column-by-column Gram-Schmidt in Python took 40 s for
    120 columns of 20,000 rows.
    """
    from scipy.linalg import qr

    from ..linalg.threads import small_qr

    scale = np.linalg.norm(X, axis=0)
    if X.shape[1] <= 40:  # few columns: Gram-Schmidt, no LAPACK threads (see small_qr)
        d = np.abs(np.diagonal(small_qr(X)[1]))
        return np.flatnonzero((scale > 0) & (d > tol * scale)).astype(int)
    if X.shape[0] < X.shape[1]:  # R's diagonal stops at n: pad with zero rows (same span)
        X = np.vstack([X, np.zeros((X.shape[1] - X.shape[0], X.shape[1]))])
    R = qr(np.asarray(X, dtype=float), mode="r", overwrite_a=False, check_finite=False)[0]
    d = np.abs(np.diagonal(R))
    return np.flatnonzero((scale > 0) & (d > tol * scale)).astype(int)
