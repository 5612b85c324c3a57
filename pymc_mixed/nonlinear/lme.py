"""Lindstrom-Bates (nlme's ``LME``/``RELME``, MATLAB nlmefit's ApproximationType ``LME``).

Alternate two steps until the parameters stop moving (Pinheiro & Bates 2000, sec. 7.2.2):

PNLS  For fixed theta, minimize ``sum w (y - f(A beta + B Lambda u))^2 + |u|^2`` over
      ``(beta, u)`` by Gauss-Newton. Each step is the penalized least-squares solution of the
      model linearized at the current point, solved with the library's blocked LMM kernel
      (:class:`~pymc_mixed.linalg.BlockedSystem`), with step halving on the true objective.
LME   Linearize at the PNLS solution: pseudo-response ``y - f + J A beta + J B b``, fixed design
      ``J A``, random design ``J B`` (each ReTerm's ``z`` times the Jacobian column of the
      parameter it feeds). That is a linear mixed model; its ML (``LME``) or REML (``RELME``)
      profiled deviance is minimized over theta, as lmer does.

At convergence the log-likelihood, ``sigma`` and ``vcov(beta)`` are those of the linearized
LMM, as nlme reports them. Works with any number of (nested) grouping factors.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ..fit.optimize import ConvergenceWarning, OptSummary, minimize_bobyqa

from ..fit.pls import LMMObjective, _initial_step
from ..linalg import BlockedSystem
from ..spec import ModelSpec
from .grouped import GroupedLMM, U_to_u
from .linearize import linearized_lmm
from .pnls import FactorLayout

__all__ = ["LMEFit", "fit_lme", "pnls"]


@dataclasses.dataclass
class LMEFit:
    """Where the alternation ended: parameters, the final linearized LMM and its objective."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    lin: ModelSpec
    objective: object         # LMMObjective, or GroupedLMM (one grouping factor)
    deviance: float           # of the linearized LMM (ML or REML criterion), working scale
    sigma: float
    vcov_beta: np.ndarray
    optsum: OptSummary
    iterations: int
    converged: bool
    stopped: bool = False


def _penalized(spec, kernel, beta, u, theta):
    """Penalized weighted RSS on the working scale, and the (f, J) there."""
    em = spec.error_model
    b = spec.b_blocks(theta, u)
    f, J = kernel.fj(spec.phi(beta, b))
    fw, _ = em.working_mean(f)
    w = 1.0 / em.g(f, np.zeros(0))**2
    val = float(np.sum(w * (em.working_response(spec.y) - fw)**2) + u @ u)
    return (val if np.isfinite(val) else np.inf), f, J, b


class _Steps:
    """The penalized least-squares solution of the model linearized at ``(beta, b)``: through
    :class:`GroupedLMM` (per-level blocks) for one grouping factor, else the blocked LMM
    kernel. Also the theta objective of the LME step."""

    def __init__(self, spec):
        self.spec = spec
        self.lay = FactorLayout(spec) if len(spec.groups) == 1 else None

    def grouped(self, f, J, beta, b):
        spec, lay = self.spec, self.lay
        em = spec.error_model
        fw, Jw = em.working_mean(f, J)
        X = spec.fixed_jacobian(Jw)
        B = np.concatenate([np.asarray(x) for x in b], axis=1)          # (G, k)
        zb = np.sum(B[lay.refs] * lay.to_effects(Jw), axis=1)
        y = em.working_response(spec.y) - fw + X @ beta + zb
        w = None if em.name in ("constant", "exponential") else 1.0 / em.g(f, np.zeros(0))**2
        return GroupedLMM(lay, Jw, X, y, w)

    def solve(self, f, J, beta, b, theta):
        """``(u, beta)`` minimizing the linearized penalized objective at ``theta``."""
        if self.lay is not None:
            beta_new, U = self.grouped(f, J, beta, b).solve(theta)
            return U_to_u(self.lay, U), beta_new
        lin = linearized_lmm(self.spec, f, J, beta, b)
        sys = BlockedSystem(lin.reterms, lin.X, lin.y, lin.weights)
        sys.update(theta)
        return sys.solve()

    def objective(self, f, J, beta, b, REML):
        """The linearized LMM's profiled deviance in theta (up to a constant)."""
        if self.lay is not None:
            g = self.grouped(f, J, beta, b)
            return lambda th: g.deviance(th, REML)
        return LMMObjective(linearized_lmm(self.spec, f, J, beta, b), REML)


def pnls(spec, kernel, theta, beta, u, tol: float = 1e-8, maxit: int = 100, steps=None):
    """Joint Gauss-Newton over ``(beta, u)`` at fixed theta (nlme's PNLS step)."""
    steps = steps or _Steps(spec)
    val, f, J, b = _penalized(spec, kernel, beta, u, theta)
    for _ in range(maxit):
        u_new, beta_new = steps.solve(f, J, beta, b, theta)
        du, dbeta = u_new - u, beta_new - beta
        step = 1.0
        for _ in range(40):
            cand = _penalized(spec, kernel, beta + step * dbeta, u + step * du, theta)
            if cand[0] <= val:
                break
            step /= 2
        else:
            return beta, u, val
        beta, u = beta + step * dbeta, u + step * du
        val, f, J, b = cand
        # converged when the step is at round-off of the parameters: a test on the objective's
        # decrease (quadratic in the step) leaves beta and u at ~sqrt(tol), and the outer
        # alternation then jitters at that level instead of converging
        moved = max(np.max(np.abs(step * dbeta) / (np.abs(beta) + 1e-3)),
                    np.max(np.abs(step * du), initial=0.0) / (1.0 + np.max(np.abs(u), initial=0)))
        if moved <= tol:
            break
    return beta, u, val


def fit_lme(spec, kernel, REML: bool = False, theta0=None, beta0=None, tol: float = 1e-9,
            maxiter: int = 200, callback=None) -> LMEFit:
    """Lindstrom-Bates alternation; see the module docstring. ``callback(beta, theta, it)``
    returning True stops the fit (marked ``stopped``)."""
    if spec.error_model.nshape:
        raise NotImplementedError("the combined error model is fitted by method='FOCE' for now")
    theta = spec.theta_init.copy() if theta0 is None else np.asarray(theta0, float)
    beta = spec.beta0.copy() if beta0 is None else np.asarray(beta0, float)
    u = np.zeros(spec.q)
    steps = _Steps(spec)
    lower = spec.theta_lower
    first = last = None
    converged = stopped = False
    for it in range(1, maxiter + 1):
        # PNLS only as precise as the alternation needs: theta still moves by `last`
        ptol = 1e-4 if last is None else min(1e-4, max(1e-9, 1e-2 * last))
        beta, u, _ = pnls(spec, kernel, theta, beta, u, tol=ptol, steps=steps)
        val, f, J, b = _penalized(spec, kernel, beta, u, theta)
        with warnings.catch_warnings():
            # BOBYQA often ends ROUNDOFF_LIMITED at this flat optimum (its best point is kept
            # from the log); the alternation's own convergence is what the fit reports
            warnings.simplefilter("ignore", ConvergenceWarning)
            opt = minimize_bobyqa(steps.objective(f, J, beta, b, REML), theta, lower,
                                  initial_step=_initial_step(spec, theta), ftol_rel=1e-13,
                                  ftol_abs=1e-12, xtol_abs=1e-10, keep_log=True)
        first = first or opt
        change = np.max(np.abs(opt.final - theta) / (np.abs(theta) + 1e-3))
        theta = opt.final
        if callback is not None and callback(beta, theta, it):
            stopped = True
            break
        # the alternation contracts linearly (~1e-2 per step); once theta's change stops
        # shrinking it sits at the precision of the inner BOBYQA (~1e-6 relative on large
        # data sets): more alternations only redraw that noise
        stalled = last is not None and change < 1e-5 and change > 0.3 * last
        if change < tol or stalled:
            converged = True
            break
        last = change
    beta, u, _ = pnls(spec, kernel, theta, beta, u, steps=steps)
    val, f, J, b = _penalized(spec, kernel, beta, u, theta)
    lin = linearized_lmm(spec, f, J, beta, b)
    if steps.lay is not None:   # the same numbers without building the sparse system
        obj = steps.grouped(f, J, beta, b)
        dev, sigma, vcov = obj.stats(theta, REML)
    else:
        obj = LMMObjective(lin, REML)
        dev = obj(theta)
        sigma = obj.sigma()
        Linv = np.linalg.inv(obj.Rxx())  # for X as given (the system works in a basis of X)
        vcov = sigma**2 * Linv.T @ Linv
    opt.initial = first.initial
    opt.fmin = dev
    return LMEFit(theta=theta, beta=beta, u=u, lin=lin, objective=obj, deviance=dev, sigma=sigma,
                  vcov_beta=vcov, optsum=opt, iterations=it, converged=converged,
                  stopped=stopped)
