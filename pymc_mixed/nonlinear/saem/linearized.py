"""The model linearized around each group's conditional mode, group by group, padded.

Around ``psi_i*``: ``y_i ~ N(f_i* - Z_i (psi_i* - mu_i), V_i)``, ``V_i = Z_i Psi Z_i' + S_i``
(working scale), ``Z_i = d f / d psi`` (autodiff Jacobian of the compiled kernel), ``S_i`` the
error variances at ``f_i*`` and ``D_i = d mean / d beta = J_i A_i``. Groups are padded to the
largest group: padded rows have ``V = 1`` and zero derivatives and residual, so they add nothing
to quadratic forms, traces or log-determinants. saemix and Monolix compute the Fisher
information and the "lin" log-likelihood from this model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Linearized", "linearize"]


@dataclass
class Linearized:
    """Padded per-group pieces (G groups, m rows each)."""

    D: np.ndarray        # (G, m, p)   d mean / d beta
    Z: np.ndarray        # (G, m, k)   d mean / d psi
    e: np.ndarray        # (G, m)      working residual of the linearized mean
    s: np.ndarray        # (G, m)      error SD (1 on padded rows)
    f: np.ndarray        # (G, m)      original-scale mean (0 on padded rows)
    mask: np.ndarray     # (G, m)      real rows
    V: np.ndarray        # (G, m, m)


def linearize(lay, kernel, beta, Psi, sigma, shape, psi_star) -> Linearized:
    """The linearized model at the modes ``psi_star`` (G, k); see the module docstring."""
    spec = lay.spec
    em = spec.error_model
    phi = lay.phi(psi_star[None], spec.phi_fixed(beta))[0]
    f, J = kernel.fj(phi)
    fw, Jw = em.working_mean(f, J)
    D = spec.fixed_jacobian(Jw)                               # (n, p)
    Z = Jw[:, lay.param_of]                                   # (n, k)
    d = psi_star - lay.mu(beta)
    e = em.working_response(spec.y) - fw + np.einsum("na,na->n", Z, d[lay.refs])
    s = sigma * em.g(f, np.asarray(shape, float))
    # padding: the position of each observation within its group
    order = np.argsort(lay.refs, kind="stable")
    pos = np.empty(lay.n, dtype=int)
    starts = np.r_[0, np.cumsum(lay.nobs)[:-1]]
    pos[order] = np.arange(lay.n) - np.repeat(starts, lay.nobs)
    G, m = lay.G, int(lay.nobs.max())
    idx = (lay.refs, pos)

    def pad(x, fill=0.0):
        out = np.full((G, m) + x.shape[1:], fill)
        out[idx] = x
        return out

    mask = pad(np.ones(lay.n), 0.0).astype(bool)
    Zp, sp_ = pad(Z), pad(s, 1.0)
    V = np.einsum("gia,ab,gjb->gij", Zp, Psi, Zp)
    V[:, np.arange(m), np.arange(m)] += sp_**2
    return Linearized(pad(D), Zp, pad(e), sp_, pad(f), mask, V)
