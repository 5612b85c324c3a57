"""A response prepared for the family kernels, and the checks that name the culprit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["GLMResponse", "check_degenerate"]


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



def check_degenerate(family: str, y: np.ndarray, weight: np.ndarray, response: str) -> None:
    """Refuse responses whose maximum-likelihood estimates do not exist, as lme4 does
    ("Response is constant"), instead of returning a fit stopped somewhere on the way to the
    limit: a constant response for a linear mixed model (residual SD -> 0), all-zero counts
    (log mean -> -inf), binomial proportions all 0 or all 1 (logit -> -+inf). ``y`` is on the
    mean scale (proportions for the binomial); rows with zero ``weight`` are left out."""
    y = np.asarray(y, dtype=float)[np.asarray(weight, dtype=float) > 0]
    if not len(y):
        raise ValueError(f"response {response!r}: every observation has weight zero")
    lo, hi = float(y.min()), float(y.max())
    why = None
    if family == "gaussian" and hi - lo <= 1e-12 * max(1.0, abs(hi), abs(lo)):
        why = (f"is constant (every value is {lo:g}): its residual variance would be "
               f"estimated as zero")
    elif family in ("poisson", "negativebinomial") and hi == 0:
        why = "is zero for every observation: the log mean would be minus infinity"
    elif family in ("binomial", "bernoulli") and (hi == 0 or lo == 1):
        what = "no successes" if hi == 0 else "only successes"
        why = (f"has {what} in all {len(y)} observations: the probability would be "
               f"{'0' if hi == 0 else '1'} and the coefficients infinite")
    if why:
        raise ValueError(f"response {response!r} {why}; a mixed model cannot be fitted to "
                         f"it (lme4: 'Response is constant')")
