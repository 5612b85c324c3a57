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


def simulate_glmm(result, nsim: int = 1, seed=None, beta=None, theta=None,
                  dispersion=None) -> np.ndarray:
    """``nsim`` responses from a fitted GLMM (every family, with its offset and trials), drawn
    by the family (``family.simulate``, as the posterior predictive draws them; the dispersion
    on the family's own scale: the Gaussian's SD). Parameters default to the estimates. Returns an
    (nsim, n) array on the scale of the fitted response (proportions for the binomial)."""
    from ..families.simulate import simulate_responses

    spec = result.spec
    fam = spec.family
    rng = np.random.default_rng(seed)
    beta = np.asarray(result.beta if beta is None else beta, dtype=float)
    theta = np.asarray(result.theta_hat if theta is None else theta, dtype=float)
    disp = result.dispersion if dispersion is None else dispersion
    out = np.empty((nsim, spec.n))
    for i in range(nsim):
        u = rng.standard_normal(spec.q)
        eta = spec.mean.predict_numpy(spec, beta, spec.b_blocks(theta, u))
        if not fam.valid_mu(fam.linkinv(eta)):
            raise ValueError(f"the {fam.name} family's mean is out of range at these "
                             f"parameters (link {fam.link}); cannot simulate")
        # the posterior predictive's draw: trials (or lme4's weights) for the binomial
        out[i] = simulate_responses(spec, eta, disp, rng)
    return out


def bootstrap_glmm(result, n: int = 1000, seed=None, progressbar: bool = False):
    """Refit a GLMM to ``n`` responses simulated from it. Returns the replicates as an
    (n, k) array in the model's parameter layout ``(theta, beta[, dispersion])``
    (:class:`~pymc_mixed.spec.ParamLayout`) and its names."""
    from ..linalg.threads import single_threaded_blas

    spec = result.spec
    layout = spec.layout
    ys = simulate_glmm(result, nsim=n, seed=seed)
    rows = np.empty((n, layout.size))
    iterator = range(n)
    if progressbar:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="bootstrap", unit="fit")
    if getattr(result, "fast", False):   # nAGQ = 0: its own two-stage fit each time
        for i in iterator:
            r = _refit.fit_like(result, _refit.spec_with(spec, y=ys[i]),
                                theta0=np.asarray(result.theta_hat, float))
            rows[i] = layout.pack(r.theta_hat, r.beta, r.dispersion)
        return rows, layout.names
    refit = _WarmRefit(result)
    with single_threaded_blas():
        for i in iterator:
            rows[i] = refit(ys[i])
    return rows, layout.names


class _WarmRefit:
    """Refit the model's Laplace/AGQ objective to a new response, from the estimates."""

    def __init__(self, result):
        from scipy.linalg import cholesky

        spec = result.spec
        self.spec, self.result = spec, result
        self.data, self.obj = _refit.laplace_objective(result, tol=1e-6)
        self.nt, self.p = spec.ntheta, spec.p
        self.hasd = result.dispersion is not None
        self.beta_hat = np.asarray(result.beta, float)
        # scale beta by the PIRLS system (the RX-based covariance), as the estimator does
        prec = np.linalg.inv(np.atleast_2d(result.vcov_beta)) if self.p else np.zeros((0, 0))
        self.Rxx = cholesky(prec, lower=True) if self.p else prec
        self.y0 = np.concatenate([np.asarray(result.theta_hat, float), np.zeros(self.p),
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
                # as the fit does: a variance stuck at zero is tried inside the boundary
                inside = _refit.engine(self.result).interior_point
                start = None if inside is None else inside(
                    lambda y: fg(y)[0], best, res.fun, self.lower)
                if start is not None:
                    res2 = minimize(fg, start, jac=True, method="L-BFGS-B", bounds=bounds,
                                    options=dict(ftol=1e-15, gtol=1e-5, maxiter=500))
                    if res2.success and res2.fun < res.fun:
                        best = res2.x
        if best is None:
            step = np.concatenate([np.maximum(0.1 * np.abs(self.y0[:nt]), 0.02),
                                   np.full(p, 0.3), [0.1] if self.hasd else []])
            opt = _refit.minimize(self.result, lambda y: obj(self.natural(y)), self.y0,
                                  self.lower, initial_step=step, ftol_rel=1e-12,
                                  ftol_abs=1e-7, xtol_abs=1e-6)
            best = opt.final
        x = self.natural(best)
        return self.spec.layout.from_log(x)
