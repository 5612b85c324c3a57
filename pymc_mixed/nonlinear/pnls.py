"""Batched penalized Gauss-Newton (PNLS) for the conditional modes of the random effects.

With one grouping factor the groups are conditionally independent: level ``j`` has its own
``k = sum_t p_t`` spherical random effects ``u_j`` (all terms on that factor side by side) and

    b_j = Lambda u_j,    Lambda = blockdiag(T_t),    u_j ~ N(0, sigma^2 I)   (lme4's scaling)

For fixed ``(beta, theta)`` the mode minimizes, per group,

    pen_j(u_j) = sum_{i in j} w_i (y_i - f_i(phi_i))^2 + |u_j|^2,   w_i = 1 / g(f_i)^2

on the error model's working scale. A Gauss-Newton step solves ``H_j d_j = Lambda' Z_j' W r_j - u_j``
with ``H_j = I + Lambda' Z_j' W Z_j Lambda`` (``Z = J B``, the Jacobian in ``b``): all groups at
once, one stacked ``numpy.linalg.solve`` on (G, k, k), with step halving per group. No Python
loop over groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["FactorLayout", "Modes", "conditional_modes"]


class FactorLayout:
    """The random effects of a spec whose terms all share one grouping factor, per level."""

    def __init__(self, spec):
        groups = spec.groups
        if len(groups) != 1:
            raise NotImplementedError(
                f"FO, FOCE and nAGQ need a single grouping factor for now; this model has "
                f"{', '.join(groups)}. Use method='LME', which handles several (and nested) "
                "grouping factors")
        self.spec = spec
        t0 = spec.reterms[0]
        self.refs = t0.refs
        self.G = t0.nlevels
        self.k = sum(t.p for t in spec.reterms)
        starts = np.cumsum([0] + [t.p for t in spec.reterms])
        self.slices = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]
        # the parameter and design column of each of the k columns of a level
        self.param_of = np.array(sum(spec.term_params, []), dtype=int)
        self.z = np.column_stack([t.z for t in spec.reterms])          # (n, k)
        n = spec.n
        self.S = sp.csr_matrix((np.ones(n), (self.refs, np.arange(n))), shape=(self.G, n))
        self.nobs = np.bincount(self.refs, minlength=self.G)

    def Lam(self, theta: np.ndarray) -> np.ndarray:
        """``blockdiag(T_t)``: the (k, k) relative covariance factor of one level."""
        L = np.zeros((self.k, self.k))
        for sl, T in zip(self.slices, self.spec.Ts(theta)):
            L[sl, sl] = T
        return L

    def b(self, U: np.ndarray, Lam: np.ndarray) -> np.ndarray:
        """(G, k) random effects ``b_j = Lambda u_j`` from (G, k) modes."""
        return U @ Lam.T

    def b_blocks(self, U: np.ndarray, Lam: np.ndarray) -> list[np.ndarray]:
        """Per-term (levels, p_t) random effects, as ``ModelSpec.b_blocks``."""
        B = self.b(U, Lam)
        return [B[:, sl] for sl in self.slices]

    def phi(self, phi0: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``phi0 + B b``: add each level's random effects to its observations' parameters."""
        out = phi0.copy()
        zb = self.z * B[self.refs]
        for c, j in enumerate(self.param_of):
            out[:, j] += zb[:, c]
        return out

    def ZL(self, Jw: np.ndarray, Lam: np.ndarray) -> np.ndarray:
        """(n, k) ``Z Lambda`` rows: the Jacobian of the working mean in ``u``."""
        return (Jw[:, self.param_of] * self.z) @ Lam

    def group_sum(self, x: np.ndarray) -> np.ndarray:
        """Sum rows of ``x`` (n, ...) within levels: (G, ...)."""
        shp = x.shape
        return (self.S @ x.reshape(shp[0], -1)).reshape((self.G,) + shp[1:])


@dataclass
class Modes:
    """The state at the conditional modes: everything the Laplace and AGQ objectives read."""

    U: np.ndarray        # (G, k) modes of u (lme4's scaling: u ~ N(0, sigma^2 I))
    f: np.ndarray        # (n,) mean at the modes (original scale)
    r: np.ndarray        # (n,) working residuals
    w: np.ndarray        # (n,) weights 1 / g(f)^2
    ZL: np.ndarray       # (n, k)
    L: np.ndarray        # (G, k, k) Cholesky factors of H_j
    pen: np.ndarray      # (G,) penalized weighted RSS per group
    iterations: int
    converged: bool


def _evaluate(lay, kernel, yw, phi0, U, Lam, shape):
    spec = lay.spec
    em = spec.error_model
    f, J = kernel.fj(lay.phi(phi0, lay.b(U, Lam)))
    fw, Jw = em.working_mean(f, J)
    g = em.g(f, shape)
    w = 1.0 / g**2
    r = yw - fw
    pen = lay.group_sum(w * r**2) + np.sum(U**2, axis=1)
    pen = np.where(np.isfinite(pen), pen, np.inf)
    return f, Jw, r, w, pen


def conditional_modes(lay: FactorLayout, kernel, beta, theta, shape=(), U0=None,
                      tol: float = 0.0, maxit: int = 50) -> Modes:
    """Gauss-Newton with per-group step halving, all groups at once; see the module docstring.

    Group ``j`` is done when its Newton decrement ``d_j' H_j d_j`` falls below
    ``tol + 1e-16 (1 + pen_j)`` (round-off); the loop ends when every group is done.
    """
    spec = lay.spec
    shape = np.asarray(shape, float)
    yw = spec.error_model.working_response(spec.y)
    phi0 = spec.phi_fixed(np.asarray(beta, float))
    Lam = lay.Lam(np.asarray(theta, float))
    U = np.zeros((lay.G, lay.k)) if U0 is None else np.array(U0, float)
    f, Jw, r, w, pen = _evaluate(lay, kernel, yw, phi0, U, Lam, shape)
    eye = np.eye(lay.k)
    converged = False
    for it in range(1, maxit + 1):
        ZL = lay.ZL(Jw, Lam)
        H = eye + lay.group_sum(w[:, None, None] * ZL[:, :, None] * ZL[:, None, :])
        grad = lay.group_sum((w * r)[:, None] * ZL) - U
        d = np.linalg.solve(H, grad[:, :, None])[:, :, 0]
        dec = np.einsum("ja,ja->j", d, grad)
        if not np.all(np.isfinite(dec)):
            break
        # a group is done when its Newton decrement reaches round-off of its objective
        active = dec > tol + 1e-16 * (1.0 + pen)
        if not active.any():
            converged = True
            break
        step = active.astype(float)
        for _ in range(30):  # halve the step only in the groups whose objective went up
            Un = U + step[:, None] * d
            fn, Jn, rn, wn, pn = _evaluate(lay, kernel, yw, phi0, Un, Lam, shape)
            worse = active & (pn > pen + 1e-13 * (1 + pen))
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        if worse.any():  # no progress possible in these groups: keep their old point
            U = np.where(worse[:, None], U, Un)
            f, Jw, r, w, pen = _evaluate(lay, kernel, yw, phi0, U, Lam, shape)
            converged = bool(np.all(dec[worse] < 1e-8 * (1.0 + pen[worse])))
            if worse.all() or np.array_equal(worse, active):
                break
        else:
            U, f, Jw, r, w, pen = Un, fn, Jn, rn, wn, pn
    ZL = lay.ZL(Jw, Lam)
    H = eye + lay.group_sum(w[:, None, None] * ZL[:, :, None] * ZL[:, None, :])
    L = np.linalg.cholesky(H)
    return Modes(U=U, f=f, r=r, w=w, ZL=ZL, L=L, pen=pen, iterations=it, converged=converged)
