"""Grouping factors: levels kept as values (not their string forms), and lme4's term order.

A level is identified by its *value* after normalizing dtypes (NumPy scalars become Python
scalars, so ``1``, ``np.int64(1)`` and ``1.0`` are one level, while the text ``"1"`` is another);
an interaction ``a:b`` keeps its levels as tuples, so labels that contain ``:`` cannot collide.
The ``levels`` labels (``"B:3"``) are only for display (``ranef``, DataTrees).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import FormulaError

__all__ = ["factor_codes", "group_labels", "level_index", "lme4_order", "check_group_column"]


def _kind(value) -> str:
    return "number" if isinstance(value, (int, float, np.number)) and not isinstance(
        value, (bool, np.bool_)) else "text" if isinstance(value, str) else type(value).__name__


def check_group_column(s: pd.Series, col: str) -> None:
    """Refuse grouping columns whose values mix kinds (``1`` and ``"a"``), with the fix."""
    if s.dtype != object:
        return
    kinds = {}
    for v in pd.unique(s.dropna()):
        kinds.setdefault(_kind(v), v)
    if len(kinds) > 1:
        shown = ", ".join(f"{k} {v!r}" for k, v in list(kinds.items())[:3])
        raise FormulaError(f"grouping column {col!r} mixes value types ({shown}); make it one "
                           f"type, e.g. data[{col!r}] = data[{col!r}].astype(str)")


def _py(value):
    """A NumPy scalar as the Python scalar that compares and hashes by value."""
    return value.item() if isinstance(value, np.generic) else value


def _column_levels(s: pd.Series, col: str) -> tuple[np.ndarray, list]:
    """Codes (0-based, per row) and level values of one grouping column, in R's order."""
    check_group_column(s, col)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cat = s.cat.remove_unused_categories()
        return cat.cat.codes.to_numpy(), [_py(c) for c in cat.cat.categories]
    uniq, codes = np.unique(s.to_numpy(), return_inverse=True)
    return codes, [_py(u) for u in uniq]


def factor_codes(data: pd.DataFrame, group: str) -> tuple[np.ndarray, list[str], list[tuple]]:
    """Codes, display labels and level keys (tuples of values) of grouping factor ``group``.

    ``a:b`` is the interaction, first factor varying fastest as in R's ``interaction()``;
    unused combinations are dropped (lme4 does too).
    """
    parts = [g.strip() for g in group.split(":")]
    codes_list, values_list = zip(*(_column_levels(data[c], c) for c in parts))
    if len(parts) == 1:  # one factor: its codes are already dense (the common, fast case)
        keys = [(v,) for v in values_list[0]]
        return codes_list[0].astype(np.int64), [str(v) for v in values_list[0]], keys
    # combined key with the first factor fastest: order by (last, ..., first)
    key = np.zeros(len(data), dtype=np.int64)
    for codes, values in zip(reversed(codes_list), reversed(values_list)):
        key = key * len(values) + codes
    used, refs = np.unique(key, return_inverse=True)
    keys = []
    for k in used:
        digits = []
        for values in values_list:  # the first factor is the lowest digit of the key
            digits.append(values[k % len(values)])
            k //= len(values)
        keys.append(tuple(digits))
    labels = [":".join(str(v) for v in key) for key in keys]
    return refs.astype(np.int64), labels, keys


def _row_keys(data: pd.DataFrame, group: str, fitted_keys) -> list[tuple]:
    parts = [g.strip() for g in group.split(":")]
    missing = [c for c in parts if c not in data.columns]
    if missing:
        raise FormulaError(f"grouping factor column {missing[0]!r} not found in new data")
    columns = []
    for j, col in enumerate(parts):
        s = data[col]
        check_group_column(s, col)
        values = [_py(v) for v in s.astype(object).to_numpy()]
        fitted_kinds = {_kind(k[j]) for k in fitted_keys}
        new_kinds = {_kind(v) for v in values if not pd.isna(v)}
        if new_kinds and fitted_kinds and not new_kinds & fitted_kinds:
            raise FormulaError(
                f"grouping column {col!r} holds {'/'.join(sorted(new_kinds))} values in new "
                f"data but {'/'.join(sorted(fitted_kinds))} values in the fitted data; convert "
                "it to the fitted type so that its levels can be matched")
        columns.append(values)
    return list(zip(*columns))


def level_index(term, newdata: pd.DataFrame) -> np.ndarray:
    """For each row of ``newdata``, the index of its level in ``term.levels`` (-1 if new).

    Levels are matched by value (``1`` matches ``1.0``); interactions match as tuples.
    """
    keys = term.level_keys if term.level_keys is not None else [(lv,) for lv in term.levels]
    index = {k: i for i, k in enumerate(keys)}
    return np.array([index.get(k, -1) for k in _row_keys(newdata, term.group, keys)],
                    dtype=np.int64)


def group_labels(data: pd.DataFrame, group: str) -> np.ndarray:
    """The display label of each row for grouping factor ``group`` (``a:b`` joins with ``:``),
    for messages; matching uses :func:`level_index`."""
    parts = [g.strip() for g in group.split(":")]
    missing = [c for c in parts if c not in data.columns]
    if missing:
        raise FormulaError(f"grouping factor column {missing[0]!r} not found in new data")
    labels = data[parts[0]].astype(str).to_numpy(dtype=object)
    for col in parts[1:]:
        labels = labels + ":" + data[col].astype(str).to_numpy(dtype=object)
    return labels


def lme4_order(reterms: list) -> list:
    """lme4's order of random-effects terms (``mkReTrms``): if any term has more levels than
    the one before it, order by decreasing number of levels as ``rev(order(nl))`` does, which
    puts tied terms in *reverse* formula order; otherwise keep the formula order."""
    nl = [t.nlevels for t in reterms]
    if not any(b > a for a, b in zip(nl, nl[1:])):
        return list(reterms)
    ascending = sorted(range(len(nl)), key=lambda i: nl[i])  # R's order() is stable
    return [reterms[i] for i in reversed(ascending)]
