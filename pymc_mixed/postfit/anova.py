"""Likelihood-ratio comparison of nested mixed models (lme4's ``anova(m1, m2, ...)``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["anova", "nested", "check_comparable"]


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
    check_comparable(results, names)
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


def check_comparable(results, names) -> None:
    """Refuse what a likelihood-ratio test cannot compare: other data (rows, response,
    weights, offset), a different kind of model or family, and models not nested in the order
    of their numbers of parameters, where nesting can be decided from the specs."""
    ref, ref_name = results[0].spec, names[0]
    for r, name in zip(results[1:], names[1:]):
        s = r.spec
        why = _different_data(ref, s)
        if why:
            raise ValueError(f"anova: {ref_name} and {name} were not fitted to the same data "
                             f"({why}); a likelihood-ratio test needs the same observations")
        if (s.kind, s.family.name, s.family.link) != (ref.kind, ref.family.name, ref.family.link):
            raise ValueError(f"anova: {ref_name} is a {_kind(ref)} and {name} a {_kind(s)}; "
                             f"a likelihood-ratio test compares nested models of one family")
    order = sorted(range(len(results)), key=lambda i: results[i].dof)
    for i, j in zip(order[:-1], order[1:]):
        small, big = results[i].spec, results[j].spec
        if small.kind in ("lmm", "glmm") and not nested(small, big):
            raise ValueError(f"anova: {names[i]} ({small.formula}) is not nested in "
                             f"{names[j]} ({big.formula}): a likelihood-ratio test needs each "
                             f"model's fixed effects and random-effect covariances to be a "
                             f"special case of the next one's; compare AIC/BIC instead")


def _kind(spec) -> str:
    what = "linear mixed model" if spec.kind == "lmm" else f"{spec.kind.upper()}"
    return f"{what} ({spec.family.name} family, {spec.family.link} link)"


def _different_data(a, b) -> str | None:
    """Why two specs do not hold the same observations, or None."""
    if a.n != b.n:
        return f"{a.n} and {b.n} observations"
    if a.rows is not None and b.rows is not None and not a.rows.equals(b.rows):
        return "different rows (e.g. other rows dropped for missing values)"
    if a.response_name != b.response_name or not np.array_equal(np.asarray(a.y),
                                                                  np.asarray(b.y)):
        return f"responses {a.response_name!r} and {b.response_name!r} differ"
    for what in ("weights", "trials"):
        u, v = getattr(a, what), getattr(b, what)
        if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v)):
            return f"different {what}"
    if not np.allclose(a.offset_or_zero, b.offset_or_zero, rtol=1e-12, atol=0):
        return "different offsets"
    return None


def _cov_entries(spec) -> dict:
    """Per grouping factor, the covariance entries a model can estimate: pairs of
    random-effect column names (both orders for a correlated term, the diagonal otherwise)."""
    out: dict = {}
    for t in spec.reterms:
        pairs = out.setdefault(t.group, set())
        pairs.update((a, b) for a in t.cnames for b in t.cnames)
    return out


def nested(small, big, tol: float = 1e-8) -> bool:
    """Whether model ``small`` is a special case of ``big`` (same data assumed): every column
    of its fixed design lies in the span of ``big``'s, and each of its random-effect
    covariance entries is one ``big`` estimates too (by grouping factor and column name)."""
    if small.p:
        if not big.p:
            return False
        coef = np.linalg.lstsq(big.X, small.X, rcond=None)[0]
        resid = np.linalg.norm(small.X - big.X @ coef, axis=0)
        if np.any(resid > tol * np.maximum(np.linalg.norm(small.X, axis=0), 1.0)):
            return False
    cs, cb = _cov_entries(small), _cov_entries(big)
    return all(g in cb and pairs <= cb[g] for g, pairs in cs.items())
