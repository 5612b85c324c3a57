"""Bundled mixed-model data sets, typed as R typed them.

The data were exported unchanged from R packages (lme4 1.1-31, nlme 3.1-162, R's datasets,
glmmTMB 1.1.5) and ship compressed inside the package, so no network is ever needed. Factors and
ordered factors come back as pandas categoricals with R's level order (``types.json`` records
it): sleepstudy's ``Subject`` is a factor, not a number.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["load", "names"]

_DATA = resources.files(__package__) / "data"


@cache
def _types() -> dict:
    return json.loads((_DATA / "types.json").read_text())


def names() -> list[str]:
    """Names of the bundled data sets, as :func:`load` accepts them (sorted, case as in R)."""
    return sorted(_types(), key=str.lower)


def _resolve(name: str) -> str:
    by_lower = {n.lower(): n for n in _types()}
    try:
        return by_lower[name.lower()]
    except KeyError:
        raise KeyError(
            f"no bundled data set named {name!r}; available: {', '.join(names())}"
        ) from None


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a typed :class:`pandas.DataFrame`.

    Parameters
    ----------
    name
        Data set name, case-insensitive (``"sleepstudy"``, ``"InstEval"``, ``"cbpp"``, ...);
        see :func:`names`.

    Returns
    -------
    DataFrame whose factor columns are ``pandas.Categorical`` with R's levels (``ordered=True``
    for R's ordered factors), integer columns ``int64``, logicals ``bool`` and numerics
    ``float64``.
    """
    key = _resolve(name)
    types = _types()[key]
    # Read every factor column as text so "01" and "1" stay distinct labels, as in R.
    dtype = {col: str for col, t in types.items() if t["type"] in ("factor", "ordered")}
    with (_DATA / f"{key}.csv.gz").open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip", dtype=dtype, keep_default_na=True)
    for col, t in types.items():
        kind = t["type"]
        if kind in ("factor", "ordered"):
            df[col] = pd.Categorical(df[col], categories=t["levels"], ordered=kind == "ordered")
        elif kind == "integer":
            df[col] = df[col].astype("int64") if df[col].notna().all() else df[col].astype("Int64")
        elif kind == "logical":
            df[col] = df[col].astype(bool)
        else:
            df[col] = df[col].astype("float64")
    df.attrs["name"] = key  # the "Data:" line of a summary
    return df
