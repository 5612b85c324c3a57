"""The linearized LMM of one grouping factor as stacked per-level matrices (LME's fast path).

With a single grouping factor the linearized model's random-effects design is block diagonal
by level, so its penalized least-squares system splits into (G, k, k) blocks and a (p, p) Schur
complement for beta: no sparse structure to build per Gauss-Newton step. With ``Z_j`` the
level's rows of the random design, ``X_j`` of the fixed one, ``W`` the weights and
``Lambda`` the relative covariance factor:

    H_j = L_j L_j' = I + Lambda' Z_j' W Z_j Lambda,   C_j = L_j^-1 Lambda' Z_j' W X_j,
    c_j = L_j^-1 Lambda' Z_j' W y,   Rxx' Rxx = X'WX - sum C_j' C_j,
    beta = Rxx^-1 Rxx^-T (X'Wy - sum C_j' c_j),   u_j = L_j^-T (c_j - C_j beta),

and the profiled ML / REML deviances as lme4's (``pwrss = y'Wy - sum|c_j|^2 - |Rxx^-T r|^2``,
the weights' constant ``-sum log w`` left out: the optimizer does not need it; the reported
values come from :class:`~pymc_mixed.fit.pls.LMMObjective` at the end).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GroupedLMM", "U_to_u", "u_to_U", "batched_cholesky", "batched_lower_solve"]


def batched_cholesky(H: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of (G, k, k) matrices, column by column across all G at once.

    For the small k of random effects per level this is a few dozen vector operations,
    several times faster than LAPACK called once per matrix by ``np.linalg.cholesky`` when
    there are many levels (and slower when there are few: then LAPACK)."""
    k = H.shape[-1]
    if H.shape[0] < _MANY:
        return np.linalg.cholesky(H)
    L = np.zeros_like(H)
    for j in range(k):
        d = H[:, j, j] - np.sum(L[:, j, :j] ** 2, axis=1)
        if not np.all(d > 0):
            raise np.linalg.LinAlgError("a level's matrix is not positive definite")
        L[:, j, j] = np.sqrt(d)
        for i in range(j + 1, k):
            L[:, i, j] = (H[:, i, j] - np.sum(L[:, i, :j] * L[:, j, :j], axis=1)) / L[:, j, j]
    return L


def batched_lower_solve(L: np.ndarray, B: np.ndarray, trans: bool = False) -> np.ndarray:
    """``L^-1 B`` (or ``L^-T B``) for (G, k, k) lower ``L`` and (G, k, m) ``B``."""
    k = L.shape[-1]
    if L.shape[0] < _MANY:
        return np.linalg.solve(np.swapaxes(L, 1, 2) if trans else L, B)
    X = np.empty(B.shape)
    rows = range(k - 1, -1, -1) if trans else range(k)
    for i in rows:
        if trans:   # L' is upper: row i uses the rows below it, L[:, j, i] for j > i
            acc = np.sum(L[:, i + 1:, i, None] * X[:, i + 1:], axis=1)
        else:
            acc = np.sum(L[:, i, :i, None] * X[:, :i], axis=1)
        X[:, i] = (B[:, i] - acc) / L[:, i, i, None]
    return X

_LOG_2PI = float(np.log(2.0 * np.pi))
_MANY = 200    # levels from which the column-wise batched factorizations beat LAPACK


def u_to_U(lay, u: np.ndarray) -> np.ndarray:
    """The spec's term-ordered ``u`` (level-major per term) as (G, k), terms side by side."""
    out, pos = np.empty((lay.G, lay.k)), 0
    for sl in lay.slices:
        p = sl.stop - sl.start
        out[:, sl] = u[pos:pos + lay.G * p].reshape(lay.G, p)
        pos += lay.G * p
    return out


def U_to_u(lay, U: np.ndarray) -> np.ndarray:
    """Inverse of :func:`u_to_U`."""
    return np.concatenate([U[:, sl].ravel() for sl in lay.slices])


class GroupedLMM:
    """Cross products of the model linearized at ``(f, J)`` (working scale), per level.

    ``y`` is the pseudo-response, ``X`` (n, p) the fixed design ``J A``; the random design
    of level ``j`` is its rows of ``lay.to_effects(Jw)``.
    """

    def __init__(self, lay, Jw: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray | None):
        self.lay = lay
        Z = lay.to_effects(Jw)                                         # (n, k)
        wv = np.ones(len(y)) if w is None else w
        Zw = Z * wv[:, None]
        self.ZtZ = lay.group_sum(Zw[:, :, None] * Z[:, None, :])       # (G, k, k)
        self.ZtX = lay.group_sum(Zw[:, :, None] * X[:, None, :])       # (G, k, p)
        self.Zty = lay.group_sum(Zw * y[:, None])                      # (G, k)
        self.ZtXy = np.concatenate([self.ZtX, self.Zty[:, :, None]], axis=2)
        Xw = X * wv[:, None]
        self.XtX, self.Xty, self.yty = Xw.T @ X, Xw.T @ y, float(np.sum(wv * y * y))
        self.n, self.p = X.shape
        self.X, self.y, self.Z, self.wv = X, y, Z, wv
        self.sum_log_w = 0.0 if w is None else float(np.log(w).sum())

    def _factor(self, theta):
        lay = self.lay
        Lam = lay.Lam(theta)
        H = np.eye(lay.k) + Lam.T @ self.ZtZ @ Lam
        L = batched_cholesky(H)
        Cc = batched_lower_solve(L, Lam.T @ self.ZtXy)                  # (G, k, p + 1)
        C, c = Cc[:, :, :-1], Cc[:, :, -1]
        A = self.XtX - np.einsum("gkp,gkq->pq", C, C)
        Rxx = np.linalg.cholesky(A)                                     # lower: A = Rxx Rxx'
        rhs = self.Xty - np.einsum("gkp,gk->p", C, c)
        z = np.linalg.solve(Rxx, rhs)
        return Lam, L, C, c, Rxx, z

    def _pwrss(self, Lam, L, C, c, Rxx, z):
        """Penalized weighted RSS from the residuals: ``y'Wy - |c|^2 - |z|^2`` cancels
        (relative noise ~1e-10 in the deviance), and theta's optimum, flat to ~1e-12, then
        moves by ~1e-6 between evaluations."""
        beta = np.linalg.solve(Rxx.T, z)
        U = batched_lower_solve(L, (c - C @ beta)[:, :, None], trans=True)[:, :, 0]
        res = self.y - self.X @ beta - np.sum(self.Z * (U @ Lam.T)[self.lay.refs], axis=1)
        return float(np.sum(self.wv * res * res) + np.sum(U * U))

    def solve(self, theta):
        """Penalized least squares at ``theta``: ``(beta, U)`` with ``U`` (G, k)."""
        Lam, L, C, c, Rxx, z = self._factor(theta)
        beta = np.linalg.solve(Rxx.T, z)
        v = c - C @ beta
        U = batched_lower_solve(L, v[:, :, None], trans=True)[:, :, 0]
        return beta, U

    def deviance(self, theta, REML: bool = False) -> float:
        """Profiled ML (or REML) deviance at ``theta``, up to ``-sum log w``."""
        try:
            Lam, L, C, c, Rxx, z = self._factor(np.asarray(theta, float))
        except np.linalg.LinAlgError:
            return np.inf
        pwrss = self._pwrss(Lam, L, C, c, Rxx, z)
        ldL2 = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
        if not (pwrss > 0):
            return np.inf
        if REML:
            nmp = self.n - self.p
            ldRX2 = 2.0 * np.log(np.diagonal(Rxx)).sum()
            return float(ldL2 + ldRX2 + nmp * (1.0 + _LOG_2PI + np.log(pwrss / nmp)))
        return float(ldL2 + self.n * (1.0 + _LOG_2PI + np.log(pwrss / self.n)))

    def stats(self, theta, REML: bool = False):
        """``(deviance, sigma, vcov(beta))`` at ``theta`` as :class:`LMMObjective` reports
        them (the deviance with its ``-sum log w``)."""
        Lam, L, C, c, Rxx, z = self._factor(np.asarray(theta, float))
        dev = self.deviance(theta, REML) - self.sum_log_w
        pwrss = self._pwrss(Lam, L, C, c, Rxx, z)
        sigma = float(np.sqrt(pwrss / (self.n - self.p if REML else self.n)))
        Rinv = np.linalg.inv(Rxx)
        return dev, sigma, sigma**2 * Rinv.T @ Rinv
