"""A response prepared for the family kernels, and the checks that name the culprit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["GLMResponse"]


@dataclass
class GLMResponse:
    """A response prepared for the kernels: ``y`` (mean scale), trials ``n``, prior weights
    ``pw``, GLM weights ``wt = pw * n`` and the log-likelihood's constant part ``const_obs``
    (per observation, free of ``mu`` and of the dispersion)."""

    y: np.ndarray
    n: np.ndarray
    pw: np.ndarray
    wt: np.ndarray
    const_obs: np.ndarray
    const_sum: float | None = None


def _check_finite(y: np.ndarray, response: str) -> None:
    if not np.all(np.isfinite(y)):
        raise ValueError(f"response {response!r} has non-finite values")


def _numeric(y, response: str, family: str) -> np.ndarray:
    if isinstance(y, pd.Series) and (not pd.api.types.is_numeric_dtype(y)
                                     or pd.api.types.is_bool_dtype(y)):
        raise ValueError(f"response {response!r} is not numeric (dtype {y.dtype}); the "
                         f"{family} family needs numbers")
    y = np.asarray(y, dtype=float)
    _check_finite(y, response)
    return y


def _whole(x: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    return np.abs(x - np.round(x)) <= tol * np.maximum(1.0, np.abs(x))


def _first_bad(y: np.ndarray, bad: np.ndarray) -> str:
    i = int(np.flatnonzero(bad)[0])
    return f"{int(bad.sum())} value(s), e.g. {y[i]:g} in row {i}"

