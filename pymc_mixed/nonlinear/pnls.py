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
        # sums within levels by np.add.reduceat over the rows sorted by level (a few
        # microseconds, where a sparse product costs tens): the order and the level starts
        order = np.argsort(self.refs, kind="stable")
        self.order = None if np.array_equal(order, np.arange(n)) else order
        self.starts = np.r_[0, np.cumsum(self.nobs)[:-1]]
        self.empty = bool((self.nobs == 0).any())   # reduceat cannot sum an empty level
        # (n, k, P) map from a level's k effects to an observation's P parameters
        self.E = np.zeros((n, self.k, spec.P))
        self.E[:, np.arange(self.k), self.param_of] = self.z
        self._Lmap = None
        self.exact_newton = spec.error_model.name in ("constant", "exponential")

    def _Lam_slow(self, theta: np.ndarray) -> np.ndarray:
        L = np.zeros((self.k, self.k))
        for sl, T in zip(self.slices, self.spec.Ts(theta)):
            L[sl, sl] = T
        return L

    def Lam(self, theta: np.ndarray) -> np.ndarray:
        """``blockdiag(T_t)``: the (k, k) relative covariance factor of one level.

        ``T`` is linear in theta (lme4's parametrization: theta fills its lower triangle), so
        ``Lambda`` is one precomputed (ntheta, k, k) map applied to theta: the optimizers
        call this hundreds of times."""
        if self._Lmap is None:
            eye = np.eye(self.spec.ntheta)
            self._Lmap = np.stack([self._Lam_slow(e) for e in eye])
        return np.tensordot(np.asarray(theta, float), self._Lmap, axes=1)

    def b(self, U: np.ndarray, Lam: np.ndarray) -> np.ndarray:
        """(G, k) random effects ``b_j = Lambda u_j`` from (G, k) modes."""
        return U @ Lam.T

    def b_blocks(self, U: np.ndarray, Lam: np.ndarray) -> list[np.ndarray]:
        """Per-term (levels, p_t) random effects, as ``ModelSpec.b_blocks``."""
        B = self.b(U, Lam)
        return [B[:, sl] for sl in self.slices]

    def phi(self, phi0: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``phi0 + B b``: add each level's random effects to its observations' parameters."""
        return phi0 + self.from_effects(B[self.refs])

    def to_effects(self, X: np.ndarray) -> np.ndarray:
        """(..., n, P) per-parameter rows -> (..., n, k) per-effect rows: ``E_i X_i``."""
        return X[..., self.param_of] * self.z

    def from_effects(self, B: np.ndarray) -> np.ndarray:
        """(..., n, k) per-effect rows -> (..., n, P): ``E_i' B_i`` (columns may share a
        parameter, so add column by column; no (n, k, P) contraction: einsum is slow there)."""
        out = np.zeros(B.shape[:-1] + (self.spec.P,))
        for c, j in enumerate(self.param_of):
            out[..., j] += B[..., c] * self.z[:, c]
        return out

    def effects_matrix(self, Hf: np.ndarray) -> np.ndarray:
        """(n, P, P) per-parameter matrices -> (n, k, k): ``E_i Hf_i E_i'``."""
        pa = self.param_of
        return Hf[:, pa][:, :, pa] * self.z[:, :, None] * self.z[:, None, :]

    def ZL(self, Jw: np.ndarray, Lam: np.ndarray) -> np.ndarray:
        """(n, k) ``Z Lambda`` rows: the Jacobian of the working mean in ``u``."""
        return (Jw[:, self.param_of] * self.z) @ Lam

    def group_sum(self, x: np.ndarray) -> np.ndarray:
        """Sum rows of ``x`` (n, ...) within levels: (G, ...)."""
        if self.empty:
            shp = x.shape
            return (self.S @ x.reshape(shp[0], -1)).reshape((self.G,) + shp[1:])
        if self.order is not None:
            x = x[self.order]
        return np.add.reduceat(x, self.starts, axis=0)


@dataclass
class Modes:
    """The state at the conditional modes: everything the Laplace and AGQ objectives read."""

    U: np.ndarray        # (G, k) modes of u (lme4's scaling: u ~ N(0, sigma^2 I))
    f: np.ndarray        # (n,) mean at the modes (original scale)
    r: np.ndarray        # (n,) working residuals
    w: np.ndarray        # (n,) weights 1 / g(f)^2
    ZL: np.ndarray       # (n, k)
    L: np.ndarray        # (G, k, k) Cholesky factors of H_j (Gauss-Newton)
    pen: np.ndarray      # (G,) penalized weighted RSS per group
    iterations: int
    converged: bool
    steps: np.ndarray = None     # (G,) Newton steps each group took
    halved: np.ndarray = None    # (G,) True where a step had to be halved
    Jw: np.ndarray = None        # (n, P) working Jacobian in phi at the modes
    Hc: np.ndarray = None        # (n, k, k) second derivatives used by the last Newton step


class _State:
    """``f``, working ``J``, residuals, weights and per-group objective at one ``U``."""

    def __init__(self, lay, kernel, yw, phi0, U, Lam, shape):
        em = lay.spec.error_model
        phi = lay.phi(phi0, lay.b(U, Lam))
        f, J = kernel.fj(phi)
        fw, Jw = em.working_mean(f, J)
        self.U, self.f, self.Jw, self.phi = U, f, Jw, phi
        self.w = 1.0 / em.g(f, shape)**2
        self.r = yw - fw
        pen = lay.group_sum(self.w * self.r**2) + np.sum(U**2, axis=1)
        self.pen = np.where(np.isfinite(pen), pen, np.inf)


def _second_derivatives(lay, kernel, phi, Jw):
    """Per observation, the (k, k) second derivatives of the working mean in a level's
    effects (before Lambda), by forward differences of the exact Jacobian along the k effect
    directions: k more kernel calls and no second compiled graph (whose graph rewriting costs
    seconds). Accurate to ~1e-8 relative, enough for Newton steps: the modes are the zero of
    the exact gradient whatever the step's Hessian."""
    em = lay.spec.error_model
    h = 1e-7 * (1.0 + np.max(np.abs(phi)))
    Hc = np.empty((lay.spec.n, lay.k, lay.k))
    for c in range(lay.k):
        fc, Jc = kernel.fj(phi + h * lay.E[:, c, :])
        Jwc = em.working_mean(fc, Jc)[1]
        Hc[:, :, c] = lay.to_effects((Jwc - Jw) / h)
    return 0.5 * (Hc + np.swapaxes(Hc, 1, 2))


def _positive_definite(H: np.ndarray) -> np.ndarray:
    """(G,) Sylvester's criterion on (G, k, k): all leading minors positive (with a margin of
    round-off); k small determinants are far cheaper than batched eigenvalues."""
    ok = np.ones(H.shape[0], bool)
    scale = np.abs(H).max(axis=(1, 2))
    for m in range(1, H.shape[1] + 1):
        ok &= np.linalg.det(H[:, :m, :m]) > 1e-10 * scale**m
    return ok


def _gn_system(lay, st, Lam):
    """``Z Lambda`` rows, the Gauss-Newton ``H_j`` and the (half) gradient ``-grad_j``."""
    ZL = lay.ZL(st.Jw, Lam)
    H = np.eye(lay.k) + lay.group_sum(st.w[:, None, None] * ZL[:, :, None] * ZL[:, None, :])
    grad = lay.group_sum((st.w * st.r)[:, None] * ZL) - st.U
    return ZL, H, grad


def _newton_direction(lay, st, Lam, H, grad, Hc):
    """Newton direction where the Hessian with second derivatives ``Hc`` is positive
    definite, Gauss-Newton elsewhere. GN converges linearly at a rate set by the residuals
    (about 30 steps to round-off on Theoph); Newton quadratically (a handful)."""
    # d2 f / du2 = Lambda' Hc_i Lambda; weighted by w r and summed per level
    R = lay.group_sum((st.w * st.r)[:, None, None] * Hc)
    HN = H - Lam.T @ R @ Lam
    ok = _positive_definite(HN)
    H = np.where(ok[:, None, None], HN, H)
    return np.linalg.solve(H, grad[:, :, None])[:, :, 0]


def _halving_step(make, st, d, active, halved):
    """The state after a step ``d`` in the ``active`` groups, halved (up to 30 times) only in
    the groups whose objective went up; ``halved`` marks them. Returns ``(new, worse)``,
    ``worse`` the groups still not improved."""
    step = active.astype(float)
    for _ in range(30):
        new = make(st.U + step[:, None] * d)
        worse = active & (new.pen > st.pen + 1e-13 * (1 + st.pen))
        if not worse.any():
            break
        halved |= worse
        step = np.where(worse, step / 2, step)
    return new, worse


def conditional_modes(lay: FactorLayout, kernel, beta, theta, shape=(), U0=None,
                      tol: float = 0.0, maxit: int = 100, newton: bool | None = None,
                      Hc=None) -> Modes:
    """Newton (or Gauss-Newton) with per-group step halving, all groups at once; see the
    module docstring. ``newton`` (default: when the weights do not depend on the mean) uses
    the exact per-group Hessian of the penalized objective for the steps; the modes are the
    same zero of its gradient either way. ``Hc`` (n, k, k): second derivatives of the mean
    in the effects from a nearby point, used until convergence slows (then recomputed).

    Group ``j`` is done when its Newton decrement ``d_j' grad_j`` falls below
    ``tol + 1e-16 (1 + pen_j)`` (round-off); the loop ends when every group is done.
    """
    spec = lay.spec
    shape = np.asarray(shape, float)
    newton = lay.exact_newton if newton is None else (newton and lay.exact_newton)
    yw = spec.error_model.working_response(spec.y)
    phi0 = spec.phi_fixed(np.asarray(beta, float))
    Lam = lay.Lam(np.asarray(theta, float))
    U = np.zeros((lay.G, lay.k)) if U0 is None else np.array(U0, float)
    def make(U):
        return _State(lay, kernel, yw, phi0, U, Lam, shape)

    st = make(U)
    steps = np.zeros(lay.G, dtype=int)
    halved = np.zeros(lay.G, dtype=bool)
    converged, prev, final = False, None, None
    for it in range(1, maxit + 1):
        ZL, H, grad = _gn_system(lay, st, Lam)
        d = np.linalg.solve(H, grad[:, :, None])[:, :, 0]
        dec = np.einsum("ja,ja->j", d, grad)
        if not np.all(np.isfinite(dec)):
            break
        # a group is done when its (Gauss-Newton) decrement reaches round-off of its objective
        active = dec > tol + 1e-16 * (1.0 + st.pen)
        if not active.any():
            converged, final = True, (ZL, H)
            break
        if newton:   # the second derivatives only where a step is taken
            # k kernel calls: reuse the last ones (from a nearby point, or the previous
            # evaluation's modes) while the decrement keeps falling fast
            slow = prev is not None and np.any(dec[active] > 1e-3 * prev[active])
            if Hc is None or slow:
                Hc = _second_derivatives(lay, kernel, st.phi, st.Jw)
            d = _newton_direction(lay, st, Lam, H, grad, Hc)
        prev = dec
        steps += active
        new, worse = _halving_step(make, st, d, active, halved)
        if worse.any():  # no progress possible in these groups: keep their old point
            st = make(np.where(worse[:, None], st.U, new.U))
            converged = bool(np.all(np.abs(dec[worse]) < 1e-8 * (1.0 + st.pen[worse])))
            if worse.all() or np.array_equal(worse, active):
                break
        else:
            st = new
    ZL, H = final if final is not None else _gn_system(lay, st, Lam)[:2]
    L = np.linalg.cholesky(H)
    return Modes(U=st.U, f=st.f, r=st.r, w=st.w, ZL=ZL, L=L, pen=st.pen, iterations=it,
                 converged=converged, steps=steps, halved=halved, Jw=st.Jw, Hc=Hc)
