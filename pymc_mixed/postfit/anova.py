"""Likelihood-ratio comparison of nested mixed models (lme4's ``anova(m1, m2, ...)``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["anova"]


def _as_ml(result):
    if getattr(result, "REML", False):
        # REML criteria of models with different fixed effects are not comparable; lme4
        # refits by ML before comparing, and so do we (with the estimator handed over as
        # ``result.engine``).
        return result.engine.fit(result.spec, REML=False), True
    return result, False


def anova(*results, names: list[str] | None = None) -> pd.DataFrame:
    """Compare nested models fitted to the same data by likelihood-ratio tests.

    Models are sorted by their number of parameters; each row's ``Chisq`` tests it against the
    row above. REML fits are refitted by maximum likelihood first (``refitted`` column).

    Returns a DataFrame with ``npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)``.
    """
    from scipy.stats import chi2

    if len(results) < 2:
        raise ValueError("anova needs at least two fitted models")
    names = names or [f"model{i + 1}" for i in range(len(results))]
    nobs = {r.nobs for r in results}
    if len(nobs) > 1:
        raise ValueError(f"models were fitted to different numbers of observations: {sorted(nobs)}")
    rows = []
    for name, r in zip(names, results):
        ml, refitted = _as_ml(r)
        rows.append({"model": name, "npar": ml.dof, "AIC": ml.aic, "BIC": ml.bic,
                     "logLik": ml.loglik, "deviance": -2 * ml.loglik, "refitted": refitted})
    df = pd.DataFrame(rows).sort_values("npar", kind="stable").set_index("model")
    dev = df["deviance"].to_numpy()
    npar = df["npar"].to_numpy()
    chisq = np.r_[np.nan, np.maximum(dev[:-1] - dev[1:], 0.0)]
    ddf = np.r_[np.nan, np.diff(npar)].astype(float)
    with np.errstate(invalid="ignore"):
        p = np.where(ddf > 0, chi2.sf(chisq, np.where(ddf > 0, ddf, 1)), np.nan)
    df["Chisq"], df["Df"], df["Pr(>Chisq)"] = chisq, ddf, p
    return df
