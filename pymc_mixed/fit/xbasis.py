"""A well-conditioned basis for the fixed effects, so that a fit does not depend on how the
predictors are coded (issue 7, item 5).

With ``x = 2020 + t / 365`` next to an intercept, ``X'X`` has a condition number near 1e12
and its Cholesky factor (the ``R_X`` block of the PLS factor) loses about 12 digits: the
objective differed from the one with ``t`` in the 5th digit. The estimators therefore fit with
``Q = X R^{-1}`` from a thin QR decomposition of ``X`` (orthonormal columns, condition 1 up to
the weights) and map back: ``beta = R^{-1} beta_Q``, ``vcov(beta) = R^{-1} vcov(beta_Q)
R^{-T}``. Householder QR is backward stable, so ``Q`` and ``R`` carry the collinearity without
squaring it. The ML deviance and the Laplace deviance do not depend on the basis;
REML's ``log|R_X|^2`` does, by the constant ``log det(R'R)`` that :attr:`logdet` adds back,
so the REML criterion is the one of the model matrix as given (what lme4 reports).

For very wide designs (``n p^2`` above :data:`QR_FLOPS`, e.g. 6,000 rows and a 3,000-level
factor) the QR would cost more than the fit; there the columns are only scaled to unit length.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import qr

from ..linalg.threads import small_qr

__all__ = ["FixedBasis", "QR_FLOPS"]


def _solve_upper(R: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``R^{-1} b`` for upper-triangular ``R``. NumPy's solver: SciPy's ``solve_triangular``
    (LAPACK trsm through OpenBLAS's threads) took 5-7 ms for a 2 x 2 system inside a fit on
    a busy machine, more than a whole sleepstudy fit; ``gesv`` is backward stable as well."""
    return np.linalg.solve(R, np.asarray(b, dtype=float))

# above this n * p^2 only column scaling (a QR of 6,000 x 3,000 takes ~30 s on one core)
QR_FLOPS = 2e9


class FixedBasis:
    """``X = Q R`` with ``R`` upper triangular (positive diagonal), or ``R`` diagonal (column
    norms) for very wide designs; :attr:`Q` is what the estimators factor."""

    def __init__(self, X: np.ndarray, transform: bool = True):
        X = np.asarray(X, dtype=float)
        n, p = X.shape
        self.p = p
        if not transform:  # the identity: Q = X (objectives evaluated at X's coefficients)
            self.Q, self.R, self.orthogonal = X, np.eye(p), False
        elif p == 0:
            self.Q, self.R, self.orthogonal = X, np.zeros((0, 0)), True
        elif n * p * p <= QR_FLOPS and n >= p:
            Q, R = small_qr(X) if p <= 40 else qr(X, mode="economic", check_finite=False)
            sgn = np.where(np.diagonal(R) < 0, -1.0, 1.0)  # positive diagonal: R unique
            self.Q, self.R, self.orthogonal = Q * sgn, R * sgn[:, None], True
        else:
            norms = np.linalg.norm(X, axis=0)
            norms[norms == 0] = 1.0
            self.Q, self.R, self.orthogonal = X / norms, np.diag(norms), False
        # log det(R'R): REML's log|X'WX - ...| = that of Q plus this constant
        self.logdet = 2.0 * float(np.log(np.abs(np.diagonal(self.R))).sum()) if p else 0.0

    def beta(self, beta_q: np.ndarray) -> np.ndarray:
        """Coefficients of ``X`` from those of ``Q``: ``R^{-1} beta_Q``."""
        if not self.p:
            return np.asarray(beta_q, dtype=float)
        return _solve_upper(self.R, beta_q)

    def beta_q(self, beta: np.ndarray) -> np.ndarray:
        """Coefficients of ``Q`` from those of ``X``: ``R beta``."""
        return self.R @ np.asarray(beta, dtype=float) if self.p else np.asarray(beta, float)

    def cov(self, cov_q: np.ndarray) -> np.ndarray:
        """``R^{-1} C R^{-T}``: a covariance of ``beta_Q`` as one of ``beta``."""
        if not self.p:
            return cov_q
        A = _solve_upper(self.R, cov_q)
        return _solve_upper(self.R, np.ascontiguousarray(A.T)).T

    def Rxx(self, Rxx_q: np.ndarray) -> np.ndarray:
        """The lower-triangular fixed-effects factor of ``X`` from that of ``Q``: with
        ``Rq Rq' = Q'WQ - ...``, ``X'WX - ... = R' Rq Rq' R``, whose Cholesky factor is
        ``chol(R' Rq Rq' R)``; computed stably by a QR of ``Rq' R``."""
        if not self.p:
            return Rxx_q
        M = Rxx_q.T @ self.R
        r = qr(M, mode="r", check_finite=False)[0]
        sgn = np.where(np.diagonal(r) < 0, -1.0, 1.0)
        return (r * sgn[:, None]).T
