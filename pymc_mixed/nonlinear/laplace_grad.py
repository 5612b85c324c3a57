"""The exact gradient of the FOCE (Laplace) deviance in ``(theta, beta)``, for error models
whose weights do not depend on the mean (constant, exponential).

With ``x`` any of theta, beta and ``u_j(x)`` the conditional modes (notation of
:mod:`.pnls`: ``ZL_i = Lambda' E_i J_i`` the Jacobian of observation ``i``'s working mean in
its level's ``u``, ``g_j = u_j - sum_i r_i ZL_i`` the half-gradient of ``pen_j``):

    D(x) = sum_j log|H_j| + n log(prss) + const,   H_j = I + sum_i ZL_i ZL_i'
    d prss / dx = partial derivative at fixed u (the modes minimize prss: envelope theorem)
    du_j / dx  = -K_j^-1 dg_j/dx|_u,   K_j = H_j - Lambda' (sum_i r_i E_i Hf_i E_i') Lambda
    d log|H_j| = tr(H_j^-1 dH_j),  dH_j = sum_i dZL_i ZL_i' + ZL_i dZL_i',
    dZL_i = dLambda' E_i J_i + Lambda' E_i Hf_i dphi_i,  dphi_i = A_i dbeta + E_i d(Lambda u_j)

``Hf_i`` (P, P), the second derivatives of the working mean in ``phi``, come from
central differences of the exact (autodiff) Jacobian (relative error ~1e-10), so the
gradient is exact up to that: no finite differences of the objective itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FoceGradient"]


class FoceGradient:
    """``value_and_grad(x)`` of :meth:`LaplaceObjective.foce` (same ``x`` layout)."""

    def __init__(self, obj):
        self.obj = obj
        spec, lay = obj.spec, obj.lay
        if not lay.exact_newton:
            raise NotImplementedError("the FOCE gradient needs weights free of the mean")
        # A_i, row i of each parameter's fixed design
        n, P = spec.n, spec.P
        self.At = np.empty((spec.p, n, P))     # (p, n, P): dphi / dbeta
        for j in range(P):
            unit = np.zeros((n, P))
            unit[:, j] = 1.0
            self.At[:, :, j] = spec.fixed_jacobian(unit).T

    def _hessians(self, phi):
        """(n, P, P) second derivatives of the working mean by central differences of the
        exact J (2P kernel calls, ~1e-10 relative; forward differences, ~1e-8, cost the
        quasi-Newton optimizer more than twice the evaluations at its end)."""
        kernel, em = self.obj.kernel, self.obj.spec.error_model
        n, P = phi.shape
        h = 1e-5 * (1.0 + np.max(np.abs(phi)))
        out = np.empty((n, P, P))
        for q in range(P):
            e = np.zeros(P)
            e[q] = h
            Jp = em.working_mean(*kernel.fj(phi + e))[1]
            Jm = em.working_mean(*kernel.fj(phi - e))[1]
            out[:, :, q] = (Jp - Jm) / (2.0 * h)
        return 0.5 * (out + np.swapaxes(out, 1, 2))

    def value_and_grad(self, x):
        """FOCE deviance and its gradient at ``x``."""
        obj = self.obj
        val = obj.foce(x)
        if not np.isfinite(val):
            return val, np.full(len(x), np.nan)
        return val, self._grad(x)

    def _grad(self, x):
        obj, lay, spec = self.obj, self.obj.lay, self.obj.spec
        theta, beta, _ = obj.split(x)
        m = obj.modes
        Lam = lay.Lam(theta)
        dLam, refs = lay._Lmap, lay.refs
        nth, n, M = spec.ntheta, spec.n, len(x)
        phi = lay.phi(spec.phi_fixed(beta), lay.b(m.U, Lam))
        Jw = m.Jw
        Hf = self._hessians(phi)
        m.Hc = lay.effects_matrix(Hf)      # fresh second derivatives for the next mode search
        r = m.r
        # dphi at fixed u, one row per direction l of x: (M, n, P)
        dphi_p = np.empty((M, n, spec.P))
        dphi_p[:nth] = lay.from_effects((m.U @ np.swapaxes(dLam, 1, 2))[:, refs])
        dphi_p[nth:] = self.At
        Z = lay.to_effects(Jw)
        ZL = Z @ Lam
        prss = float(m.pen.sum())
        dprss = -2.0 * dphi_p.reshape(M, -1) @ (r[:, None] * Jw).ravel()
        dZL_lam = np.zeros((M, n, lay.k))
        dZL_lam[:nth] = Z[None] @ dLam

        def dZL(dphi):   # Lambda' E_i Hf_i dphi_i, per observation: P^2 vector operations
            Hd = np.zeros_like(dphi)
            for p in range(spec.P):
                for q in range(spec.P):
                    Hd[..., p] += Hf[:, p, q] * dphi[..., q]
            return dZL_lam + lay.to_effects(Hd) @ Lam

        dr_p = -np.sum(dphi_p * Jw, axis=2)                                # (M, n)
        dg = -lay.group_sum(np.transpose(dr_p[:, :, None] * ZL + r[:, None] * dZL(dphi_p),
                                         (1, 0, 2)))                         # (G, M, k)
        H = np.eye(lay.k) + lay.group_sum(ZL[:, :, None] * ZL[:, None, :])
        K = H - Lam.T @ lay.group_sum(r[:, None, None] * lay.effects_matrix(Hf)) @ Lam
        du = -np.linalg.solve(K, np.swapaxes(dg, 1, 2))                   # (G, k, M)
        dphi = dphi_p + lay.from_effects((np.transpose(du, (2, 0, 1)) @ Lam.T)[:, refs])
        # d log|H_j| = 2 sum_i ZL_i' H_j^-1 dZL_i: no (G, M, k, k) array of dH
        Q = (np.linalg.inv(H)[refs] @ ZL[:, :, None])[:, :, 0]
        dlogdet = 2.0 * np.sum(dZL(dphi) * Q, axis=(1, 2))
        return dlogdet + n * dprss / prss

    def hessian(self, x, rel: float = 1e-4) -> np.ndarray:
        """Forward differences of the exact gradient: dim(x) + 1 gradients."""
        x = np.asarray(x, float)
        h = rel * np.maximum(np.abs(x), 1e-2)
        g0 = self.value_and_grad(x)[1]
        cols = []
        for i in range(len(x)):   # forward differences of the (accurate) gradient
            e = np.zeros(len(x))
            e[i] = h[i]
            cols.append((self.value_and_grad(x + e)[1] - g0) / h[i])
        Hs = np.column_stack(cols)
        return 0.5 * (Hs + Hs.T)


def minimize_foce(grad: FoceGradient, x0, lower, gtol: float = 1e-7):
    """Quasi-Newton (NLopt's LD_LBFGS) on the FOCE deviance with its exact gradient (a few
    dozen evaluations where BOBYQA takes ~200). Returns an
    :class:`~pymc_mixed.fit.optimize.OptSummary`; its return value is ``SUCCESS`` when the
    projected gradient is below ``gtol`` (relative to 1 + |deviance|) at the end, whatever
    stopped the line search (round-off of the objective, ~1e-11 relative, often does)."""
    import time

    import nlopt

    from ..fit.optimize import OptSummary

    x0 = np.asarray(x0, float)
    lower = np.asarray(lower, float)
    best = {"val": np.inf, "x": x0, "g": None}
    calls = [0]

    def fun(x, g):
        calls[0] += 1
        val, gr = grad.value_and_grad(x)
        if not np.isfinite(val) or not np.all(np.isfinite(gr)):
            val, gr = 1e300, np.zeros_like(x)
        if val < best["val"]:
            best.update(val=val, x=x.copy(), g=gr)
        if g.size:
            g[:] = gr
        return float(val)

    opt = nlopt.opt(nlopt.LD_LBFGS, len(x0))
    opt.set_min_objective(fun)
    opt.set_lower_bounds(lower)
    opt.set_ftol_rel(1e-15)
    opt.set_xtol_rel(1e-12)
    opt.set_maxeval(2000)
    t0 = time.perf_counter()
    try:
        opt.optimize(x0)
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        code = "ROUNDOFF_LIMITED"
    except (RuntimeError, getattr(nlopt, "runtime_error", RuntimeError)) as err:
        code = f"NLopt failure: {err!r}"
    x, val, g = best["x"], best["val"], best["g"]
    pg = np.where((x <= lower) & (g > 0), 0.0, g)       # projected gradient at the bounds
    ok = np.max(np.abs(pg)) <= gtol * (1.0 + abs(val))
    return OptSummary(initial=x0, final=x, fmin=float(val), feval=calls[0],
                      optimizer="LD_LBFGS (NLopt), exact gradient",
                      returnvalue="SUCCESS" if ok else f"FAILURE ({code})", lower=lower,
                      ftol_rel=1e-15, ftol_abs=0.0, xtol_abs=0.0, maxfeval=2000,
                      seconds=time.perf_counter() - t0)
