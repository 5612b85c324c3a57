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

from functools import partial

from ..families import check_degenerate
from ..linalg import BlockedSystem, DenseSchurSystem
from ..linalg.threads import single_threaded_blas
from ..results import Curvature, FitEngine, LMMResult
from .base import register
from .convergence import DERIV_MAX_N, check_convergence, interior_point
from .curvature import hessian
from .optimize import minimize_bobyqa, minimize_with_edge_check
from .xbasis import FixedBasis

__all__ = ["LMMObjective", "fit_lmm", "ml_deviance", "ResponseRefit"]

_LOG_2PI = np.log(2.0 * np.pi)


class LMMObjective:
    """The profiled deviance (or REML criterion) of a linear mixed model as a function of theta."""

    def __init__(self, spec, REML: bool = True):
        self.spec = spec
        self.REML = REML
        y = spec.y - spec.offset_or_zero
        w = spec.weights
        self.basis = FixedBasis(spec.X)  # fit in an orthonormal basis of X (xbasis notes)
        self.system = lmm_system(spec.reterms, self.basis.Q, y, w)
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
            val += s.logdet_x() + self.basis.logdet
        return float(val)

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(u, beta)`` at the current theta, ``beta`` for the columns of ``X`` as given."""
        u, beta_q = self.system.solve()
        return u, self.basis.beta(beta_q)

    def Rxx(self) -> np.ndarray:
        """The fixed-effects factor for ``X`` as given: ``vcov(beta) = sigma^2 (Rxx Rxx')^-1``."""
        return self.basis.Rxx(self.system.Rxx())

    def sigma(self) -> float:
        """The conditional estimate of the residual standard deviation at the current theta."""
        return float(np.sqrt(self.system.pwrss() / self.dof))


def lmm_system(reterms, X, y, w):
    """The PLS kernel for an LMM. The sparse :class:`BlockedSystem` forms one product per pair
    of entries of a level of the first term: with many fixed-effect columns (``p = 3,000``:
    l1 * p^2 / 2 = 10^8 products and 148 GiB with the old set-up) a dense coupling block and
    BLAS (:class:`DenseSchurSystem`) are cheaper, when that block fits in memory."""
    t1, p = reterms[0], X.shape[1]
    m = sum(t.q for t in reterms[1:]) + p
    pairs = t1.nlevels * (t1.p * (p + 1)) ** 2 / 2.0
    if pairs > 2e7 and m * t1.q <= 2e7:
        return DenseSchurSystem(reterms, X, y, w)
    return BlockedSystem(reterms, X, y, w)


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
            maxfeval: int = 100_000, calc_derivs: bool | None = None):
    """Fit a linear mixed model by exact ML (``REML=False``) or REML; return an LMMResult.

    ``calc_derivs`` is lme4's: the ``checkConv`` gradient and Hessian at the optimum (and one
    Newton step from them, kept if it lowers the objective; see
    :mod:`pymc_mixed.fit.convergence`); None (default) means below 10,000 observations."""

    obj = LMMObjective(spec, REML)
    with single_threaded_blas(obj.system.m):
        return _optimize(spec, obj, theta0, optimizer, ftol_rel, ftol_abs, xtol_abs, maxfeval,
                         calc_derivs)


def _optimize(spec, obj, theta0, optimizer, ftol_rel, ftol_abs, xtol_abs, maxfeval,
              calc_derivs=None):
    check_degenerate("gaussian", spec.y, spec.prior_weights, spec.response)
    f_identity = obj(spec.theta_init)
    if not np.isfinite(f_identity):
        raise ValueError(
            f"the response {spec.response!r} is fitted exactly by the fixed effects (zero "
            "residual variance): a linear mixed model cannot be estimated from these data")
    x0, step = choose_start(spec, obj, theta0, f_identity)
    optsum = minimize_with_edge_check(obj, x0, spec.theta_lower, step, ftol_rel=ftol_rel,
                                      ftol_abs=ftol_abs, xtol_abs=xtol_abs, maxfeval=maxfeval,
                                      optimizer=optimizer)
    if calc_derivs if calc_derivs is not None else obj.n <= DERIV_MAX_N:
        check_convergence(obj, optsum, spec.theta_lower, obj.n)
        _newton_polish(obj, optsum, spec.theta_lower)
    else:
        optsum.messages.append("derivatives not checked (calc_derivs off, or more than "
                               f"{DERIV_MAX_N} observations as lme4)")
    theta = optsum.final
    fmin = obj(theta)  # leaves the factor at the optimum
    optsum.fmin = fmin
    return _result(spec, obj, theta, optsum)


def _newton_polish(obj, optsum, lower) -> None:
    """One Newton step on the free coordinates from the derivatives of the convergence check,
    kept if it lowers the objective. BOBYQA stops on flat optima once the objective changes by
    less than its tolerances, which can leave theta 1e-6 short (Dyestuff ML: sigma
    49.5100977 where lme4 has 49.5100999); the step costs one evaluation."""
    g, H = optsum.gradient, optsum.hessian
    if g is None or not len(g):
        return
    x = np.asarray(optsum.final, dtype=float)
    free = np.flatnonzero(~((np.asarray(lower) == 0) & (x <= 1e-8)))
    try:
        step = np.linalg.solve(np.linalg.cholesky(H).T, np.linalg.solve(np.linalg.cholesky(H), g))
    except np.linalg.LinAlgError:
        return
    trial = x.copy()
    trial[free] = np.maximum(x[free] - step, np.asarray(lower)[free])
    f_new = obj(trial)
    if np.isfinite(f_new) and f_new <= optsum.fmin:
        optsum.final, optsum.fmin = trial, f_new
        optsum.feval += 1


def _result(spec, obj, theta, optsum) -> LMMResult:
    """The result, read off the factor left at ``theta`` by ``obj``."""
    system = obj.system
    u, beta = obj.solve()
    sigma = obj.sigma()
    if spec.p:
        Rinv = np.linalg.inv(system.Rxx())
        vcov = obj.basis.cov(sigma**2 * Rinv.T @ Rinv)
    else:
        vcov = np.zeros((0, 0))
    theta = np.asarray(theta, dtype=float)
    curvature = Curvature(x_hat=spec.layout.pack(theta, beta, sigma),
                          make_deviance=partial(_layout_deviance, spec), hessian=hessian)
    return LMMResult(spec=spec, theta_hat=theta, beta=beta, u=u, objective=float(optsum.fmin),
                     optsum=optsum, vcov_beta=vcov, condvar_blocks=system.condvar_u,
                     sigma=sigma, method="REML" if obj.REML else "ML", curvature=curvature,
                     engine=lmm_engine(obj.REML), REML=obj.REML,
                     response_refitter=partial(ResponseRefit, spec, obj.REML))


def lmm_engine(REML: bool) -> FitEngine:
    """The estimator's hand-over for refits and profiles of an LMM (:class:`FitEngine`)."""
    return FitEngine(fit=partial(fit_lmm, REML=REML), objective=LMMObjective,
                     minimize=minimize_bobyqa, interior_point=interior_point)


def ml_deviance(spec):
    """``f(theta, beta, sigma) -> -2 log L``: the (non-profiled) ML deviance of an LMM.

    From the blocked factor at ``theta``: ``log|L|^2 + n log(2 pi sigma^2) +
    (r^2 + ||R_X' (beta - beta_hat)||^2) / sigma^2 - sum log w`` (Bates et al. 2015).
    """
    obj = LMMObjective(spec, REML=False)
    n = obj.n

    def f(theta, beta, sigma) -> float:
        obj(np.asarray(theta, dtype=float))
        s = obj.system
        _, bhat = s.solve()  # in the basis Q
        r2 = s.pwrss()
        quad = 0.0
        if spec.p:
            d = s.Rxx().T @ (obj.basis.beta_q(beta) - bhat)
            quad = float(d @ d)
        return float(s.logdet() + n * (_LOG_2PI + 2.0 * np.log(sigma))
                     + (r2 + quad) / sigma**2 - obj._sum_log_w)

    return f


def _layout_deviance(spec):
    """:func:`ml_deviance` as a function of the layout vector ``x = (theta, beta, sigma)``."""
    dev, layout = ml_deviance(spec), spec.layout
    return lambda x: dev(*layout.unpack(x))


class ResponseRefit:
    """Refit theta to new responses with the blocked system's structure kept (every
    cross-product but those with ``y`` is reused): the parametric bootstrap's inner fit, started
    at a given theta (as MixedModels.jl's ``parametricbootstrap``)."""

    def __init__(self, spec, REML: bool):
        self.spec = spec
        self.obj = LMMObjective(spec, REML)

    def threads(self):
        """BLAS thread limit for a run of refits (see :func:`single_threaded_blas`)."""
        return single_threaded_blas(self.obj.system.m)

    def __call__(self, y, theta0, step):
        """``(theta, beta, sigma)`` of the fit to response ``y`` started at ``theta0``."""
        spec, obj = self.spec, self.obj
        w = spec.prior_weights
        y = np.where(w > 0, y, 0.0)  # simulate() gives NaN where the weight is zero
        obj.system.set_weights(w, y - spec.offset_or_zero)
        opt = minimize_bobyqa(obj, theta0, spec.theta_lower, initial_step=step, keep_log=False)
        obj(opt.final)
        _, beta = obj.solve()
        return opt.final, beta, obj.sigma()


register("lmm", "REML", partial(fit_lmm, REML=True), default=True)
register("lmm", "ML", partial(fit_lmm, REML=False))
