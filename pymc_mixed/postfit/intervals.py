"""Confidence intervals for every parameter of a fitted mixed model (lme4's ``confint``):
profile likelihood, Wald (fixed effects only, as lme4) and parametric-bootstrap percentiles.
Rows are named as lme4's ``confint(..., oldNames = FALSE)``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _refit
from .params import sdcor_names, theta_to_sdcor

__all__ = ["confint"]


def _columns(level: float) -> list[str]:
    a = (1 - level) / 2
    return [f"{100 * a:.1f} %", f"{100 * (1 - a):.1f} %"]


def _natural_names(result) -> list[str]:
    spec = result.spec
    if _refit.is_lmm(result):
        return sdcor_names(spec) + ["sigma"] + list(spec.xnames)
    extra = [spec.family.dispersion_name] if result.dispersion is not None else []
    return sdcor_names(spec) + list(spec.xnames) + extra


def _wald(result, level: float) -> pd.DataFrame:
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    names = _natural_names(result)
    out = pd.DataFrame(np.nan, index=names, columns=_columns(level))
    beta = np.asarray(result.beta, float)
    se = np.sqrt(np.diag(np.atleast_2d(result.vcov)))
    out.loc[list(result.spec.xnames)] = np.c_[beta - z * se, beta + z * se]
    return out


def _boot(result, level: float, nsim: int, seed) -> pd.DataFrame:
    """Percentile intervals of the natural parameters over bootstrap refits."""
    from .bootstrap import parametric_bootstrap

    spec = result.spec
    reps = parametric_bootstrap(result, n=nsim, seed=seed, progressbar=False).replicates
    theta, beta, disp = spec.layout.unpack(reps[spec.layout.names].to_numpy())
    if _refit.is_lmm(result):  # SDs relative to sigma in an LMM
        sdcor = np.array([theta_to_sdcor(spec, t, s) for t, s in zip(theta, disp)])
        nat = np.column_stack([sdcor, disp, beta])
    else:
        sdcor = np.array([theta_to_sdcor(spec, t) for t in theta])
        nat = np.column_stack([sdcor, beta] + ([] if disp is None else [disp]))
    a = (1 - level) / 2
    q = np.quantile(nat, [a, 1 - a], axis=0).T
    return pd.DataFrame(q, index=_natural_names(result), columns=_columns(level))


def confint(result, parm=None, level: float = 0.95, method: str = "profile",
            nsim: int = 500, seed=None, n_jobs: int = 1) -> pd.DataFrame:
    """Confidence intervals for the SDs and correlations of the random effects, sigma (LMM),
    the fixed effects and a GLMM's dispersion.

    Parameters
    ----------
    parm : a name or list of names (default all; see the index of the returned table).
    level : confidence level.
    method : ``"profile"`` (profile likelihood, :func:`pymc_mixed.postfit.profile`; exact for
        LMMs, Laplace/AGQ for GLMMs), ``"wald"`` (fixed effects only; NaN for the others, as
        lme4) or ``"boot"`` (percentiles of a parametric bootstrap with ``nsim`` refits).
    n_jobs : worker processes for the profile.
    """
    method = method.lower()
    if method == "profile":
        from .profile import profile

        return profile(result, which=parm, n_jobs=n_jobs).confint(level)
    if method == "wald":
        out = _wald(result, level)
    elif method == "boot":
        out = _boot(result, level, nsim, seed)
    else:
        raise ValueError(f"method must be 'profile', 'wald' or 'boot', got {method!r}")
    if parm is None:
        return out
    parm = [parm] if isinstance(parm, str) else list(parm)
    missing = [p for p in parm if p not in out.index]
    if missing:
        raise KeyError(f"no parameter {missing[0]!r}; parameters: {', '.join(out.index)}")
    return out.loc[parm]
