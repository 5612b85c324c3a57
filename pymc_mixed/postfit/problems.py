"""The deviance of a fitted model as a function of its parameters on their natural scale, and
its profile: the minimum over every other parameter with one held fixed.

Two problems with one interface (``names``, ``estimates``, ``lower``, ``upper``, ``devmin``,
``scale`` and ``point(k, value, warm) -> (deviance, warm)``):

* :class:`LMMProblem` (exact): ``(SDs and correlations, sigma)`` with ``beta`` profiled out by
  the PLS solution, and each fixed effect profiled by moving it into the offset and minimizing
  the profiled deviance of the reduced model over theta. As lme4's ``profile``, the criterion
  is the ML deviance also for REML fits (the model is refitted by ML first).
* :class:`GLMMProblem` (Laplace or AGQ): ``(SDs and correlations, beta[, dispersion])``, every
  other parameter optimized by BOBYQA from the previous point (warm start).
"""

from __future__ import annotations

import numpy as np

from . import _refit
from .params import sdcor_is_cor, sdcor_names, sdcor_to_theta, theta_to_sdcor

__all__ = ["LMMProblem", "GLMMProblem", "problem_for"]

_LOG_2PI = np.log(2.0 * np.pi)
_OPT = dict(ftol_rel=1e-13, ftol_abs=1e-10, xtol_abs=1e-9)


def _sdcor_bounds(spec):
    cor = sdcor_is_cor(spec)
    return np.where(cor, -1.0, 0.0), np.where(cor, 1.0, np.inf)


class LMMProblem:
    """ML deviance of a linear mixed model in ``(sdcor, sigma)`` and, per fixed effect, the
    deviance profiled over everything else."""

    def __init__(self, result):
        spec = result.spec
        if getattr(result, "REML", False):
            result = _refit.fit_like(result, spec, REML=False,
                                     theta0=np.asarray(result.theta_hat, float))
        self.spec, self.nt, self.p = spec, spec.ntheta, spec.p
        self.result = result
        self.obj = _refit.lmm_objective(result, REML=False)
        theta, sigma = np.asarray(result.theta, float), float(result.sigma)
        self.devmin = self.obj(theta)
        self.theta_hat = theta
        w = spec.weights
        self._sum_log_w = 0.0 if w is None else float(np.log(w[w > 0]).sum())
        self.names = sdcor_names(spec) + ["sigma"] + list(spec.xnames)
        self.estimates = np.concatenate([theta_to_sdcor(spec, theta, sigma), [sigma],
                                         result.beta])
        lo, hi = _sdcor_bounds(spec)
        self.lower = np.concatenate([lo, [0.0], np.full(self.p, -np.inf)])
        self.upper = np.concatenate([hi, [np.inf], np.full(self.p, np.inf)])
        se = np.sqrt(np.diag(np.atleast_2d(result.vcov)))
        # rough scale of each parameter, for the first step of a profile trace
        self.scale = np.concatenate([np.where(sdcor_is_cor(spec), 0.2, 0.15 * np.maximum(
            self.estimates[:self.nt], 0.1 * sigma)), [0.05 * sigma], se])
        self._fixed_obj = {}

    def deviance(self, phi: np.ndarray) -> float:
        """ML deviance at ``phi = (sdcor, sigma)``, beta at its conditional estimate."""
        sigma = phi[-1]
        if sigma <= 0:
            return np.inf
        try:
            theta = sdcor_to_theta(self.spec, phi[:-1], sigma)
            self.obj.system.update(theta)
        except np.linalg.LinAlgError:
            return np.inf
        s = self.obj.system
        return float(s.logdet() + self.obj.n * (_LOG_2PI + 2 * np.log(sigma))
                     + s.pwrss() / sigma**2 - self._sum_log_w)

    def start(self, k: int) -> np.ndarray:
        """The nuisance parameters at the estimates, for parameter ``k``."""
        if k <= self.nt:
            return np.delete(self.estimates[:self.nt + 1], k)
        return self.theta_hat.copy()

    def point(self, k: int, value: float, warm: np.ndarray):
        """The deviance minimized over all but parameter ``k``, fixed at ``value``."""
        if k <= self.nt:
            return _min_with_fixed(self.result, self.deviance, self.estimates[:self.nt + 1],
                                   self.lower[:self.nt + 1], self.upper[:self.nt + 1],
                                   self.scale[:self.nt + 1], k, value, warm)
        j = k - self.nt - 1
        obj = self._reduced(j)
        spec = self.spec
        y = spec.y - spec.offset_or_zero - value * spec.X[:, j]
        obj.system.set_weights(spec.prior_weights, y)
        step = np.maximum(0.1 * np.abs(warm), 0.02)
        opt = _refit.minimize(self.result, obj, warm, spec.theta_lower, initial_step=step,
                              **_OPT)
        return opt.fmin, opt.final

    def _reduced(self, j: int):
        """The profiled ML objective of the model without fixed-effects column ``j``."""
        if j not in self._fixed_obj:
            spec = self.spec
            red = _refit.spec_with(spec, X=np.delete(spec.X, j, axis=1),
                                   xnames=[n for i, n in enumerate(spec.xnames) if i != j])
            self._fixed_obj[j] = _refit.lmm_objective(self.result, red, REML=False)
        return self._fixed_obj[j]


class GLMMProblem:
    """The Laplace (or AGQ) deviance of a GLMM in ``(sdcor, beta[, dispersion])``."""

    def __init__(self, result):
        spec = result.spec
        if getattr(result, "fast", False) or getattr(result, "nAGQ", 1) == 0:
            raise ValueError("profiling needs a fit with nAGQ >= 1; nAGQ = 0 does not estimate "
                             "beta by maximum likelihood")
        self.spec, self.nt, self.p = spec, spec.ntheta, spec.p
        self.result = result
        self.data, self.obj = _refit.laplace_objective(result)
        self.has_disp = result.dispersion is not None
        theta = np.asarray(result.theta, float)
        extra = [float(result.dispersion)] if self.has_disp else []
        self.names = sdcor_names(spec) + list(spec.xnames) + (
            [spec.family.dispersion_name] if self.has_disp else [])
        self.estimates = np.concatenate([theta_to_sdcor(spec, theta), result.beta, extra])
        lo, hi = _sdcor_bounds(spec)
        self.lower = np.concatenate([lo, np.full(self.p, -np.inf), [0.0] * len(extra)])
        self.upper = np.concatenate([hi, np.full(self.p, np.inf), [np.inf] * len(extra)])
        se = np.sqrt(np.diag(np.atleast_2d(result.vcov)))
        self.scale = np.concatenate([np.where(sdcor_is_cor(spec), 0.2, 0.25 * np.maximum(
            self.estimates[:self.nt], 0.1)), se, [0.2 * e for e in extra]])
        self.devmin = self.deviance(self.estimates)

    def deviance(self, phi: np.ndarray) -> float:
        """The objective at ``phi = (sdcor, beta[, dispersion])``."""
        try:
            theta = sdcor_to_theta(self.spec, phi[:self.nt])
        except np.linalg.LinAlgError:
            return np.inf
        rest = phi[self.nt:self.nt + self.p]
        x = np.concatenate([theta, rest, np.log(phi[-1:]) if self.has_disp else []])
        if self.has_disp and phi[-1] <= 0:
            return np.inf
        return float(self.obj(x))

    def start(self, k: int) -> np.ndarray:
        return np.delete(self.estimates, k)

    def point(self, k: int, value: float, warm: np.ndarray):
        return _min_with_fixed(self.result, self.deviance, self.estimates, self.lower,
                               self.upper, self.scale, k, value, warm)


def _min_with_fixed(result, f, full, lower, upper, scale, k, value, warm):
    """Minimize ``f`` over every coordinate but ``k`` (held at ``value``), from ``warm``, with
    the minimizer of the estimator that fitted ``result``."""
    idx = np.delete(np.arange(len(full)), k)
    x = np.array(full, dtype=float)
    x[k] = value
    if not len(idx):
        return f(x), warm

    def g(z):
        x[idx] = z
        return f(x)

    lo, hi = lower[idx], upper[idx]
    z0 = np.clip(warm, lo, hi)
    step = np.maximum(0.25 * scale[idx], 1e-4)
    opt = _refit.minimize(result, g, z0, lo, hi, initial_step=step, **_OPT)
    return opt.fmin, opt.final


def problem_for(result):
    """The profiling problem of a fitted LMM or GLMM."""
    return LMMProblem(result) if _refit.is_lmm(result) else GLMMProblem(result)
