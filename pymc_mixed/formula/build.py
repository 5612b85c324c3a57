"""Turn a formula and a data frame into a :class:`~pymc_mixed.spec.ModelSpec`.

Everything that can be wrong with the input is caught here, with a message that names the
column, term or level at fault: missing columns, missing values (dropped, with a count),
grouping factors with one level, non-numeric responses, aliased fixed-effects columns
(dropped, with their names).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from ..families import get_family
from ..spec import ModelSpec, ReTerm
from .parse import parse_formula, split_top_level

__all__ = ["build_spec", "fixed_design", "group_labels", "lme4_name"]

# Functions a formula may call without a prefix, as in R.
_NAMESPACE = {
    "np": np,
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
}
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)(?![\w.]|\s*\()")
_RESERVED = {"I", "C", "np", "True", "False", "None", "offset", "cbind", "p"} | set(_NAMESPACE)
_DUMMY = "pmmresponse"


class FormulaError(ValueError):
    """The formula does not fit the data (missing column, bad term, ...)."""


def _identifiers(expr: str) -> list[str]:
    # String literals (in C(x, levels=...) say) are not column names.
    expr = re.sub(r"(['\"]).*?\1", "", expr)
    return [m for m in _IDENT.findall(expr) if m not in _RESERVED and not m[0].isdigit()]


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

    def __init__(self, rhs: str, matrix: np.ndarray, names: list[str], formulae_matrix=None):
        self.rhs = rhs
        self.matrix = matrix
        self.names = names
        self._fm = formulae_matrix

    def on(self, newdata: pd.DataFrame) -> np.ndarray:
        """The same columns evaluated on ``newdata`` (same levels, same transformations)."""
        if self._fm is None:
            return np.ones((len(newdata), len(self.names))) if self.names else \
                np.zeros((len(newdata), 0))
        frame = newdata.copy(deep=False)
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.CategoricalDtype):
                frame[col] = frame[col].astype(str)
        return np.asarray(self._fm.evaluate_new_data(frame).design_matrix, dtype=float)


def contr_poly(k: int) -> np.ndarray:
    """R's ``contr.poly(k)``: orthonormal polynomial contrasts on the scores 1..k (k x k-1)."""
    x = np.arange(1, k + 1, dtype=float)
    X = np.vander(x - x.mean(), k, increasing=True)
    Q, R = np.linalg.qr(X)
    raw = Q * np.diag(R)  # sign-free: a flipped column of Q flips its diagonal of R too
    Z = raw / np.linalg.norm(raw, axis=0)
    return Z[:, 1:]


def _poly_names(col: str, k: int) -> list[str]:
    return [f"{col}{('.L', '.Q', '.C')[d - 1] if d <= 3 else f'^{d}'}" for d in range(1, k)]


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
                names.extend(_poly_names(col, len(levels)))
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


def _design(rhs: str, data: pd.DataFrame) -> Design:
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

    ordered = [c for c in _identifiers(rhs) if c in data.columns
               and isinstance(data[c].dtype, pd.CategoricalDtype) and data[c].cat.ordered]
    if ordered:
        warnings.warn(f"ordered factor(s) {', '.join(ordered)} get treatment contrasts in "
                      f"{rhs!r} (R would use polynomial contrasts; these are used only for "
                      "plain main effects); convert them to unordered categoricals to silence "
                      "this", stacklevel=4)

    frame = _ordered_categoricals(data).assign(**{_DUMMY: 0.0})
    dm = formulae.design_matrices(f"{_DUMMY} ~ {rhs}", frame, na_action="pass",
                                  extra_namespace=_NAMESPACE)
    if dm.common is None:
        return Design(rhs, np.zeros((len(data), 0)), [])
    labels = [lme4_name(lab) for term in dm.common.terms.values() for lab in term.labels]
    return Design(rhs, np.asarray(dm.common.design_matrix, dtype=float), labels, dm.common)


def fixed_design(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The fixed-effects model matrix of ``rhs`` on ``data``, with lme4 column names."""
    d = _design(rhs, data)
    return d.matrix, d.names


def _independent_columns(X: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices of columns kept when later columns that are linear combinations of earlier
    ones are dropped (lme4 keeps the earlier columns too)."""
    keep, basis = [], []
    scale = np.linalg.norm(X, axis=0)
    for j in range(X.shape[1]):
        v = X[:, j].copy()
        if scale[j] == 0:
            continue
        for b in basis:
            v -= (b @ v) * b
        # twice is enough (Kahan): re-orthogonalize once for numerical safety
        for b in basis:
            v -= (b @ v) * b
        nv = np.linalg.norm(v)
        if nv > tol * scale[j]:
            keep.append(j)
            basis.append(v / nv)
    return np.array(keep, dtype=int)


def _factor(data: pd.DataFrame, group: str) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of a grouping factor; ``a:b`` is the interaction, first factor
    varying fastest as in R's ``interaction()``; unused levels are dropped (lme4 does too)."""
    parts = [g.strip() for g in group.split(":")]
    codes_list, labels_list = [], []
    for col in parts:
        s = data[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cat = s.cat.remove_unused_categories()
            codes_list.append(cat.cat.codes.to_numpy())
            labels_list.append([str(c) for c in cat.cat.categories])
        else:
            uniq, codes = np.unique(s.to_numpy(), return_inverse=True)
            codes_list.append(codes)
            labels_list.append([str(u) for u in uniq])
    if len(parts) == 1:
        return codes_list[0].astype(np.int64), labels_list[0]
    # combined key with the first factor fastest: order by (last, ..., first)
    key = np.zeros(len(data), dtype=np.int64)
    for codes, labels in zip(reversed(codes_list), reversed(labels_list)):
        key = key * len(labels) + codes
    used, refs = np.unique(key, return_inverse=True)
    names = []
    for k in used:
        digits = []
        for labels in labels_list:  # the first factor is the lowest digit of the key
            digits.append(labels[k % len(labels)])
            k //= len(labels)
        names.append(":".join(digits))
    return refs.astype(np.int64), names


def group_labels(data: pd.DataFrame, group: str) -> np.ndarray:
    """The level label of each row for grouping factor ``group`` (``a:b`` joins with ``:``),
    spelled as :func:`_factor` spells levels, so new data can be matched to fitted levels."""
    parts = [g.strip() for g in group.split(":")]
    missing = [c for c in parts if c not in data.columns]
    if missing:
        raise FormulaError(f"grouping factor column {missing[0]!r} not found in new data")
    labels = data[parts[0]].astype(str).to_numpy(dtype=object)
    for col in parts[1:]:
        labels = labels + ":" + data[col].astype(str).to_numpy(dtype=object)
    return labels


def _response(expr: str, data: pd.DataFrame):
    """Evaluate the response: a column, ``cbind(successes, failures)``, ``p(successes, trials)``
    or an arithmetic expression of columns (``incidence / size``). Returns (y, trials)."""
    expr = expr.strip()
    m = re.fullmatch(r"(cbind|p)\s*\((.*)\)", expr)
    if m:
        args = split_top_level(m.group(2), ",")
        if len(args) != 2:
            raise FormulaError(f"{m.group(1)}() in the response takes two arguments: {expr!r}")
        a = _eval(args[0], data)
        b = _eval(args[1], data)
        trials = a + b if m.group(1) == "cbind" else b
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(trials > 0, a / np.where(trials > 0, trials, 1), 0.0)
        return y, trials
    if expr in data.columns:
        return data[expr], None
    return _eval(expr, data), None


def _eval(expr: str, data: pd.DataFrame) -> np.ndarray:
    expr = expr.strip()
    if expr in data.columns:
        col = data[expr]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise FormulaError(f"column {expr!r} must be numeric in {expr!r}")
        return col.to_numpy(dtype=float)
    env = {c: data[c].to_numpy() for c in data.columns if c.isidentifier()}
    try:
        return np.asarray(eval(expr, {"__builtins__": {}, **_NAMESPACE}, env), dtype=float)
    except Exception as err:  # noqa: BLE001 - report the expression, not Python internals
        raise FormulaError(f"cannot evaluate {expr!r} on the data: {err}") from None


def _column_or_array(value, data: pd.DataFrame, what: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in data.columns:
            raise FormulaError(f"{what} column {value!r} not found in data")
        return data[value].to_numpy(dtype=float)
    arr = np.asarray(value, dtype=float)
    if arr.shape != (len(data),):
        raise FormulaError(f"{what} must have one value per row of data ({len(data)}), "
                           f"got shape {arr.shape}")
    return arr


def build_spec(formula: str, data: pd.DataFrame, family="gaussian", link: str | None = None,
               weights=None, offset=None) -> ModelSpec:
    """Read ``formula`` against ``data`` and return the numeric :class:`ModelSpec`.

    Rows with a missing value in any variable the model uses are dropped, with a warning that
    gives the count (``spec.n_dropped``). Fixed-effects columns that are linear combinations of
    earlier ones are dropped with a warning naming them (``spec.aliased``).
    """
    fam = get_family(family, link)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise FormulaError("data has no rows")
    parsed = parse_formula(formula)
    if not parsed.bars:
        raise FormulaError(
            f"formula {formula!r} has no random-effects terms such as (1 | group); "
            "a model without them is an ordinary (generalized) linear model"
        )

    # -- which columns does the model use? every one must exist -----------------------------
    used: list[str] = []
    pieces = [("response", parsed.response), ("fixed effects", parsed.fixed)]
    pieces += [(f"random-effects term {b.source}", b.lhs) for b in parsed.bars]
    for where, expr in pieces:
        for name in _identifiers(expr):
            if name not in data.columns:
                raise FormulaError(f"column {name!r} (in the {where} {expr!r}) not found in "
                                   f"data; columns are: {', '.join(map(str, data.columns))}")
            used.append(name)
    for b in parsed.bars:
        for col in b.group.split(":"):
            if col not in data.columns:
                raise FormulaError(f"grouping factor {col!r} (in {b.source}) not found in data; "
                                   f"columns are: {', '.join(map(str, data.columns))}")
            used.append(col)
    for extra in (weights, offset):
        if isinstance(extra, str):
            used.append(extra)
    used = list(dict.fromkeys(used))

    # -- missing values: drop, count, say so -------------------------------------------------
    frame = data.loc[:, [c for c in used if c in data.columns]]
    bad = frame.isna().any(axis=1).to_numpy().copy()
    for col in frame.columns:
        if pd.api.types.is_float_dtype(frame[col]):  # inf is as unusable as NaN
            bad |= ~np.isfinite(frame[col].to_numpy(dtype=float, na_value=np.nan))
    n_dropped = int(bad.sum())
    if n_dropped:
        cols = [c for c in frame.columns if frame[c].isna().any()]
        warnings.warn(f"dropped {n_dropped} of {len(data)} rows with missing values "
                      f"(in {', '.join(cols)})", stacklevel=3)
        data = data.loc[~bad].reset_index(drop=True)
        if len(data) == 0:
            raise FormulaError("no rows left after dropping rows with missing values")
    else:
        data = data.reset_index(drop=True)

    # -- response -------------------------------------------------------------------------------
    y_raw, trials = _response(parsed.response, data)
    y = fam.validate(y_raw, parsed.response) if trials is None or not hasattr(
        fam, "validate_trials") else fam.validate_trials(y_raw, trials, parsed.response)

    # -- fixed effects ----------------------------------------------------------------------------
    fixed = _design(parsed.fixed, data)
    X, xnames = fixed.matrix, fixed.names
    aliased: list[str] = []
    keep = np.arange(X.shape[1])
    if X.shape[1]:
        keep = _independent_columns(X)
        if len(keep) < X.shape[1]:
            aliased = [xnames[j] for j in range(X.shape[1]) if j not in set(keep)]
            warnings.warn(f"fixed-effect model matrix is rank deficient: dropping "
                          f"{len(aliased)} column(s) {', '.join(aliased)}", stacklevel=3)
            X = X[:, keep]
            xnames = [xnames[j] for j in keep]

    # -- random effects ---------------------------------------------------------------------------
    reterms = []
    for b in parsed.bars:
        zd = _design(b.lhs, data)
        z, cnames = zd.matrix, zd.names
        if z.shape[1] == 0:
            raise FormulaError(f"random-effects term {b.source} has no columns")
        refs, levels = _factor(data, b.group)
        if len(levels) < 2:
            raise FormulaError(f"grouping factor {b.group!r} (in {b.source}) has only "
                               f"{len(levels)} level; it needs at least 2 to estimate a variance")
        reterms.append(ReTerm(group=b.group, refs=refs, levels=levels, z=z, cnames=cnames,
                              design=zd))
    # lme4 orders terms by decreasing number of levels (stable), and so does theta
    reterms.sort(key=lambda t: -t.nlevels)
    n = len(y)
    if fam.name == "gaussian":
        for t in reterms:
            if t.nlevels >= n:
                raise FormulaError(
                    f"grouping factor {t.group!r} has {t.nlevels} levels for {n} observations: "
                    "its variance cannot be told apart from the residual variance")
            if t.q >= n:
                raise FormulaError(
                    f"the term ({' + '.join(t.cnames)} | {t.group}) has {t.q} random effects "
                    f"for {n} observations: the model is unidentifiable")

    w = _column_or_array(weights, data, "weights")
    if w is not None and (np.any(~np.isfinite(w)) or np.any(w < 0)):
        raise FormulaError("weights must be finite and non-negative")
    off = _column_or_array(offset, data, "offset")
    return ModelSpec(formula=formula, response=parsed.response, y=y, X=X, xnames=xnames,
                     reterms=reterms, family=fam, weights=w, offset=off, data=data,
                     n_dropped=n_dropped, aliased=aliased, fixed_rhs=parsed.fixed,
                     trials=trials, fixed_design=fixed, fixed_keep=keep)
