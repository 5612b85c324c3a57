"""Adaptive Gauss-Hermite quadrature (AGQ) for GLMMs with one grouping factor.

With a single random-effects term the groups are conditionally independent, so the marginal
likelihood is a product of ``p``-dimensional integrals, one per level ``j``:

    L_j = int p(y_j | u) phi_p(u) du.

Centred at the conditional mode ``u_j*`` (from PIRLS) and scaled by the Cholesky factor
``L_j`` of the conditional precision ``H_j = T'Z_j'W_j Z_j T + I`` (the diagonal block of the
PIRLS factor), ``u = u_j* + L_j^{-T} z`` turns it into an integral against ``phi_p(z)``:

    L_j = |L_j|^{-1} int p(y_j | u(z)) phi_p(u(z)) / phi_p(z) phi_p(z) dz
        ~= |L_j|^{-1} sum_k w_k exp(log p(y_j | u_k) - |u_k|^2 / 2 + |z_k|^2 / 2),

with the tensor-product Gauss-Hermite rule ``(z_k, w_k)`` for the standard normal (``nAGQ``
points per dimension, ``nAGQ^p`` in all). ``nAGQ = 1`` (``z = 0``, ``w = 1``) is exactly the
Laplace approximation. lme4 and MixedModels.jl allow ``nAGQ > 1`` only for a scalar term
(``p = 1``); here ``(1 + x | g)`` works too. Every normalizing constant is kept, so the value is
on the same -2 log-likelihood scale as the Laplace fit (lme4 drops the saturated-model term for
``nAGQ > 1``).
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from .pirls import LaplaceObjective

__all__ = ["gauss_hermite", "AGQObjective", "check_agq", "MAX_AGQ_NODES", "MAX_AGQ_WORK"]


def gauss_hermite(k: int, p: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product Gauss-Hermite rule for the standard ``p``-variate normal.

    Returns nodes ``(k^p, p)`` and log-weights ``(k^p,)``; the weights sum to one.
    """
    x, w = np.polynomial.hermite_e.hermegauss(k)
    w = w / w.sum()
    nodes = np.array(list(itertools.product(x, repeat=p))).reshape(-1, p)
    logw = np.array([np.log(w[list(i)]).sum() for i in itertools.product(range(k), repeat=p)])
    return nodes, logw


# AGQ evaluates every observation at every node of its level's grid: (n, nAGQ^p) arrays per
# evaluation. Above these limits a fit would run for minutes or exhaust memory.
MAX_AGQ_NODES = 1000          # nAGQ^p, nodes per level
MAX_AGQ_WORK = 5e7            # n * nAGQ^p, values per evaluation


def check_agq(spec, nAGQ: int, max_nodes: int = MAX_AGQ_NODES,
              max_work: float = MAX_AGQ_WORK) -> None:
    """AGQ needs a single random-effects term and a bounded grid (``nAGQ^p`` nodes per level
    at most ``max_nodes``, ``n nAGQ^p`` at most ``max_work``); say so otherwise."""
    if isinstance(nAGQ, bool) or nAGQ < 0 or int(nAGQ) != nAGQ:
        raise ValueError(f"nAGQ must be a whole number >= 0, got {nAGQ!r}")
    if nAGQ <= 1:
        return
    if len(spec.reterms) != 1:
        terms = ", ".join(f"({' + '.join(t.cnames)} | {t.group})" for t in spec.reterms)
        raise ValueError(f"nAGQ > 1 needs a single random-effects term (one grouping factor); "
                         f"this model has {len(spec.reterms)}: {terms}. Use the Laplace "
                         f"approximation (nAGQ = 1)")
    p = spec.reterms[0].p
    nodes = int(nAGQ) ** p
    limit = min(max_nodes, max_work / max(spec.n, 1))
    if nodes > limit:
        best = 1
        while (best + 1) ** p <= limit:
            best += 1
        raise ValueError(
            f"nAGQ = {nAGQ} for a term with {p} random effects per level needs {nAGQ}^{p} = "
            f"{nodes} quadrature nodes per level, above the limit of {int(limit)} (at most "
            f"{max_nodes} nodes, and {max_work:.0e} values for all {spec.n} observations): "
            f"use nAGQ <= {best}" + (" or" if best > 1 else ",") + " the Laplace approximation "
            f"(nAGQ = 1)")


class AGQObjective(LaplaceObjective):
    """-2 log-likelihood by adaptive Gauss-Hermite quadrature, a function of
    ``(theta, beta[, log dispersion])`` (PIRLS over ``u``, as the default Laplace form)."""

    def __init__(self, data, nAGQ: int, tol: float = 1e-6):
        check_agq(data.spec, nAGQ)
        super().__init__(data, fast=False, tol=tol)
        self.nAGQ = int(nAGQ)
        t = data.reterms[0]
        self.term = t
        self.nodes, self.logw = gauss_hermite(self.nAGQ, t.p)
        self.half_z2 = 0.5 * np.sum(self.nodes**2, axis=1)
        self._sum_by_level = sp.csr_matrix(
            (np.ones(data.n), (t.refs, np.arange(data.n))), shape=(t.nlevels, data.n))

    def laplace(self) -> float:
        """AGQ value at the modes PIRLS left (the Laplace value when ``nAGQ = 1``)."""
        if self.nAGQ == 1:
            return super().laplace()
        d, pr, t = self.data, self.pirls, self.term
        theta, _, disp = self._last
        T = t.T(theta)
        L = pr.system.L11                                  # (l, p, p): H_j = L_j L_j'
        ustar = pr.u.reshape(t.nlevels, t.p)
        # u_jk = u_j* + L_j^{-T} z_k, for every level j and node k: (l, K, p)
        Linv_T = np.swapaxes(np.linalg.inv(L), 1, 2)
        shift = np.einsum("jab,kb->jka", Linv_T, self.nodes)
        ujk = ustar[:, None, :] + shift
        # eta_i at node k moves by z_i' T shift_{j(i) k}
        zt = t.z @ T                                       # (n, p): z_i' T
        deta = np.einsum("ia,ika->ik", zt, shift[t.refs])  # (n, K)
        eta = pr.eta[:, None] + deta
        fam = d.family
        mu = fam.linkinv(eta)
        if not fam.valid_mu(mu):
            return np.inf
        r = d.resp
        ll = fam.loglik_obs(_broadcast(r), mu, disp)       # (n, K)
        llj = self._sum_by_level @ ll                     # (l, K)
        expo = llj - 0.5 * np.sum(ujk**2, axis=2) + self.half_z2[None, :] + self.logw[None, :]
        top = expo.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(expo - top).sum(axis=1))
        logdetL = np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
        return float(2.0 * logdetL - 2.0 * lse.sum())


def _broadcast(r):
    """A GLMResponse whose arrays broadcast against (n, K) means."""
    from ..families import GLMResponse

    return GLMResponse(y=r.y[:, None], n=r.n[:, None], pw=r.pw[:, None], wt=r.wt[:, None],
                       const_obs=r.const_obs[:, None])
