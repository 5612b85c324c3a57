"""Curvature of an objective at the estimates: the package's one Hessian routine.

:func:`hessian` differentiates values (central differences, lme4's ``deriv12`` scheme, one
step per coordinate); :func:`gradient_hessian` differentiates an analytic gradient. Standard
errors from the Hessian (``GLMMResult.vcov_hessian``) and the normal approximation
(:mod:`pymc_mixed.postfit.approx`) of LMM and GLMM fits all come through here: estimators hand
results a :class:`~pymc_mixed.results.Curvature` built from these functions, so no result or
post-fit module imports an estimator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hessian", "gradient_hessian"]


def hessian(f, x, step=1e-4) -> np.ndarray:
    """Central finite-difference Hessian of ``f`` at ``x`` with step ``step`` (a scalar or one
    per coordinate): ``f(x +- h_i e_i)`` for the diagonal, and for ``i != j``
    ``[f(x + h_i e_i + h_j e_j) - f_i^+ - f_j^+ + 2 f_0 - f_i^- - f_j^- + f(x - h_i e_i - h_j e_j)]
    / (2 h_i h_j)``, reusing the axis values (lme4's ``deriv12``)."""
    x = np.asarray(x, dtype=float)
    k = len(x)
    h = np.broadcast_to(np.asarray(step, dtype=float), (k,))
    H = np.empty((k, k))
    f0 = f(x)
    e = np.diag(h)
    fp = np.array([f(x + e[i]) for i in range(k)])
    fm = np.array([f(x - e[i]) for i in range(k)])
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
        for j in range(i):
            fpp = f(x + e[i] + e[j])
            fmm = f(x - e[i] - e[j])
            H[i, j] = H[j, i] = (fpp - fp[i] - fp[j] + 2 * f0 - fm[i] - fm[j] + fmm) / (
                2 * h[i] * h[j])
    return H


def gradient_hessian(fg, x, step: float = 1e-5) -> np.ndarray:
    """Hessian from central differences of a gradient: ``fg(x)`` returns the gradient at ``x``;
    the result is symmetrized."""
    x = np.asarray(x, dtype=float)
    k = len(x)
    H = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        H[i] = (fg(x + e) - fg(x - e)) / (2 * step)
    return 0.5 * (H + H.T)
