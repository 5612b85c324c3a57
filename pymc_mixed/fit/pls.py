"""Exact maximum likelihood and REML for linear mixed models (penalized least squares).

The profiled deviance is a function of theta alone: for each theta the blocked Cholesky factor
of the PLS system gives the conditional estimates of beta and u, and the objective is read off
its diagonal (Bates et al. 2015, eqs. 34 and 41)::

    ML:   log|L_theta|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L_theta|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

minus ``sum(log w)`` for prior weights.
"""

from __future__ import annotations

import numpy as np

from ..linalg import BlockedSystem
from ..linalg.threads import single_threaded_blas
from .optimize import minimize_with_edge_check

__all__ = ["LMMObjective", "fit_lmm"]

_LOG_2PI = np.log(2.0 * np.pi)


class LMMObjective:
    """The profiled deviance (or REML criterion) of a linear mixed model as a function of theta."""

    def __init__(self, spec, REML: bool = True):
        self.spec = spec
        self.REML = REML
        y = spec.y - spec.offset_or_zero
        w = spec.weights
        self.system = BlockedSystem(spec.reterms, spec.X, y, w)
        self._sum_log_w = 0.0 if w is None else float(np.log(w[w > 0]).sum())
        self.n = int(np.count_nonzero(spec.prior_weights))
        self.dof = self.n - spec.p if REML else self.n

    def __call__(self, theta: np.ndarray) -> float:
        s = self.system
        try:
            s.update(np.asarray(theta, dtype=float))
        except np.linalg.LinAlgError:
            return np.inf
        r2 = s.pwrss()
        if r2 <= 0:
            return np.inf
        val = s.logdet() + self.dof * (1.0 + _LOG_2PI + np.log(r2 / self.dof)) - self._sum_log_w
        if self.REML:
            val += s.logdet_x()
        return float(val)

    def sigma(self) -> float:
        """The conditional estimate of the residual standard deviation at the current theta."""
        return float(np.sqrt(self.system.pwrss() / self.dof))


def _initial_step(spec, theta0=None) -> np.ndarray:
    """BOBYQA's first trust region. From lme4's start ``T = I``: large moves for the
    standard-deviation-like diagonal elements, small ones for the off-diagonal elements. From a
    moment estimate, already near the optimum: a tenth of each value."""
    if theta0 is None:
        return np.where(spec.theta_lower == 0, 0.75, 0.1)
    return np.maximum(0.1 * np.abs(theta0), 0.02)


def choose_start(spec, objective, theta0=None, f_identity: float | None = None):
    """The starting theta and BOBYQA step: the user's, else the better (lower objective) of
    lme4's ``T = I`` and a method-of-moments estimate (see :mod:`pymc_mixed.fit.start`).
    ``f_identity`` is the objective at ``T = I`` when the caller already has it."""
    from .start import moment_theta

    if theta0 is not None:
        theta0 = np.asarray(theta0, dtype=float)
        return theta0, _initial_step(spec, theta0)
    identity = spec.theta_init
    moments = moment_theta(spec, spec.weights)
    if f_identity is None:
        f_identity = objective(identity)
    if moments is not None and objective(moments) < f_identity:
        return moments, _initial_step(spec, moments)
    return identity, _initial_step(spec)


def fit_lmm(spec, REML: bool = True, *, theta0=None, optimizer: str = "LN_BOBYQA",
            ftol_rel: float = 1e-12, ftol_abs: float = 1e-8, xtol_abs: float = 1e-10,
            maxfeval: int = 100_000):
    """Fit a linear mixed model by exact ML (``REML=False``) or REML; return an LMMResult."""

    obj = LMMObjective(spec, REML)
    with single_threaded_blas(obj.system.m):
        return _optimize(spec, obj, theta0, optimizer, ftol_rel, ftol_abs, xtol_abs, maxfeval)


def _optimize(spec, obj, theta0, optimizer, ftol_rel, ftol_abs, xtol_abs, maxfeval):
    from ..results import LMMResult

    f_identity = obj(spec.theta_init)
    if not np.isfinite(f_identity):
        raise ValueError(
            f"the response {spec.response!r} is fitted exactly by the fixed effects (zero "
            "residual variance): a linear mixed model cannot be estimated from these data")
    x0, step = choose_start(spec, obj, theta0, f_identity)
    optsum = minimize_with_edge_check(obj, x0, spec.theta_lower, step, ftol_rel=ftol_rel,
                                      ftol_abs=ftol_abs, xtol_abs=xtol_abs, maxfeval=maxfeval,
                                      optimizer=optimizer)
    theta = optsum.final
    fmin = obj(theta)  # leaves the factor at the optimum
    optsum.fmin = fmin
    return LMMResult.from_objective(spec, obj, theta, optsum)
