"""The log-likelihood at the SAEM estimates: importance sampling, Gauss-Hermite quadrature,
linearization.

``is``   per group, ``M`` draws from a multivariate Student-t (5 df) centred on the conditional
         mean with the conditional covariance of the last phase's samples (saemix's ``llis``);
         ``log L_i = log mean_m p(y_i | psi_m) N(psi_m; mu_i, Psi) / t(psi_m)``. Its Monte-Carlo
         SE is the delta-method ``sqrt(sum_i var(w_i) / (M mean(w_i)^2))``.
``gq``   adaptive Gauss-Hermite quadrature at the conditional modes (the AGQ deviance of
         :mod:`pymc_mixed.nonlinear.laplace` at these estimates; few random effects only).
``lin``  the Gaussian log-likelihood of the model linearized at the modes (:mod:`.linearized`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp

__all__ = ["loglik_is", "loglik_gq", "loglik_lin", "GQ_NODES"]

_LOG_2PI = float(np.log(2.0 * np.pi))
GQ_NODES = {1: 25, 2: 15, 3: 9, 4: 5}     # nodes per dimension by number of random effects


def loglik_is(ev, lay, beta, Psi, cmean, ccov, rng, M: int = 5000, nu: float = 5.0,
              chunk_obs: int = 2_000_000) -> tuple[float, float]:
    """Importance-sampling log-likelihood and its Monte-Carlo SE (see the module docstring).
    ``ev`` is the E-step's evaluator with the final parameters set."""
    G, k = cmean.shape
    L = np.linalg.cholesky(ccov + 1e-10 * np.diag(np.diag(Psi))[None])
    logdetL = np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)        # (G,)
    mu = lay.mu(beta)
    Pinv = np.linalg.inv(Psi)
    logdetPsi = np.linalg.slogdet(Psi)[1]
    ct = gammaln((nu + k) / 2) - gammaln(nu / 2) - 0.5 * k * np.log(nu * np.pi)
    lw = np.empty((M, G))
    step = max(1, chunk_obs // lay.n)
    for s in range(0, M, step):
        m = min(step, M - s)
        z = rng.standard_normal((m, G, k))
        w = rng.chisquare(nu, (m, G)) / nu
        psi = cmean[None] + np.einsum("gab,mgb->mga", L, z) / np.sqrt(w)[:, :, None]
        q = np.sum(z**2, axis=2) / w
        log_t = ct - logdetL[None] - 0.5 * (nu + k) * np.log1p(q / nu)
        d = psi - mu[None]
        log_prior = -0.5 * (k * _LOG_2PI + logdetPsi + np.einsum("mga,ab,mgb->mg", d, Pinv, d))
        lw[s:s + m] = ev(psi)[1] + log_prior - log_t
    lw = np.where(np.isnan(lw), -np.inf, lw)
    per_group = logsumexp(lw, axis=0) - np.log(M)
    wn = np.exp(lw - per_group[None])                   # weights / their mean
    se = float(np.sqrt(np.sum(wn.var(axis=0) / M)))
    return float(per_group.sum()), se


def loglik_gq(spec, kernel, theta, beta, sigma, shape, nodes: int) -> float:
    """Adaptive Gauss-Hermite quadrature with ``nodes`` nodes per random effect."""
    from ..laplace import LaplaceObjective

    obj = LaplaceObjective(spec, kernel, nAGQ=nodes)
    return -0.5 * obj.agq(np.r_[theta, beta, np.log(sigma), shape])


def loglik_lin(lay, lin) -> float:
    """Gaussian log-likelihood of the linearized model (exponential errors: on ``y``'s scale)."""
    Lc = np.linalg.cholesky(lin.V)
    a = np.linalg.solve(Lc, lin.e[:, :, None])[:, :, 0]
    logdet = 2.0 * np.log(np.diagonal(Lc, axis1=1, axis2=2)).sum()
    val = -0.5 * (logdet + np.sum(a**2) + lay.n * _LOG_2PI)
    return float(val + lay.spec.error_model.log_jacobian(lay.spec.y))
