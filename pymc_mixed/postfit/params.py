"""Covariance parameters on their natural scale (standard deviations and correlations),
per-level coefficients (lme4's ``coef``) and the principal components of the random effects
(lme4's ``rePCA``).

The optimizers work in ``theta``, the elements of the relative covariance factors ``T_k``;
users read SDs and correlations. ``sdcor`` lists them in theta's order (lme4's ``Cv_to_Sv``):
a diagonal element of ``T_k`` becomes a standard deviation, one below the diagonal the
correlation of the same row and column, named as lme4's ``confint(..., oldNames = FALSE)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["sdcor_names", "theta_to_sdcor", "sdcor_to_theta", "coef", "repca"]


def sdcor_names(spec) -> list[str]:
    """``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ... in theta's order."""
    names = []
    for t in spec.reterms:
        rows, cols = t.tril_index
        for i, j in zip(rows, cols):
            if i == j:
                names.append(f"sd_{t.cnames[i]}|{t.group}")
            else:
                names.append(f"cor_{t.cnames[i]}.{t.cnames[j]}|{t.group}")
    return names


def sdcor_is_cor(spec) -> np.ndarray:
    """True where an sdcor element is a correlation (below the diagonal of ``T_k``)."""
    return np.concatenate([(r != c) for r, c in (t.tril_index for t in spec.reterms)])


def theta_to_sdcor(spec, theta: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """SDs and correlations of the random effects, ``scale`` times ``T_k`` being their
    Cholesky factor (``scale`` is sigma for an LMM, 1 for a GLMM)."""
    out = []
    for t, T in zip(spec.reterms, spec.Ts(np.asarray(theta, dtype=float))):
        S = scale**2 * T @ T.T
        sd = np.sqrt(np.diag(S))
        rows, cols = t.tril_index
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(rows == cols, sd[rows],
                                S[rows, cols] / (sd[rows] * sd[cols])))
    return np.nan_to_num(np.concatenate(out), nan=0.0)


def sdcor_to_theta(spec, sdcor: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Inverse of :func:`theta_to_sdcor`. Raises ``np.linalg.LinAlgError`` when the
    correlations do not form a positive semi-definite matrix."""
    sdcor = np.asarray(sdcor, dtype=float)
    out, start = [], 0
    for t in spec.reterms:
        rows, cols = t.tril_index
        v = sdcor[start:start + t.ntheta]
        start += t.ntheta
        sd = np.zeros(t.p)
        sd[rows[rows == cols]] = v[rows == cols]
        C = np.eye(t.p)
        off = rows != cols
        C[rows[off], cols[off]] = C[cols[off], rows[off]] = v[off]
        out.append(_chol_psd(C * np.outer(sd, sd) / scale**2)[rows, cols])
    return np.concatenate(out)


def _chol_psd(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero rows/columns allowed,
    which a zero standard deviation gives)."""
    p = S.shape[0]
    if p == 1:
        if S[0, 0] < 0:
            raise np.linalg.LinAlgError("negative variance")
        return np.sqrt(S)
    keep = np.diag(S) > 0
    L = np.zeros_like(S)
    if keep.any():
        L[np.ix_(keep, keep)] = np.linalg.cholesky(S[np.ix_(keep, keep)])
    return L


def coef(result) -> dict[str, pd.DataFrame]:
    """Per-level coefficients, fixed effects plus the level's random effects (lme4's ``coef``):
    {grouping factor: levels x coefficients}. A random-effect column without a fixed effect of
    the same name is added as its own column."""
    fe = pd.Series(np.asarray(result.beta, dtype=float), index=result.spec.xnames)
    out = {}
    for group, re in result.ranef.items():
        df = pd.DataFrame(np.tile(fe.to_numpy(), (len(re), 1)), index=re.index,
                          columns=fe.index)
        for col in re.columns:
            if col in df.columns:
                df[col] = df[col] + re[col].to_numpy()
            else:
                df[col] = re[col].to_numpy()
        out[group] = df
    return out


def repca(result) -> dict[str, pd.DataFrame]:
    """Principal components of each term's relative covariance factor (lme4's ``rePCA``):
    {term: DataFrame with the standard deviation (singular values of ``T_k``, relative to
    sigma in an LMM), proportion of variance and cumulative proportion per component}. A
    component with standard deviation near zero shows a singular (over-parametrized) term."""
    out = {}
    for t, T in zip(result.spec.reterms, result.spec.Ts(np.asarray(result.theta, float))):
        d = np.linalg.svd(T, compute_uv=False)
        var = d**2
        prop = var / var.sum() if var.sum() > 0 else np.full_like(var, np.nan)
        key = t.group if t.group not in out else f"{t.group}.{len(out)}"
        out[key] = pd.DataFrame({"Standard deviation": d, "Proportion of Variance": prop,
                                 "Cumulative Proportion": np.cumsum(prop)},
                                index=[f"PC{i + 1}" for i in range(len(d))]).T
    return out
