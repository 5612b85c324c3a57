"""The M-step: closed forms for the random parameters' fixed effects, Psi and the error scale;
numeric maximization for the combined error model and for parameters without random effect.

Closed forms from the statistics of :mod:`.approximation` (``mu_i = A_i beta``):

    beta  = (sum A_i' Psi^-1 A_i)^-1 sum A_i' Psi^-1 s1_i       (GLS with the previous Psi)
    Psi   = (s2 - sum mu_i s1_i' - sum s1_i mu_i' + sum mu_i mu_i') / G     (block structure kept)
    sigma = sqrt(sres / n)

In the annealing phase the variances shrink by at most the factor ``anneal`` per iteration,
so that the chains explore before the estimates settle (saemix's simulated annealing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize

from ..kernel import obs_loglik

__all__ = ["Params", "mstep", "residual_stat", "numeric_error", "numeric_fixed"]


@dataclass
class Params:
    """The population parameters SAEM estimates."""

    beta: np.ndarray
    Psi: np.ndarray
    sigma: float
    shape: np.ndarray        # error model shape (combined: b / a)


def residual_stat(em, y: np.ndarray, f: np.ndarray, shape) -> float:
    """Chains' average of ``sum ((y - f) / g)^2`` on the working scale (f: (C, n))."""
    fw, _ = em.working_mean(f)
    r = (em.working_response(y) - fw) / em.g(f, np.asarray(shape, float))
    return float(np.mean(np.sum(r**2, axis=1)))


def mstep(stats, p: Params, lay, n: int, anneal: float | None, error_closed: bool) -> Params:
    """New parameters from the statistics (``anneal``: the annealing factor, or ``None``)."""
    Ag, G = lay.Ag, lay.G
    beta = p.beta.copy()
    R = lay.beta_random
    if R.size:
        Pinv = np.linalg.inv(p.Psi)
        A = Ag[:, :, R]
        lhs = np.einsum("gak,ab,gbl->kl", A, Pinv, A)
        rhs = np.einsum("gak,ab,gb->k", A, Pinv, stats.s1)
        beta[R] = np.linalg.solve(lhs, rhs)
    mu = Ag @ beta
    Psi = (stats.s2 - mu.T @ stats.s1 - stats.s1.T @ mu + mu.T @ mu) / G
    Psi = np.where(lay.cov_mask, 0.5 * (Psi + Psi.T), 0.0)
    sigma = p.sigma
    if error_closed:
        sigma = float(np.sqrt(max(stats.sres, 0.0) / n))
    if anneal is not None:
        d_old, d_new = np.diag(p.Psi), np.diag(Psi)
        Psi[np.diag_indices_from(Psi)] = np.maximum(d_new, anneal * d_old)
        if error_closed:
            sigma = max(sigma, np.sqrt(anneal) * p.sigma)
    Psi = _positive_definite(Psi)
    return replace(p, beta=beta, Psi=Psi, sigma=sigma)


def _positive_definite(Psi: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Keep Psi positive definite (a variance can reach 0 when a random effect is absent)."""
    w, V = np.linalg.eigh(Psi)
    if w.min() > floor * max(1.0, w.max()):
        return Psi
    w = np.maximum(w, floor * max(1.0, w.max()))
    return (V * w) @ V.T


def _minimize(fun, x0, optim_fun: str):
    method = "Nelder-Mead" if optim_fun == "fminsearch" else "BFGS"
    opts = {"xatol": 1e-6, "fatol": 1e-8, "maxiter": 200 * len(x0)} if method == "Nelder-Mead" \
        else {"gtol": 1e-6}
    return minimize(fun, x0, method=method, options=opts).x


def numeric_error(em, y, f, p: Params, gamma: float, optim_fun: str) -> Params:
    """Combined error ``sd = a + b |f|``: maximize the chains' average log-likelihood over
    ``(log a, log b)`` at the current samples, then move by ``gamma`` (as saemix)."""
    a0, b0 = p.sigma, max(p.sigma * float(p.shape[0]), 1e-8)

    def negll(x):
        a, b = np.exp(x)
        return -float(np.mean(np.sum(obs_loglik(em, y, f, a, np.array([b / a])), axis=1)))

    a, b = np.exp(_minimize(negll, np.log([a0, b0]), optim_fun))
    a, b = a0 + gamma * (a - a0), b0 + gamma * (b - b0)
    return replace(p, sigma=float(a), shape=np.array([b / a]))


def numeric_fixed(ev, psi, p: Params, lay, gamma: float, optim_fun: str) -> Params:
    """Fixed effects of parameters without random effect: maximize the chains' average
    log-likelihood at the current samples, then move by ``gamma``."""
    F = lay.beta_fixed
    beta = p.beta.copy()

    def negll(x):
        b = beta.copy()
        b[F] = x
        ev.set_params(b, p.sigma, p.shape)
        return -float(np.mean(np.sum(ev(psi)[1], axis=1)))

    new = _minimize(negll, beta[F], optim_fun)
    beta[F] = beta[F] + gamma * (new - beta[F])
    return replace(p, beta=beta)
