"""Maximum likelihood for generalized linear mixed models: Laplace (PIRLS) and AGQ.

:func:`fit_glmm` follows lme4's ``glmer``:

1. a GLM without random effects gives starting values for ``beta`` (and the dispersion);
2. stage 1 (``nAGQ = 0``, ``fast=True``): ``theta`` (and the log dispersion) optimized, with
   ``beta`` and ``u`` found jointly by PIRLS at each ``theta``;
3. stage 2 (default): ``(theta, beta[, log dispersion])`` optimized from the stage-1 estimates,
   PIRLS over ``u`` only, objective the Laplace approximation (``nAGQ = 1``) or adaptive
   Gauss-Hermite quadrature (``nAGQ > 1``).

Optimizers. Where the Laplace objective has an analytic gradient (canonical link, no
dispersion parameter, the dense-Schur kernel: see :meth:`LaplaceObjective.gradient`) both
stages use L-BFGS-B; stage 1 starts from one EM step after the first evaluation at ``T = I``.
Otherwise, or if L-BFGS-B fails, BOBYQA (NLopt), with lme4's boundary restart. Stage 2 does not
search in ``beta`` directly but in ``gamma = Rxx' (beta - beta_1)``, where ``Rxx Rxx'`` is the
fixed-effects block of the stage-1 PIRLS system (the approximate inverse covariance of
``beta``): the objective is close to ``const + |gamma - gamma*|^2`` there, well scaled for
either optimizer. On VerbAgg this takes 32 evaluations in all, where lme4 uses 385.

The PIRLS inner loop is converged much more tightly than lme4's default (``tolPwrss = 1e-7``,
whose error in the Laplace objective reaches ~6e-4 on cbpp and VerbAgg): our values agree with
lme4's run with ``tolPwrss = 1e-12`` to about 1e-8.

Standard errors: ``vcov`` is lme4's ``use.hessian = FALSE`` form, the inverse of the
fixed-effects block of the joint PIRLS system at the estimates (what the shared lme4
references report as ``se``); :meth:`GLMMResult.vcov_hessian` gives lme4's default
Hessian-based form.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.linalg import solve_triangular

from ..errors import ConvergenceWarning
from ..families import check_degenerate
from ..linalg import make_system
from ..linalg.threads import single_threaded_blas
from ..results import Curvature, FitEngine, GLMMResult
from .agq import AGQObjective, check_agq
from .base import register
from .curvature import gradient_hessian, hessian
from .glmdata import GLMMData, PIRLSFailure, check_separation, glm_fit
from .convergence import DERIV_MAX_N, check_convergence, interior_point
from .optimize import (OptSummary, edge_restart, merge_optsums, minimize_bobyqa,
                       minimize_with_edge_check)
from .pirls import LaplaceObjective

__all__ = ["fit_glmm", "objective_hessian", "laplace_objective", "glmm_engine"]


def _minimize_lbfgsb(fg, x0, lower, *, gtol: float = 1e-5, maxiter: int = 500) -> OptSummary:
    """L-BFGS-B with analytic gradients, recorded like :func:`minimize_bobyqa`. ``fg`` returns
    ``(f, gradient)``; non-finite values make the line search back off."""
    from scipy.optimize import minimize

    x0 = np.asarray(x0, dtype=float)
    log: list = []

    def wrapped(x):
        f, g = fg(x)
        log.append((x.copy(), f))
        if not np.isfinite(f):
            return 1e300, np.zeros_like(x)
        return f, g

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    t0 = time.perf_counter()
    res = minimize(wrapped, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options=dict(ftol=1e-15, gtol=gtol, maxiter=maxiter, maxls=30))
    seconds = time.perf_counter() - t0
    ok = bool(res.success) and res.fun < 1e299
    return OptSummary(initial=x0, final=np.asarray(res.x), fmin=float(res.fun),
                      feval=len(log), optimizer="L-BFGS-B (analytic gradient)",
                      returnvalue="SUCCESS" if ok else "FAILURE", lower=np.asarray(lower),
                      ftol_rel=1e-15, ftol_abs=0.0, xtol_abs=gtol, maxfeval=maxiter,
                      seconds=seconds, fitlog=log)


def _em_theta(spec, theta, u, condvar) -> np.ndarray:
    """One EM step for theta from the conditional modes and covariances of ``u``:
    ``T T' <- T mean_j(u_j u_j' + Var(u_j)) T'`` per term (exact EM for an LMM)."""
    new, start = [], 0
    for t, T, cv in zip(spec.reterms, spec.Ts(theta), condvar):
        U = u[start:start + t.q].reshape(t.nlevels, t.p)
        start += t.q
        M = (U.T @ U + cv.sum(axis=0)) / t.nlevels
        L = np.linalg.cholesky(T @ M @ T.T + 1e-12 * np.eye(t.p))
        rows, cols = t.tril_index
        new.append(L[rows, cols])
    return np.concatenate(new)


def _stage1_gradient(obj0, spec, x0, lower) -> OptSummary:
    """nAGQ = 0 with gradients: one evaluation at the start, one EM step from its modes (a much
    better start than ``T = I``), then L-BFGS-B."""
    def fg(x):
        val = obj0(x)
        return (val, obj0.gradient()) if np.isfinite(val) else (val, np.zeros_like(x))

    f0 = obj0(x0)
    start = x0
    if np.isfinite(f0):
        start = _em_theta(spec, x0, obj0.pirls.u, obj0.pirls.system.condvar_u())
    opt = _minimize_lbfgsb(fg, start, lower)
    opt.fitlog.insert(0, (np.asarray(x0, dtype=float).copy(), f0))
    opt.feval += 1
    opt.initial = np.asarray(x0, dtype=float)
    return opt


def objective_hessian(obj, x) -> np.ndarray:
    """Hessian of a Laplace/AGQ objective at ``x``: central differences of the analytic
    gradient when the objective has one (step 1e-5), else of its values (lme4's step 1e-4),
    with PIRLS converged to 1e-10 meanwhile. Leaves the objective's state at ``x``."""
    x = np.asarray(x, dtype=float)
    tol = obj.pirls.tol
    obj.pirls.tol = 1e-10
    try:
        if obj.has_gradient and not isinstance(obj, AGQObjective):
            def grad(xx):
                obj(xx)
                return obj.gradient()
            H = gradient_hessian(grad, x, 1e-5)
        else:
            H = hessian(obj, x, 1e-4)
    finally:
        obj.pirls.tol = tol
        obj(x)
    return H


def _beta_slice(layout, basis) -> slice:
    return slice(layout.ntheta, layout.ntheta + basis.p)


def _x_to_q(layout, basis, x) -> np.ndarray:
    """``(theta, beta, ...)`` for X's columns -> the same with ``beta`` for the basis Q."""
    x = np.array(x, dtype=float)
    sl = _beta_slice(layout, basis)
    x[sl] = basis.beta_q(x[sl])
    return x


def _x_from_q(layout, basis, x) -> np.ndarray:
    """The inverse of :func:`_x_to_q`."""
    x = np.array(x, dtype=float)
    sl = _beta_slice(layout, basis)
    x[sl] = basis.beta(x[sl])
    return x


class _NaturalDeviance:
    """``x -> obj(x)`` in the layout ``(theta, beta[, dispersion])`` with the dispersion natural
    (the optimizer's ``x`` holds its logarithm) and ``beta`` for the columns of X (the objective
    works in the basis Q). A class, not a closure, so results pickle."""

    def __init__(self, obj, layout, basis):
        self.obj, self.layout, self.basis = obj, layout, basis

    def __call__(self, x) -> float:
        return self.obj(_x_to_q(self.layout, self.basis, self.layout.to_log(x)))


class _NaturalHessian(_NaturalDeviance):
    """:func:`objective_hessian` in the natural layout: ``d log(d) / d d = 1 / d`` for the
    dispersion (the gradient term of the chain rule vanishes at the optimum)."""

    def __call__(self, x) -> np.ndarray:
        H = objective_hessian(self.obj, _x_to_q(self.layout, self.basis, self.layout.to_log(x)))
        J = np.eye(self.layout.size)  # d x_Q / d x: beta_Q = R beta, log(d)' = 1 / d
        sl = _beta_slice(self.layout, self.basis)
        J[sl, sl] = self.basis.R
        if self.layout.has_dispersion:
            J[-1, -1] = 1.0 / x[-1]
        return J.T @ H @ J


def _curvature(spec, obj, xhat) -> Curvature:
    """The objective and its Hessian handed to the result, in the model's parameter layout."""
    layout, basis = spec.layout, obj.data.basis
    return Curvature(x_hat=layout.from_log(_x_from_q(layout, basis, xhat)),
                     make_deviance=partial(_NaturalDeviance, obj, layout, basis),
                     hessian=hessian, objective_hessian=_NaturalHessian(obj, layout, basis))


def _glm_start(data: GLMMData):
    """GLM estimates of ``beta`` and the dispersion (the starting values)."""
    fam = data.family
    disp = None
    if fam.dispersion_kind == "shape":       # negative binomial: Poisson-like first
        beta, mu, _ = glm_fit(data, dispersion=1e8)
        disp = fam.dispersion_start(data.resp, mu, data.p)
        beta, mu, conv = glm_fit(data, dispersion=disp)
    else:
        beta, mu, conv = glm_fit(data, dispersion=fam.phi(1.0) if fam.has_dispersion else None)
        if fam.has_dispersion:
            disp = fam.dispersion_start(data.resp, mu, data.p)
    if not np.all(np.isfinite(beta)):
        raise PIRLSFailure("the GLM fit for the starting values failed (non-finite "
                           "coefficients); check the response and the fixed-effects design")
    msg = check_separation(data, data.basis.beta(beta), mu)
    if msg:
        warnings.warn("GLM start: " + msg, UserWarning, stacklevel=5)
    return beta, disp, conv


def _joint_system(data: GLMMData, theta, eta, mu, disp):
    """The PIRLS system in ``(u, beta)`` with the weights at ``eta``: ``Rxx`` gives ``vcov``."""
    fam, r = data.family, data.resp
    mu_eta = fam.mu_eta(eta)
    w = r.wt * mu_eta**2 / fam.variance(mu, disp)
    s = make_system(data.reterms, data.X, eta - data.offset, w)
    s.update(theta)
    return s


def fit_glmm(spec, fast: bool = False, nAGQ: int = 1, **kwargs):
    """Fit a GLMM by maximum likelihood; returns a :class:`~pymc_mixed.results.GLMMResult`.

    Parameters
    ----------
    spec : the model (``MixedModel(...).spec``).
    fast : lme4's ``nAGQ = 0``: ``beta`` estimated inside PIRLS, only ``theta`` (and the
        dispersion) optimized; faster, slightly less accurate.
    nAGQ : 1 (Laplace, the default) or the number of adaptive Gauss-Hermite points per
        dimension (``> 1``; a single random-effects term, scalar or vector-valued). 0 is
        ``fast=True``.
    optimizer, ftol_rel, ftol_abs, xtol_abs, maxfeval : NLopt settings for both stages
        (``xtol_abs`` in the optimizer's scaled coordinates, see module notes).
    theta0 : starting ``theta`` for stage 1 (default ``T = I``, as lme4).
    pirls_tol : PIRLS convergence tolerance on the modes (see :class:`PIRLS`).
    use_gradient : use L-BFGS-B with the analytic gradient of the Laplace objective where it
        is available (canonical link, no dispersion parameter, models whose PIRLS system fits
        the dense-Schur kernel); else, or if it fails, BOBYQA.
    calc_derivs : lme4's ``calc.derivs``: the ``checkConv`` gradient and Hessian at the
        optimum (:mod:`pymc_mixed.fit.convergence`); None (default) means below 10,000
        observations. Not for ``nAGQ = 0``.
    """
    with single_threaded_blas():
        return _fit_glmm(spec, fast=fast, nAGQ=nAGQ, **kwargs)


def _fit_glmm(spec, fast: bool = False, nAGQ: int = 1, *, optimizer: str = "LN_BOBYQA",
              ftol_rel: float = 1e-12, ftol_abs: float = 1e-7, xtol_abs: float = 1e-6,
              maxfeval: int = 100_000, theta0=None, pirls_tol: float = 1e-4,
              use_gradient: bool = True, calc_derivs: bool | None = None):
    """The fit itself (see :func:`fit_glmm`), with BLAS threads already limited."""
    t_start = time.perf_counter()
    if nAGQ == 0:
        fast = True
    if fast and nAGQ > 1:
        raise ValueError("fast=True is lme4's nAGQ = 0; it cannot be combined with nAGQ > 1")
    check_agq(spec, nAGQ)
    if spec.kind == "lmm":
        raise ValueError("a Gaussian response with identity link is a linear mixed model: fit "
                         "it with fit_lmm (MixedModel.fit does this)")
    data = GLMMData(spec, orthonormal=True)
    check_degenerate(data.family.name, data.resp.y, data.resp.wt, spec.response)
    opts = dict(ftol_rel=ftol_rel, ftol_abs=ftol_abs, xtol_abs=xtol_abs, maxfeval=maxfeval,
                optimizer=optimizer)
    obj0, opt = _stage1(spec, data, theta0, pirls_tol, use_gradient, opts)
    if fast:
        stage = _Stage(opt=opt, obj=obj0, theta=opt.final[:spec.ntheta].copy(),
                       beta=obj0.pirls.beta.copy(), disp=obj0.split(opt.final)[2],
                       system=obj0.pirls.system)
    else:
        stage = _stage2(spec, data, nAGQ, obj0, opt, pirls_tol, use_gradient, opts,
                        calc_derivs)
    res = _glmm_result(spec, data, stage, fast, nAGQ)
    stage.opt.seconds = time.perf_counter() - t_start
    msg = check_separation(data, res.beta, data.family.linkinv(stage.obj.pirls.eta))
    if msg:
        warnings.warn(msg, UserWarning, stacklevel=4)
    if not stage.opt.converged:
        warnings.warn(f"the GLMM fit did not converge ({stage.opt.returnvalue}); estimates may "
                      "be unreliable", ConvergenceWarning, stacklevel=4)
    return res


@dataclass
class _Stage:
    """Where a stage of the fit ended: optimizer record, objective (PIRLS state at the
    estimates), estimates, the PIRLS system giving ``vcov`` and the optimizer's ``x``."""

    opt: OptSummary
    obj: LaplaceObjective
    theta: np.ndarray
    beta: np.ndarray
    disp: float | None
    system: object
    xhat: np.ndarray | None = None


def _stage1(spec, data, theta0, pirls_tol, use_gradient, opts):
    """Stage 1 (``nAGQ = 0``): ``(theta[, log dispersion])`` with ``beta`` inside PIRLS, from
    the GLM's estimates. Returns the objective (left at the estimates) and the record."""
    beta_glm, disp0, _ = _glm_start(data)
    hasd = data.has_dispersion
    obj0 = LaplaceObjective(data, fast=True, tol=pirls_tol)
    obj0.pirls.beta = beta_glm.copy()
    th0 = spec.theta_init if theta0 is None else np.asarray(theta0, dtype=float)
    x0 = np.concatenate([th0, [np.log(disp0)] if hasd else []])
    lower = np.concatenate([spec.theta_lower, [-np.inf] if hasd else []])
    step = np.concatenate([np.where(spec.theta_lower == 0, 0.5, 0.1), [0.5] if hasd else []])
    opt = None
    if use_gradient and obj0.has_gradient:
        opt = _stage1_gradient(obj0, spec, x0, lower)
        if not opt.converged:
            best = min(opt.fitlog, key=lambda r: r[1])[0]
            opt = merge_optsums(opt, minimize_with_edge_check(obj0, best, lower, step, **opts))
        else:  # theta = 0 is always stationary: L-BFGS-B may stop there (issue 7, item 6)
            opt = edge_restart(opt, obj0, lower, lambda x: minimize_with_edge_check(
                obj0, x, lower, step, **opts))
    if opt is None:
        opt = minimize_with_edge_check(obj0, x0, lower, step, **opts)
    f1 = obj0(opt.final)
    if not np.isfinite(f1):
        # Under (quasi-)separation the joint PIRLS system can become singular right at the
        # optimizer's last point (weights of separated rows underflow); lme4 then stops with
        # "Downdated VtV is not positive definite". The best point that evaluated is as good
        # an answer (the separation warning follows at the end of the fit).
        finite = [(f, x) for x, f in opt.fitlog if np.isfinite(f) and f < 1e299]
        for _, x in sorted(finite, key=lambda r: r[0])[:5]:
            # from the GLM's estimates, not the warm start PIRLS failed from
            obj0.pirls.u[:] = 0.0
            obj0.pirls.beta = beta_glm.copy()
            obj0.pirls._theta, obj0.pirls._fresh = None, False
            f1 = obj0(x)
            if np.isfinite(f1):
                opt.final = np.asarray(x, dtype=float).copy()
                break
    if not np.isfinite(f1):
        raise PIRLSFailure(f"PIRLS failed at the nAGQ = 0 estimates: {obj0.last_error}")
    opt.fmin = f1
    return obj0, opt


def _stage2(spec, data, nAGQ, obj0, opt1, pirls_tol, use_gradient, opts,
            calc_derivs=None) -> _Stage:
    """Stage 2: ``(theta, gamma[, log dispersion])`` with ``beta = beta_1 + Rxx'^{-1} gamma``
    (module notes), objective Laplace or AGQ, PIRLS over ``u`` only."""
    hasd = data.has_dispersion
    theta1 = opt1.final[:spec.ntheta].copy()
    beta1 = obj0.pirls.beta.copy()
    disp1 = float(np.exp(opt1.final[-1])) if hasd else None
    Rxx = obj0.pirls.system.Rxx()
    obj = AGQObjective(data, nAGQ, tol=pirls_tol) if nAGQ > 1 else \
        LaplaceObjective(data, fast=False, tol=pirls_tol)
    obj.pirls.u = obj0.pirls.u.copy()
    nt, p = spec.ntheta, spec.p

    def to_natural(y):
        y = np.asarray(y, dtype=float)
        beta = beta1 + (solve_triangular(Rxx, y[nt:nt + p], lower=True, trans="T")
                        if p else np.zeros(0))
        return np.concatenate([y[:nt], beta, y[nt + p:]])

    def f2(y):
        return obj(to_natural(y))

    y0 = np.concatenate([theta1, np.zeros(p), [np.log(disp1)] if hasd else []])
    lower2 = np.concatenate([spec.theta_lower, np.full(p, -np.inf), [-np.inf] if hasd else []])
    step2 = np.concatenate([np.maximum(0.1 * theta1, 0.02) * (spec.theta_lower == 0)
                            + 0.05 * (spec.theta_lower != 0),
                            np.full(p, 0.3), [0.1] if hasd else []])
    opt2 = None
    if use_gradient and obj.has_gradient and not isinstance(obj, AGQObjective):
        def fg2(y):
            val = f2(y)
            if not np.isfinite(val):
                return val, np.zeros_like(y)
            g = obj.gradient()  # d/d(theta, beta); beta = beta1 + Rxx'^-1 gamma
            return val, np.concatenate([g[:nt], solve_triangular(Rxx, g[nt:nt + p], lower=True)])
        opt2 = _minimize_lbfgsb(fg2, y0, lower2)
        if not opt2.converged:  # polish derivative-free from the best point
            best = min(opt2.fitlog, key=lambda r: r[1])[0]
            opt2 = merge_optsums(opt2, minimize_with_edge_check(f2, best, lower2, step2, **opts))
        else:
            opt2 = edge_restart(opt2, f2, lower2, lambda x: minimize_with_edge_check(
                f2, x, lower2, step2, **opts))
    if opt2 is None:
        opt2 = minimize_with_edge_check(f2, y0, lower2, step2, **opts)
    if calc_derivs if calc_derivs is not None else data.n <= DERIV_MAX_N:
        opt2.final = np.asarray(opt2.final, dtype=float)
        check_convergence(f2, opt2, lower2, data.n, what="parameters")
    layout, basis = spec.layout, data.basis  # the record in (theta, beta) for X's columns
    opt2.fitlog = [(_x_from_q(layout, basis, to_natural(x)), f) for x, f in opt2.fitlog]
    return _stage2_end(data, obj, merge_optsums(opt1, opt2), to_natural(opt2.final))


def _stage2_end(data, obj, opt, xhat) -> _Stage:
    """Evaluate the objective at the final ``x`` (leaving PIRLS there) and collect the stage."""
    fmin = obj(xhat)
    if not np.isfinite(fmin):
        raise PIRLSFailure(f"PIRLS failed at the final estimates: {obj.last_error}")
    opt.fmin = fmin
    opt.final = _x_from_q(data.spec.layout, data.basis, xhat)
    theta, beta, disp = obj.split(xhat)
    pr = obj.pirls
    system = _joint_system(data, theta, pr.eta, pr.mu, disp)
    return _Stage(opt=opt, obj=obj, theta=theta, beta=beta, disp=disp, system=system, xhat=xhat)


def _glmm_result(spec, data, stage: _Stage, fast: bool, nAGQ: int) -> GLMMResult:
    """The declared result, in one constructor call."""
    u = stage.obj.pirls.u.copy()
    theta, disp = stage.theta, stage.disp
    beta = data.basis.beta(stage.beta)  # the stages work in the basis Q of X
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(theta)) and np.all(np.isfinite(u))):
        raise PIRLSFailure("the fit produced non-finite estimates")
    sigma = None
    if data.has_dispersion and data.family.dispersion_kind == "scale":
        sigma = float(data.family.phi(disp) ** 0.5)
    if spec.p:
        Rinv = solve_triangular(stage.system.Rxx(), np.eye(spec.p), lower=True)
        vcov = data.basis.cov(Rinv.T @ Rinv)
    else:
        vcov = np.zeros((0, 0))
    curvature = None if fast else _curvature(spec, stage.obj, stage.xhat)
    return GLMMResult(spec=spec, theta_hat=np.asarray(theta, dtype=float),
                      beta=np.asarray(beta, dtype=float), u=u,
                      objective=float(stage.opt.fmin), optsum=stage.opt, vcov_beta=vcov,
                      condvar_blocks=stage.obj.pirls.system.condvar_u(), sigma=sigma,
                      curvature=curvature, engine=glmm_engine(nAGQ, fast), resp=data.resp,
                      dispersion=disp, nAGQ=0 if fast else int(nAGQ), fast=fast)


def laplace_objective(spec, nAGQ: int = 1, tol: float = 1e-10):
    """``(data, obj)``: the Laplace (``nAGQ = 1``) or AGQ objective of ``spec`` in
    ``x = (theta, beta[, log dispersion])``, PIRLS over ``u`` only, and the data it reads
    (replace ``data.resp`` to evaluate it at another response)."""
    data = GLMMData(spec)
    obj = AGQObjective(data, nAGQ, tol=tol) if nAGQ > 1 else LaplaceObjective(data, tol=tol)
    return data, obj


def glmm_engine(nAGQ: int, fast: bool) -> FitEngine:
    """The estimator's hand-over for refits and profiles of a GLMM (:class:`FitEngine`)."""
    return FitEngine(fit=partial(fit_glmm, nAGQ=int(nAGQ), fast=fast),
                     objective=partial(laplace_objective, nAGQ=max(int(nAGQ), 1)),
                     minimize=minimize_bobyqa, interior_point=interior_point)


register("glmm", "laplace", partial(fit_glmm, nAGQ=1), default=True)
register("glmm", "agq", fit_glmm)  # nAGQ > 1 points per dimension: fit(method="agq", nAGQ=9)
register("glmm", "nAGQ0", partial(fit_glmm, fast=True))
