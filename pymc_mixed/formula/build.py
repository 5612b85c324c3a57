"""Turn a formula and a data frame into a :class:`~pymc_mixed.spec.ModelSpec`.

Everything that can be wrong with the input is caught here, with a message that names the
column, term or level at fault: missing or duplicated columns, date columns, missing values and
non-finite transformed values (rows dropped, with a count), grouping factors with one level,
non-numeric responses, aliased fixed-effects columns (dropped, with their names). Every
expression passes the whitelist of :mod:`.expr` first: formulas are data, never code.
"""

from __future__ import annotations

import ast
import datetime as _dt
import warnings

import numpy as np
import pandas as pd

from ..families import get_family
from ..spec import ModelSpec, ReTerm
from .dot import expand_dot, has_dot
from .design import _design, check_terms, fixed_design, independent_columns, lme4_name
from .errors import FormulaError
from .expr import FACTOR_FUNCTIONS, Expr, evaluate, parse_expression, rhs_atoms
from .factors import factor_codes, group_labels, level_index, lme4_order
from .offsets import OffsetDesign, argument_values, split_offsets
from .parse import parse_formula

__all__ = ["build_spec", "fixed_design", "group_labels", "level_index", "lme4_name"]


def _sub(expr: Expr, node) -> Expr:
    """The checked sub-expression ``node`` of ``expr`` (an argument of cbind/p)."""
    return Expr(text=ast.get_source_segment(expr.code_text, node), code_text=expr.code_text,
                tree=ast.Expression(body=node), names=expr.names, columns=expr.columns)


def _response(expr: Expr, data: pd.DataFrame):
    """Evaluate the response: a column, ``cbind(successes, failures)``, ``p(successes, trials)``
    or an arithmetic expression of columns (``incidence / size``). Returns (y, trials)."""
    call = expr.call
    if call in ("cbind", "p"):
        a, b = (evaluate(_sub(expr, n), data) for n in expr.tree.body.args)
        trials = a + b if call == "cbind" else b
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(trials > 0, a / np.where(trials > 0, trials, 1), 0.0)
        return y, trials
    if isinstance(expr.tree.body, ast.Name):
        return data[expr.columns[0]], None
    return evaluate(expr, data), None


def _check_frame(data) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise FormulaError("data has no rows")


def _is_dates(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
        return True
    if s.dtype == object:
        first = s.dropna().head(1).tolist()
        return bool(first) and isinstance(first[0], (_dt.date, _dt.datetime, pd.Timestamp))
    return False


def _check_columns(parts, data: pd.DataFrame) -> None:
    """Every column a part reads exists, once, and is not a date."""
    dup = set(data.columns[data.columns.duplicated()])
    for where, cols, dates_ok in parts:
        for col in cols:
            if col not in data.columns:
                what = (f"grouping factor {col!r} (in {where[19:]})"
                        if where.startswith("grouping factor of ") else
                        f"column {col!r} (in the {where})")
                raise FormulaError(f"{what} not found in data; columns are: "
                                   f"{', '.join(map(str, data.columns))}")
            if col in dup:
                raise FormulaError(f"data has more than one column named {col!r} (used in the "
                                   f"{where}); rename or drop the duplicates")
            if not dates_ok and _is_dates(data[col]):
                raise FormulaError(
                    f"column {col!r} (in the {where}) holds dates or times, which a formula "
                    f"cannot code; convert it, e.g. data['{col}_days'] = (data['{col}'] - "
                    f"data['{col}'].min()).dt.days for a trend, or "
                    f"data['{col}'].astype(str) for one level per date")


def _drop_rows(data: pd.DataFrame, bad: np.ndarray, why: str, n_total: int):
    n = int(bad.sum())
    if n:
        warnings.warn(f"dropped {n} of {n_total} rows {why}", stacklevel=4)
        data = data.loc[~bad]
        if len(data) == 0:
            raise FormulaError(f"no rows left after dropping rows {why}")
    return data.reset_index(drop=True), n


def _missing_rows(data: pd.DataFrame, used: list[str]) -> np.ndarray:
    frame = data.loc[:, used]
    bad = frame.isna().any(axis=1).to_numpy().copy()
    for col in frame.columns:
        if pd.api.types.is_float_dtype(frame[col]):  # inf is as unusable as NaN
            bad |= ~np.isfinite(frame[col].to_numpy(dtype=float, na_value=np.nan))
    return bad


def _nonfinite_rows(checks: list[tuple[str, Expr]], data: pd.DataFrame):
    """Rows where a transformed value (``log(x)`` at ``x = 0``) is not finite, and which
    expressions made them so; plain columns were already handled as missing values."""
    bad, culprits = np.zeros(len(data), dtype=bool), []
    for where, expr in checks:
        v = evaluate(expr, data).reshape(len(data), -1)
        rows = ~np.isfinite(v).all(axis=1)
        if rows.any():
            culprits.append(f"{expr.text} in the {where}: {int(rows.sum())}")
            bad |= rows
    return bad, culprits


def _transform_checks(response: Expr, rhs_parts, columns) -> list[tuple[str, Expr]]:
    """The expressions whose values must be finite: response pieces and transformed terms."""
    if response.call in ("cbind", "p"):
        checks = [("response", _sub(response, n)) for n in response.tree.body.args]
    else:
        checks = [] if isinstance(response.tree.body, ast.Name) else [("response", response)]
    for where, rhs in rhs_parts:
        for atom in rhs_atoms(rhs):
            if atom.replace(".", "").isdigit():
                continue
            e = parse_expression(atom, columns, allow=("factor",))
            if not isinstance(e.tree.body, ast.Name) and e.call not in FACTOR_FUNCTIONS:
                checks.append((where, e))
    return checks


def _full_length(value, data: pd.DataFrame, what: str):
    """An array argument (weights, offset) checked against the rows of the original data."""
    if value is None or isinstance(value, str):
        return value
    return argument_values(value, data) if what == "offset" else _array(value, data, what)


def _array(value, data: pd.DataFrame, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise FormulaError(f"{what} must be numbers, one per row of data") from None
    if arr.shape != (len(data),):
        raise FormulaError(f"{what} must have one value per row of data ({len(data)}), "
                           f"got shape {arr.shape}")
    return arr


def _reterms(parsed, data: pd.DataFrame) -> list[ReTerm]:
    reterms = []
    for b in parsed.bars:
        zd = _design(b.lhs, data, where=f"random-effects term {b.source}")
        if zd.matrix.shape[1] == 0:
            raise FormulaError(f"random-effects term {b.source} has no columns")
        refs, levels, keys = factor_codes(data, b.group)
        if len(levels) < 2:
            raise FormulaError(f"grouping factor {b.group!r} (in {b.source}) has only "
                               f"{len(levels)} level; it needs at least 2 to estimate a variance")
        reterms.append(ReTerm(group=b.group, refs=refs, levels=levels, z=zd.matrix,
                              cnames=zd.names, design=zd, level_keys=keys))
    return lme4_order(reterms)  # theta follows this order, as lme4's getME(fit, "theta")


def _identifiable(reterms, n: int) -> None:
    for t in reterms:
        if t.nlevels >= n:
            raise FormulaError(
                f"grouping factor {t.group!r} has {t.nlevels} levels for {n} observations: "
                "its variance cannot be told apart from the residual variance")
        if t.q >= n:
            raise FormulaError(
                f"the term ({' + '.join(t.cnames)} | {t.group}) has {t.q} random effects "
                f"for {n} observations: the model is unidentifiable")


def _read_formula(formula: str, data: pd.DataFrame):
    """Parse and check every part of the formula; return the pieces and the columns used."""
    try:
        parsed = parse_formula(formula)
    except FormulaError:
        raise
    except ValueError as err:
        raise FormulaError(str(err)) from None
    if not parsed.bars:
        raise FormulaError(
            f"formula {formula!r} has no random-effects terms such as (1 | group); "
            "a model without them is an ordinary (generalized) linear model")
    cols = data.columns
    response = parse_expression(parsed.response, cols, allow=("response", "string"))
    for b in parsed.bars:
        if has_dot(b.lhs) or has_dot(b.group):
            raise FormulaError(f"'.' in the random-effects term {b.source} is not supported; "
                               "name its columns")
    # R's '.': every column not on the left-hand side (the response's columns)
    fixed = expand_dot(parsed.fixed, cols, response.columns, formula)
    fixed_rhs, offsets = split_offsets(fixed, cols)
    parts = [("response", response.columns, False),
             ("fixed effects", check_terms(fixed_rhs, cols, "fixed effects"), False)]
    parts += [("offset", e.columns, False) for e in offsets]
    for b in parsed.bars:
        if "offset(" in b.lhs.replace(" ", ""):
            raise FormulaError(f"offset() belongs in the fixed part, not in {b.source}")
        where = f"random-effects term {b.source}"
        parts.append((where, check_terms(b.lhs, cols, where), False))
        parts.append((f"grouping factor of {b.source}",
                      [g.strip() for g in b.group.split(":")], True))
    return parsed, response, fixed_rhs, offsets, parts


def _fixed_part(fixed_rhs: str, data: pd.DataFrame):
    """The fixed-effects design with aliased columns (linear combinations of earlier ones)
    dropped, with a warning naming them."""
    fixed = _design(fixed_rhs, data)
    X, xnames = fixed.matrix, fixed.names
    aliased: list[str] = []
    cols_kept = np.arange(X.shape[1])
    if X.shape[1]:
        cols_kept = independent_columns(X)
        if len(cols_kept) < X.shape[1]:
            aliased = [xnames[j] for j in range(X.shape[1]) if j not in set(cols_kept)]
            warnings.warn(f"fixed-effect model matrix is rank deficient: dropping "
                          f"{len(aliased)} column(s) {', '.join(aliased)}", stacklevel=4)
            X, xnames = X[:, cols_kept], [xnames[j] for j in cols_kept]
    return fixed, X, xnames, aliased, cols_kept


def _offset(offsets: list[Expr], arg, data: pd.DataFrame):
    """The total offset of the fit (formula terms plus argument) and how to rebuild it."""
    if not offsets and arg is None:
        return None, None
    odesign = OffsetDesign(offsets, None if arg is None else arg if isinstance(arg, str)
                           else "array")
    off = odesign.formula_part(data) + (0.0 if arg is None else argument_values(arg, data))
    return off, odesign


def build_spec(formula: str, data: pd.DataFrame, family="gaussian", link: str | None = None,
               weights=None, offset=None) -> ModelSpec:
    """Read ``formula`` against ``data`` and return the numeric :class:`ModelSpec`.

    Rows with a missing value in any variable the model uses, or a non-finite transformed
    value (``log(x)`` at ``x = 0``), are dropped with a warning that gives the count
    (``spec.n_dropped``). Fixed-effects columns that are linear combinations of earlier ones
    are dropped with a warning naming them (``spec.aliased``). ``offset(expr)`` terms and the
    ``offset`` argument add up to the offset (coefficient 1, as in lme4).
    """
    fam = get_family(family, link)
    _check_frame(data)
    data_name = data.attrs.get("name") or f"<DataFrame {data.shape[0]} x {data.shape[1]}>"
    parsed, response, fixed_rhs, offsets, parts = _read_formula(formula, data)
    parts += [(what, [v], False) for what, v in (("weights", weights), ("offset", offset))
              if isinstance(v, str)]
    _check_columns(parts, data)
    used = list(dict.fromkeys(c for _, cols, _ in parts for c in cols))
    n_total = len(data)
    extras = {"weights": _full_length(weights, data, "weights"),
              "offset": _full_length(offset, data, "offset")}

    # -- missing values, then non-finite transformed values: drop, count, say so --------------
    bad = _missing_rows(data, used)
    labels = data.index  # the rows' labels, kept in the spec (anova checks them)
    cols = [c for c in used if data[c].isna().any()]
    keep = ~bad
    data, n_dropped = _drop_rows(data, bad, f"with missing values (in {', '.join(cols)})",
                                 n_total)
    checks = _transform_checks(response, [("fixed effects", fixed_rhs)] + [
        (f"random-effects term {b.source}", b.lhs) for b in parsed.bars], data.columns)
    bad2, culprits = _nonfinite_rows(checks, data)
    data, n2 = _drop_rows(data, bad2, "where a transformed value is not finite ("
                          + "; ".join(culprits) + ")", n_total)
    keep[np.flatnonzero(keep)[bad2]] = False
    extras = {k: v[keep] if isinstance(v, np.ndarray) else v for k, v in extras.items()}

    y_raw, trials = _response(response, data)
    y = fam.validate(y_raw, parsed.response) if trials is None or not hasattr(
        fam, "validate_trials") else fam.validate_trials(y_raw, trials, parsed.response)

    fixed, X, xnames, aliased, cols_kept = _fixed_part(fixed_rhs, data)
    reterms = _reterms(parsed, data)
    if fam.name == "gaussian":
        _identifiable(reterms, len(y))

    w = extras["weights"]
    w = data[w].to_numpy(dtype=float) if isinstance(w, str) else w
    if w is not None and (np.any(~np.isfinite(w)) or np.any(w < 0)):
        raise FormulaError("weights must be finite and non-negative")
    off, odesign = _offset(offsets, extras["offset"], data)
    return ModelSpec(formula=formula, response=parsed.response, y=y, X=X, xnames=xnames,
                     reterms=reterms, family=fam, weights=w, offset=off, data=data,
                     n_dropped=n_dropped + n2, aliased=aliased, fixed_rhs=fixed_rhs,
                     trials=trials, fixed_design=fixed, fixed_keep=cols_kept,
                     offset_design=odesign, offset_arg=extras["offset"],
                     data_name=data_name, rows=labels[keep])
