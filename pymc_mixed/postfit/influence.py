"""Leverage and influence of observations in a linear mixed model, from the factor of the
penalized least-squares system (lme4's ``hatvalues``, ``cooks.distance``, ``rstudent``,
``influence``).

At the estimates the fitted values solve the augmented least-squares problem with rows
``a_i = sqrt(w_i) [z_i' Lambda, x_i']`` and ``q`` penalty rows ``[I 0]``, whose normal matrix
is ``M = L L'``. So the hat values are ``h_i = |L^{-1} a_i|^2`` (the diagonal of lme4's hat
matrix, no n x n matrix formed), and deleting observations ``G`` with the covariance
parameters held at their estimates moves the solution by the closed form

    (u, beta) - (u, beta)_(G) = M^{-1} A_G' (I - H_GG)^{-1} e_G,

``e`` the weighted residuals. ``influence(..., refit=True)`` refits instead (what lme4's
``influence.merMod`` does), warm-started at the estimates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular

from . import _refit

__all__ = ["hatvalues", "cooks_distance", "rstudent", "influence"]


def _check_lmm(result, what: str) -> None:
    if not _refit.is_lmm(result):
        raise NotImplementedError(f"{what} is available for linear mixed models")


def _factor_solves(result):
    """``v1`` (n, p1) and ``v2`` (m, n): the two blocks of ``L^{-1} a_i`` per observation,
    with the factor at the estimates; also the system (``(qr, p)`` split of ``v2``) and the
    basis of X the factor is built on."""
    spec = result.spec
    obj = _refit.lmm_objective(result, REML=bool(getattr(result, "REML", False)))
    theta = np.asarray(result.theta, dtype=float)
    obj(theta)
    s = obj.system
    Ts = spec.Ts(theta)
    sw = np.sqrt(spec.prior_weights)
    t1 = spec.reterms[0]
    a1 = sw[:, None] * (t1.z @ Ts[0])
    v1 = np.linalg.solve(s.L11[t1.refs], a1[:, :, None])[:, :, 0]
    m = s.qr + s.p
    # rows of [Lambda_r' Z_r' ; X'] W^1/2, minus the coupling L21 v1 (term-1 level of each row)
    A2 = np.zeros((m, spec.n))
    off = 0
    for t, T in zip(spec.reterms[1:], Ts[1:]):
        vals = sw[:, None] * (t.z @ T)
        np.add.at(A2, (off + t.columns, np.arange(spec.n)[:, None]), vals)
        off += t.q
    A2[s.qr:] = (sw[:, None] * obj.basis.Q).T  # the factor is of the orthonormal basis of X
    L21 = s.L21_dense()[:m].reshape(m, t1.nlevels, t1.p)
    A2 -= np.einsum("mia,ia->mi", L21[:, t1.refs, :].reshape(m, spec.n, t1.p), v1)
    v2 = solve_triangular(np.tril(s.L22[:m, :m]), A2, lower=True)
    return v1, v2, s, obj.basis


def hatvalues(result) -> np.ndarray:
    """Diagonal of the hat matrix of an LMM (lme4's ``hatvalues``): the leverage of each
    observation on its own fitted value ``X beta + Z b``."""
    _check_lmm(result, "hatvalues")
    v1, v2, _, _ = _factor_solves(result)
    return np.einsum("ia,ia->i", v1, v1) + np.einsum("mi,mi->i", v2, v2)


def _pearson(result) -> np.ndarray:
    spec = result.spec
    return np.sqrt(spec.prior_weights) * (spec.y - result.fitted)


def cooks_distance(result) -> np.ndarray:
    """Cook's distance per observation, lme4's closed form
    ``(r_i / (1 - h_i))^2 h_i / (sigma^2 p)`` with Pearson residuals ``r``."""
    h = hatvalues(result)
    r = _pearson(result)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (r / (1 - h)) ** 2 * h / (result.sigma**2 * result.spec.p)
    return np.where(np.isfinite(d), d, np.nan)


def rstudent(result) -> np.ndarray:
    """Studentized residuals (lme4's ``rstudent``): ``r_i / (sigma sqrt(1 - h_i))``."""
    h = hatvalues(result)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _pearson(result) / (result.sigma * np.sqrt(1 - h))
    return np.where(np.isfinite(out), out, np.nan)


def influence(result, groups: str | None = None, refit: bool = False) -> pd.DataFrame:
    """Case- or group-deletion influence on the fixed effects.

    Parameters
    ----------
    groups : a column of the data (``"Subject"``) to delete whole groups; None deletes single
        observations.
    refit : False (default): the closed form with the covariance parameters held at their
        estimates (no refit). True: refit the model without each case or group, warm-started
        at the estimates, as lme4's ``influence.merMod``.

    Returns a DataFrame indexed by case or group with the deleted-case fixed effects
    (``fixef[...]``), ``dfbeta[...]`` (``beta_(i) - beta``, lme4's sign; ``stats::dfbeta``
    of a linear model has the opposite one) and Cook's distance
    ``cooks = dfbeta' vcov^{-1} dfbeta (n - p)/(n p)`` (lme4's ``cooks.distance`` of an
    influence object, ``n`` the number of deletions).
    """
    _check_lmm(result, "influence")
    spec = result.spec
    labels, index = _deletion_sets(spec, groups)
    beta = np.asarray(result.beta, dtype=float)
    if refit:
        from .update import refit_without

        fixef = np.array([refit_without(result, idx).beta for idx in index])
    else:
        fixef = beta - _closed_form_dfbeta(result, index)
    db = fixef - beta
    n, p = len(index), spec.p
    vinv = (n - p) / (n * p) * np.linalg.inv(np.asarray(result.vcov))
    cooks = np.einsum("ia,ab,ib->i", db, vinv, db)
    out = pd.DataFrame(fixef, index=pd.Index(labels, name=groups or "case"),
                       columns=[f"fixef[{c}]" for c in spec.xnames])
    for j, c in enumerate(spec.xnames):
        out[f"dfbeta[{c}]"] = db[:, j]
    out["cooks"] = cooks
    return out


def _deletion_sets(spec, groups):
    if groups is None:
        return list(range(spec.n)), [np.array([i]) for i in range(spec.n)]
    if spec.data is None or groups not in spec.data.columns:
        raise KeyError(f"no column {groups!r} in the model's data to delete groups by")
    col = spec.data[groups].to_numpy()
    labels = list(pd.unique(col))
    return labels, [np.nonzero(col == g)[0] for g in labels]


def _closed_form_dfbeta(result, index) -> np.ndarray:
    """``beta - beta_(G)`` per deletion set with theta fixed (see module notes)."""
    v1, v2, s, basis = _factor_solves(result)
    qr, p = s.qr, s.p
    Lxx = np.tril(s.L22[qr:qr + p, qr:qr + p])
    e = _pearson(result)
    refs = result.spec.reterms[0].refs
    out = np.empty((len(index), p))
    for g, idx in enumerate(index):
        same = refs[idx][:, None] == refs[idx][None, :]
        H = same * (v1[idx] @ v1[idx].T) + v2[:, idx].T @ v2[:, idx]
        c = np.linalg.solve(np.eye(len(idx)) - H, e[idx])
        out[g] = solve_triangular(Lxx, v2[qr:, idx] @ c, lower=True, trans="T")
    return basis.beta(out.T).T  # from the orthonormal basis the factor uses back to beta
