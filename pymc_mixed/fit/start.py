"""Starting values for the covariance parameters theta.

lme4 always starts at ``T_k = I``. On a large model every evaluation of the objective costs a
dense Cholesky factorization, and most of BOBYQA's evaluations are spent walking from there to
the right scale. A method-of-moments estimate (per-level least-squares fits of each term,
backfitted over crossed terms, minus their average sampling covariance) usually lands close:
for InstEval it cuts the evaluations from about 100 to about 40. The estimator still compares
it with ``T = I`` and starts from whichever has the lower objective, so a poor moment estimate
costs one evaluation, never the answer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["moment_theta"]


def _per_level_fit(t, r: np.ndarray, w: np.ndarray):
    """Per-level weighted least-squares coefficients of ``r`` on the term's columns."""
    p, nl = t.p, t.nlevels
    z = t.z
    idx_ab = (t.refs[:, None] * p * p + np.arange(p * p)[None, :]).ravel()
    zz = (z[:, :, None] * z[:, None, :] * w[:, None, None]).reshape(len(r), -1).ravel()
    ztz = np.bincount(idx_ab, zz, minlength=nl * p * p).reshape(nl, p, p)
    idx_a = (t.refs[:, None] * p + np.arange(p)[None, :]).ravel()
    ztr = np.bincount(idx_a, (z * (w * r)[:, None]).ravel(), minlength=nl * p).reshape(nl, p)
    if p == 1:
        ok = ztz[:, 0, 0] > 1e-10 * max(ztz[:, 0, 0].max(), 1e-300)
        coef = np.zeros((nl, 1))
        coef[ok, 0] = ztr[ok, 0] / ztz[ok, 0, 0]
        return coef, ztz, ok
    ok = np.linalg.matrix_rank(ztz) == p
    coef = np.zeros((nl, p))
    if ok.any():
        coef[ok] = np.linalg.solve(ztz[ok], ztr[ok][..., None])[..., 0]
    return coef, ztz, ok


def _nested(fine, coarse) -> bool:
    """True when every level of ``fine`` lies within a single level of ``coarse``."""
    if fine.nlevels <= coarse.nlevels:
        return False
    pairs = np.unique(fine.refs.astype(np.int64) * coarse.nlevels + coarse.refs)
    return len(pairs) == fine.nlevels


def moment_theta(spec, weights: np.ndarray | None = None, sweeps: int = 3) -> np.ndarray | None:
    """A method-of-moments guess of theta, or None when the data cannot support one."""
    y = spec.y - spec.offset_or_zero
    w = np.ones(spec.n) if weights is None else np.asarray(weights, dtype=float)
    sw = np.sqrt(w)
    if spec.p:
        beta, *_ = np.linalg.lstsq(spec.X * sw[:, None], y * sw, rcond=None)
        r = y - spec.X @ beta
    else:
        r = y.copy()
    terms = spec.reterms
    fits = [np.zeros(spec.n) for _ in terms]
    fitted = [None] * len(terms)
    # Coarse factors first, so that each takes its own between-level variation; a factor with
    # another factor nested in it is fitted once only, or the nested one's least-squares fits
    # (which can absorb it entirely) would drain it on later sweeps.
    order = sorted(range(len(terms)), key=lambda k: terms[k].nlevels)
    frozen = {j for j in order for k in order if k != j and _nested(terms[k], terms[j])}
    for sweep in range(sweeps):
        for k in order:
            if sweep and k in frozen:
                continue
            t = terms[k]
            partial = r - sum(f for j, f in enumerate(fits) if j != k)
            coef, ztz, ok = _per_level_fit(t, partial, w)
            fits[k] = np.einsum("ij,ij->i", t.z, coef[t.refs])
            fitted[k] = (coef, ztz, ok)
    resid = r - sum(fits)
    dof = spec.n - spec.p - sum(int(ok.sum()) * t.p for t, (_, _, ok) in zip(terms, fitted))
    if dof < max(0.05 * spec.n, 2):
        return None
    sigma2 = float((w * resid**2).sum() / dof)
    if not np.isfinite(sigma2) or sigma2 <= 0:
        return None
    theta = []
    for t, (coef, ztz, ok) in zip(terms, fitted):
        if ok.sum() < 2:
            return None
        c = coef[ok]
        C = np.atleast_2d(np.cov(c.T))
        V = sigma2 * np.linalg.inv(ztz[ok]).mean(axis=0)
        S = (C - V + (C - V).T) / 2
        vals, vecs = np.linalg.eigh(S)
        floor = 1e-4 * max(float(np.diag(C).max()), sigma2)
        S = (vecs * np.maximum(vals, floor)) @ vecs.T
        L = np.linalg.cholesky(S / sigma2)
        theta.append(L[t.tril_index])
    out = np.concatenate(theta)
    return out if np.all(np.isfinite(out)) else None
