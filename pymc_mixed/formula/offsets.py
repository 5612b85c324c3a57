"""Offsets: ``offset(expr)`` terms of the fixed part and the ``offset=`` argument.

As in lme4, an offset enters the linear predictor with its coefficient fixed at 1; it is never
a column of X. Offsets from the formula and the argument add up. :class:`OffsetDesign` keeps the
checked expressions so ``predict`` re-evaluates them on new data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import FormulaError
from .expr import Expr, evaluate, parse_expression
from .parse import split_top_level

__all__ = ["OffsetDesign", "split_offsets"]


def split_offsets(rhs: str, columns) -> tuple[str, list[Expr]]:
    """Remove the ``offset(...)`` terms from a fixed-effects right side.

    Returns the remaining right side (``"1"`` if nothing but the intercept is left) and the
    checked offset expressions (the inside of each ``offset()``).
    """
    keep, offsets = [], []
    for term in split_top_level(rhs, "+"):
        expr = None
        if term.replace(" ", "").startswith("offset("):
            expr = parse_expression(term, columns)
        if expr is not None and expr.call == "offset":
            inner = expr.tree.body.args[0]
            offsets.append(parse_expression(ast_source(expr, inner), columns))
        else:
            keep.append(term)
    if not offsets:
        return rhs, []
    rest = " + ".join(keep) if keep else "1"
    return rest, offsets


def ast_source(expr: Expr, node) -> str:
    """The text of a sub-expression, with backticked names restored."""
    import ast

    text = ast.get_source_segment(expr.code_text, node)
    for key, name in expr.names.items():
        text = text.replace(key, f"`{name}`")
    return text


def _finite(values: np.ndarray, what: str, n_rows: int) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        raise FormulaError(f"the offset {what} is not finite (NaN, inf or log(0)) in "
                           f"{int(bad.sum())} of {n_rows} rows")
    return values


class OffsetDesign:
    """How to compute the offset of any data: the formula's offset expressions, plus the
    ``offset=`` argument (a column name, re-read from new data, or an array)."""

    def __init__(self, exprs: list[Expr], argument=None):
        self.exprs = list(exprs)
        self.argument = argument  # column name, "array" or None

    def formula_part(self, data: pd.DataFrame) -> np.ndarray:
        """Sum of the formula's offset expressions on ``data`` (zeros when there are none)."""
        total = np.zeros(len(data))
        for e in self.exprs:
            v = evaluate(e, data)
            if v.ndim != 1:
                raise FormulaError(f"offset({e.text}) must be one column")
            total += _finite(v, f"offset({e.text})", len(data))
        return total

    def on(self, data: pd.DataFrame, offset=None) -> np.ndarray:
        """The total offset of ``data``; ``offset`` (array or column name) replaces the fit's
        ``offset=`` argument, which is re-read from ``data`` when it was a column name."""
        total = self.formula_part(data)
        if offset is None and self.argument == "array":
            raise FormulaError("the model was fitted with an offset array: pass offset= (one "
                               "value per row of newdata) to predict on new data")
        extra = self.argument if offset is None else offset
        if extra is not None:
            total = total + argument_values(extra, data)
        return total


def argument_values(value, data: pd.DataFrame) -> np.ndarray:
    """An ``offset=`` argument (column name or array) as finite values, one per row."""
    if isinstance(value, str):
        if value not in data.columns:
            raise FormulaError(f"offset column {value!r} not found in data")
        s = data[value]
        if not pd.api.types.is_numeric_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
            raise FormulaError(f"offset column {value!r} is not numeric")
        arr = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise FormulaError("offset must be numbers, one per row of data") from None
        if arr.shape != (len(data),):
            raise FormulaError(f"offset must have one value per row of data ({len(data)}), "
                               f"got shape {arr.shape}")
    return _finite(arr, repr(value) if isinstance(value, str) else "argument", len(data))
