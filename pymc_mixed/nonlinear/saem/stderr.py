"""Standard errors from the Fisher information of the linearized model (saemix's ``fim``).

For Gaussian ``y_i ~ N(m_i(beta), V_i(Psi, a, b))`` (see :mod:`.linearized`)

    I_beta = sum D_i' V_i^-1 D_i,     I_uv = 1/2 sum tr(V_i^-1 dV_i/du V_i^-1 dV_i/dv)

over every structural element of Psi (variances and, for correlated blocks, covariances:
``dV/dPsi_ab = Z (E_ab + E_ba) Z'``) and the error parameters. The Jacobians come from the
compiled kernel's autodiff.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fisher_information"]


def _error_derivs(em, lin, sigma, shape) -> list[np.ndarray]:
    """dV/d(error parameters) on the diagonal: (G, m) each, nlmefit's ``a`` (and ``b``)."""
    s, mask = lin.s, lin.mask
    if em.name == "proportional":
        return [np.where(mask, 2.0 * s * np.abs(lin.f), 0.0)]   # s = b |f|
    if em.name == "combined":
        return [np.where(mask, 2.0 * s, 0.0), np.where(mask, 2.0 * s * np.abs(lin.f), 0.0)]
    return [np.where(mask, 2.0 * s, 0.0)]                        # s = a


def fisher_information(lay, lin, sigma, shape) -> np.ndarray:
    """The (p + q, p + q) Fisher information in the order of
    :func:`~pymc_mixed.nonlinear.saem.driver.param_names` (beta, Psi elements, error)."""
    em = lay.spec.error_model
    Vinv = np.linalg.inv(lin.V)
    Ibeta = np.einsum("gia,gij,gjb->ab", lin.D, Vinv, lin.D)
    ZtVinv = np.einsum("gia,gij->gaj", lin.Z, Vinv)               # (G, k, m)
    ZVZ = np.einsum("gaj,gjb->gab", ZtVinv, lin.Z)                # Z' V^-1 Z (G, k, k)
    rows, cols = np.nonzero(np.tril(lay.cov_mask))
    # Psi elements: tr(V^-1 Z E_ab Z' V^-1 Z E_cd Z') = (Z'V^-1 Z)_bc (Z'V^-1 Z)_da
    def E(a, b):
        return [(a, b)] if a == b else [(a, b), (b, a)]
    q_psi = len(rows)
    errs = _error_derivs(em, lin, sigma, shape)
    q = q_psi + len(errs)
    Ivar = np.zeros((q, q))
    for u in range(q_psi):
        for v in range(u, q_psi):
            val = sum(np.sum(ZVZ[:, b, c] * ZVZ[:, d, a])
                      for a, b in E(rows[u], cols[u]) for c, d in E(rows[v], cols[v]))
            Ivar[u, v] = Ivar[v, u] = 0.5 * val
    # error parameters: dV = diag(w): tr(V^-1 Z E Z' V^-1 diag(w)) = sum_j w_j (V^-1 Z E Z' V^-1)_jj
    for i, w in enumerate(errs):
        r = q_psi + i
        for u in range(q_psi):
            val = sum(np.einsum("gj,gj->", ZtVinv[:, a, :] * ZtVinv[:, b, :], w)
                      for a, b in E(rows[u], cols[u]))
            Ivar[r, u] = Ivar[u, r] = 0.5 * val
        for j, w2 in enumerate(errs[: i + 1]):
            val = np.einsum("gij,gj,gji,gi->", Vinv, w2, Vinv, w)
            Ivar[r, q_psi + j] = Ivar[q_psi + j, r] = 0.5 * val
    p = Ibeta.shape[0]
    out = np.zeros((p + q, p + q))
    out[:p, :p] = Ibeta
    out[p:, p:] = Ivar
    return out
