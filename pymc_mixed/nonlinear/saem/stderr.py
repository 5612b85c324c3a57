"""Standard errors: the Fisher information of the linearized model (saemix's ``fim``,
``ComputeStdErrors=True``) or Louis' observed information by stochastic approximation
(``"sa"``, :func:`louis_terms`).

For Gaussian ``y_i ~ N(m_i(beta), V_i(Psi, a, b))`` (see :mod:`.linearized`)

    I_beta = sum D_i' V_i^-1 D_i,     I_uv = 1/2 sum tr(V_i^-1 dV_i/du V_i^-1 dV_i/dv)

over every structural element of Psi (variances and, for correlated blocks, covariances:
``dV/dPsi_ab = Z (E_ab + E_ba) Z'``) and the error parameters. The Jacobians come from the
compiled kernel's autodiff.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fisher_information", "louis_terms"]


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


def louis_terms(lay, p, psi: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chains' averages of the complete-data score ``g`` and of ``H + g g'`` (``H`` its
    Hessian) in the parameters of :func:`~pymc_mixed.nonlinear.saem.driver.param_names`, at
    the samples ``psi`` (C, G, k) with means ``f`` (C, n). Stochastic approximation of both
    gives Louis' observed information ``-(E[H + g g'] - E[g] E[g]')`` (Kuhn & Lavielle 2005).

    Complete data: ``sum_i log N(psi_i; A_i beta, Psi) + sum_obs log N(y; f, s^2)`` with
    ``s = a`` (constant, exponential), ``b |f|`` (proportional) or ``a + b |f|`` (combined).
    """
    spec = lay.spec
    em = spec.error_model
    C, G, k = psi.shape
    P = np.linalg.inv(p.Psi)
    A = lay.Ag[:, :, lay.beta_random]                              # (G, k, pr)
    d = psi - lay.mu(p.beta)[None]                                 # (C, G, k)
    Pd = d @ P                                                     # (C, G, k)
    S = np.einsum("cga,cgb->cab", d, d)                            # (C, k, k)
    rows, cols = np.nonzero(np.tril(lay.cov_mask))
    Es = []
    for a, b in zip(rows, cols):
        E = np.zeros((k, k))
        E[a, b] = E[b, a] = 1.0
        Es.append(E)
    Es = np.array(Es)                                              # (q, k, k)
    PEP = P[None] @ Es @ P[None]                                   # (q, k, k)
    g_beta = np.einsum("gak,cga->ck", A, Pd)                       # (C, pr)
    g_psi = -0.5 * G * np.einsum("ab,qba->q", P, Es)[None] \
        + 0.5 * np.einsum("qab,cba->cq", PEP, S)
    H_bb = -np.einsum("gak,ab,gbl->kl", A, P, A)
    H_bp = -np.einsum("gak,qab,cgb->ckq", A, PEP, d)              # (C, pr, q)
    # d2/dPsi_u dPsi_v of -G/2 log|Psi| - tr(P S)/2, with dP = -P E_v P
    PE = P[None] @ Es                                              # (q, k, k)
    PS = P[None] @ S                                               # (C, k, k)
    H_pp = 0.5 * G * np.einsum("vab,uba->uv", PE, PE)[None] \
        - 0.5 * np.einsum("vab,ubc,xca->xuv", PE, PE, PS) \
        - 0.5 * np.einsum("uab,vbc,xca->xuv", PE, PE, PS)
    # error parameters: s per observation and ds/d(a, b)
    fw, _ = em.working_mean(f)
    r = em.working_response(spec.y)[None] - fw
    s = p.sigma * em.g(f, p.shape)
    ds = {"constant": [np.ones_like(f)], "exponential": [np.ones_like(f)],
          "proportional": [np.abs(f)], "combined": [np.ones_like(f), np.abs(f)]}[em.name]
    l1 = -1.0 / s + r**2 / s**3
    l2 = 1.0 / s**2 - 3.0 * r**2 / s**4
    g_err = np.stack([np.sum(l1 * x, axis=1) for x in ds], axis=1)              # (C, e)
    H_ee = np.stack([np.stack([np.sum(l2 * x * y, axis=1) for y in ds], axis=1)
                     for x in ds], axis=1)                                      # (C, e, e)
    q, e = len(rows), len(ds)
    idx = np.r_[lay.beta_random]
    npar = spec.p + q + e
    g = np.zeros((C, npar))
    H = np.zeros((C, npar, npar))
    g[:, idx] = g_beta
    g[:, spec.p:spec.p + q] = g_psi
    g[:, spec.p + q:] = g_err
    H[:, idx[:, None], idx[None, :]] = H_bb[None]
    H[:, idx[:, None], spec.p + np.arange(q)[None, :]] = H_bp
    H[:, spec.p + np.arange(q)[:, None], idx[None, :]] = H_bp.transpose(0, 2, 1)
    H[:, spec.p:spec.p + q, spec.p:spec.p + q] = H_pp
    H[:, spec.p + q:, spec.p + q:] = H_ee
    return g.mean(axis=0), (H + g[:, :, None] * g[:, None, :]).mean(axis=0)
