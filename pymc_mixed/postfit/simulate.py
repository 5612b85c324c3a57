"""Simulation from a fitted GLMM and its parametric bootstrap.

``simulate_glmm`` draws new random effects ``u ~ N(0, I)``, forms ``eta = X beta + Z Lambda u +
offset`` and draws the response from the family at ``mu = linkinv(eta)``, on the scale of the
fitted response (proportions for the binomial, as ``spec.y``). ``bootstrap_glmm`` refits each
simulated response reusing one objective (only the response is swapped), started at the
estimates, in the scaled coordinates of :func:`pymc_mixed.fit.glmm.fit_glmm`'s second stage
(``gamma = Rxx' (beta - beta_hat)``), with the analytic gradient where the model has one.
"""

from __future__ import annotations

import numpy as np

from . import _refit

__all__ = ["simulate_glmm", "bootstrap_glmm"]


def _draw(family, mu, resp, dispersion, rng):
    """One response vector from ``family`` at means ``mu`` (``resp``: the fit's prepared
    response, for trials and prior weights)."""
    name = family.name
    if not family.valid_mu(mu):
        raise ValueError(f"the {name} family's mean is out of range at these parameters "
                         f"(link {family.link}); cannot simulate")
    if name in ("binomial", "bernoulli"):
        n = np.rint(resp.wt).astype(np.int64)
        return rng.binomial(n, mu) / np.where(n > 0, n, 1)
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "negativebinomial":
        k = float(dispersion)
        return rng.negative_binomial(k, k / (k + mu)).astype(float)
    if name == "gamma":
        shape = resp.pw / float(dispersion)
        return rng.gamma(shape, mu / shape)
    if name == "gaussian":
        return mu + np.sqrt(float(dispersion) / resp.pw) * rng.standard_normal(len(mu))
    raise NotImplementedError(f"simulate() does not know the {name!r} family")


def simulate_glmm(result, nsim: int = 1, seed=None, beta=None, theta=None,
                  dispersion=None) -> np.ndarray:
    """``nsim`` responses from a fitted GLMM (every family, with its offset and trials).
    Parameters default to the estimates. Returns an (nsim, n) array on the scale of the
    fitted response (proportions for the binomial)."""
    spec = result.spec
    rng = np.random.default_rng(seed)
    beta = np.asarray(result.beta if beta is None else beta, dtype=float)
    theta = np.asarray(result.theta if theta is None else theta, dtype=float)
    disp = result.dispersion if dispersion is None else dispersion
    if spec.family.name == "gaussian" and disp is None:
        disp = 1.0
    resp = _refit.prepare_response(spec, spec.y)
    mean = spec.X @ beta + spec.offset_or_zero
    out = np.empty((nsim, spec.n))
    for i in range(nsim):
        u = rng.standard_normal(spec.q)
        eta = mean + spec.Zb(spec.b_blocks(theta, u))
        out[i] = _draw(spec.family, spec.family.linkinv(eta), resp, disp, rng)
    return out


def bootstrap_glmm(result, n: int = 1000, seed=None, progressbar: bool = False):
    """Refit a GLMM to ``n`` responses simulated from it. Returns the replicates as an
    (n, k) array of ``(beta, theta[, dispersion])`` and their column names."""
    spec = result.spec
    ys = simulate_glmm(result, nsim=n, seed=seed)
    names = list(spec.xnames) + list(spec.theta_names)
    hasd = result.dispersion is not None
    if hasd:
        names.append(spec.family.dispersion_name)
    rows = np.empty((n, len(names)))
    iterator = range(n)
    if progressbar:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="bootstrap", unit="fit")
    if getattr(result, "fast", False):   # nAGQ = 0: its own two-stage fit each time
        for i in iterator:
            r = _refit.fit_glmm(_refit.spec_with(spec, y=ys[i]), fast=True,
                                theta0=np.asarray(result.theta, float))
            rows[i] = np.concatenate([r.beta, r.theta, [r.dispersion] if hasd else []])
        return rows, names
    refit = _WarmRefit(result)
    with _refit.single_threaded_blas():
        for i in iterator:
            rows[i] = refit(ys[i])
    return rows, names


class _WarmRefit:
    """Refit the model's Laplace/AGQ objective to a new response, from the estimates."""

    def __init__(self, result):
        from scipy.linalg import cholesky

        spec = result.spec
        self.spec, self.result = spec, result
        self.data, self.obj = _refit.laplace_objective(spec, int(result.nAGQ), tol=1e-6)
        self.nt, self.p = spec.ntheta, spec.p
        self.hasd = result.dispersion is not None
        self.beta_hat = np.asarray(result.beta, float)
        prec = np.linalg.inv(np.atleast_2d(result.vcov)) if self.p else np.zeros((0, 0))
        self.Rxx = cholesky(prec, lower=True) if self.p else prec
        self.y0 = np.concatenate([np.asarray(result.theta, float), np.zeros(self.p),
                                  [np.log(result.dispersion)] if self.hasd else []])
        self.lower = np.concatenate([spec.theta_lower, np.full(self.p, -np.inf),
                                     [-np.inf] if self.hasd else []])
        self.gradient = self.obj.has_gradient and int(result.nAGQ) <= 1

    def natural(self, y):
        from scipy.linalg import solve_triangular

        beta = self.beta_hat + (solve_triangular(self.Rxx, y[self.nt:self.nt + self.p],
                                                 lower=True, trans="T") if self.p else 0.0)
        return np.concatenate([y[:self.nt], beta, y[self.nt + self.p:]])

    def __call__(self, ynew: np.ndarray) -> np.ndarray:
        from scipy.linalg import solve_triangular
        from scipy.optimize import minimize

        self.data.resp = _refit.prepare_response(self.spec, ynew)
        self.obj.pirls.u = np.asarray(self.result.u, float).copy()
        obj, nt, p = self.obj, self.nt, self.p

        def fg(y):
            val = obj(self.natural(y))
            if not np.isfinite(val):
                return 1e300, np.zeros_like(y)
            g = obj.gradient()
            return val, np.concatenate([g[:nt], solve_triangular(self.Rxx, g[nt:nt + p],
                                                                 lower=True), g[nt + p:]])

        best = None
        if self.gradient:
            bounds = [(lo if np.isfinite(lo) else None, None) for lo in self.lower]
            res = minimize(fg, self.y0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options=dict(ftol=1e-15, gtol=1e-5, maxiter=500))
            if res.success and res.fun < 1e299:
                best = res.x
        if best is None:
            step = np.concatenate([np.maximum(0.1 * np.abs(self.y0[:nt]), 0.02),
                                   np.full(p, 0.3), [0.1] if self.hasd else []])
            opt = _refit.minimize_bobyqa(lambda y: obj(self.natural(y)), self.y0, self.lower,
                                         initial_step=step, ftol_rel=1e-12, ftol_abs=1e-7,
                                         xtol_abs=1e-6)
            best = opt.final
        x = self.natural(best)
        theta, beta = x[:nt], x[nt:nt + p]
        extra = [float(np.exp(x[-1]))] if self.hasd else []
        return np.concatenate([beta, theta, extra])
