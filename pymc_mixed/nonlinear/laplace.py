"""FO, FOCE (Laplace at the conditional modes, Gauss-Newton Hessian, as lme4's nlmer) and
adaptive Gauss-Hermite quadrature for nonlinear mixed models with one grouping factor.

Deviances (-2 log-likelihood, every constant kept) on the working scale of the error model
(see :mod:`.error_models`), with ``H_j = L_j L_j' = I + Lambda' Z_j' W_j Z_j Lambda``:

FOCE   ``2 sum log|L_j| - sum log w_i + n (1 + log(2 pi prss / n)) - 2 logjac``, the residual
       scale profiled out (``sigma^2 = prss / n``), ``prss`` the penalized weighted RSS at the
       modes. A function of ``(theta, beta, r)``.
FO     the same model linearized at ``b = 0``: ``y ~ N(f_0, sigma^2 (W^-1 + Z Lambda Lambda' Z'))``,
       ``log|V_j|`` and ``r' V_j^-1 r`` by the determinant lemma and Woodbury through ``H_j``.
AGQ    ``sum_j 2 log|L_j| - 2 logsumexp_k(ll_j(v_jk) - |v_jk|^2/2 + |z_k|^2/2 + log w_k)`` with
       nodes ``v_jk = v_j* + L_j^{-T} z_k`` around the modes (spherical ``v = u / sigma``), a
       function of ``(theta, beta, log sigma, r)``. With one node it is FOCE at that sigma, and
       equal to FOCE's value at ``sigma^2 = prss / n``.
"""

from __future__ import annotations

import numpy as np

from ..fit.agq import gauss_hermite
from .kernel import obs_loglik
from .pnls import FactorLayout, conditional_modes

__all__ = ["LaplaceObjective"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class LaplaceObjective:
    """FO / FOCE / AGQ deviances of one nonlinear spec; see the module docstring.

    ``modes`` holds the state at the conditional modes of the last evaluation.
    """

    def __init__(self, spec, kernel, nAGQ: int = 1, tol: float = 0.0):
        self.spec = spec
        self.kernel = kernel
        self.lay = FactorLayout(spec)
        self.nAGQ = int(nAGQ)
        self.tol = tol
        self.modes = None
        self.se_method = "finite-difference Hessian of the deviance"
        self.warm = True        # warm-start the modes from the last evaluation (guarded)
        self.warm_steps = 8
        self.nth = spec.ntheta
        self.nshape = spec.error_model.nshape
        self.logjac = spec.error_model.log_jacobian(spec.y)
        if self.nAGQ > 1:
            self.nodes, self.logw = gauss_hermite(self.nAGQ, self.lay.k)
            self.half_z2 = 0.5 * np.sum(self.nodes**2, axis=1)

    # -- parameter vectors ----------------------------------------------------------------
    def split(self, x: np.ndarray, with_sigma: bool = False):
        """``x`` -> (theta, beta, [log sigma,] shape)."""
        x = np.asarray(x, float)
        a, b = self.nth, self.nth + self.spec.p
        theta, beta = x[:a], x[a:b]
        if with_sigma:
            return theta, beta, x[b], x[b + 1:]
        return theta, beta, x[b:]

    def find_modes(self, theta, beta, shape):
        """Conditional modes at ``(theta, beta, shape)``.

        Cold (from ``u = 0``, as nlmer) when ``warm`` is off or nothing is known yet.
        Otherwise from the previous evaluation's modes, guarded: a warm start can settle in
        another local mode of a group (Theoph's flip-flop ``ka <-> ke``), which would make
        the objective depend on the optimizer's path. A group whose warm search was
        suspicious (a halved step, or more than ``warm_steps`` Newton steps) is solved again
        from ``u = 0`` and keeps the better mode by its penalized objective.
        ``fit_laplace`` checks the optimum with a cold search."""
        if not self.warm or self.modes is None:
            m = conditional_modes(self.lay, self.kernel, beta, theta, shape, tol=self.tol)
        else:
            m = conditional_modes(self.lay, self.kernel, beta, theta, shape, U0=self.modes.U,
                                  tol=self.tol, Hc=self.modes.Hc)
            bad = m.halved | (m.steps > self.warm_steps) | ~np.isfinite(m.pen)
            if bad.any() or not m.converged:
                m = self._recheck_cold(theta, beta, shape, m, bad if m.converged else None)
        if np.all(np.isfinite(m.U)):
            self.modes = m
        return m

    def _recheck_cold(self, theta, beta, shape, m, bad):
        """Solve the ``bad`` groups (all when None) from ``u = 0``; keep per group the mode
        with the lower penalized objective."""
        lay = self.lay
        bad = np.ones(lay.G, bool) if bad is None else bad
        U0 = np.where(bad[:, None], 0.0, m.U)
        cold = conditional_modes(lay, self.kernel, beta, theta, shape, U0=U0, tol=self.tol)
        take = bad & ~(m.pen < cold.pen)     # ties go to the cold mode (nlmer's definition)
        if take.all():
            return cold
        if not take.any():
            return m
        U = np.where(take[:, None], cold.U, m.U)
        return conditional_modes(lay, self.kernel, beta, theta, shape, U0=U, tol=self.tol)

    # -- objectives ----------------------------------------------------------------------
    def foce(self, x) -> float:
        """FOCE/Laplace deviance with the residual scale profiled out."""
        theta, beta, shape = self.split(x)
        try:
            m = self.find_modes(theta, beta, shape)
        except np.linalg.LinAlgError:
            return np.inf
        prss = float(m.pen.sum())
        n = self.spec.n
        logdet = 2.0 * np.log(np.diagonal(m.L, axis1=1, axis2=2)).sum()
        val = logdet - np.log(m.w).sum() + n * (1.0 + _LOG_2PI + np.log(prss / n))
        return float(val - 2.0 * self.logjac)

    def sigma(self) -> float:
        """The profiled residual scale at the last FOCE evaluation."""
        return float(np.sqrt(self.modes.pen.sum() / self.spec.n))

    def _fo_system(self, x):
        """The model linearized at ``b = 0``: per group the Cholesky factor ``L`` of
        ``I + Lambda'Z'WZ Lambda``, ``a = L^-1 Lambda'Z'W r``, and the weights ``w``,
        residuals ``r`` (working scale); ``L`` is None where ``H`` is not positive definite."""
        theta, beta, shape = self.split(x)
        lay, spec = self.lay, self.spec
        em = spec.error_model
        f, J = self.kernel.fj(spec.phi_fixed(beta))
        fw, Jw = em.working_mean(f, J)
        w = 1.0 / em.g(f, np.asarray(shape, float))**2
        r = em.working_response(spec.y) - fw
        ZL = lay.ZL(Jw, lay.Lam(theta))
        H = np.eye(lay.k) + lay.group_sum(w[:, None, None] * ZL[:, :, None] * ZL[:, None, :])
        c = lay.group_sum((w * r)[:, None] * ZL)
        try:
            L = np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            return None, None, w, r
        return L, np.linalg.solve(L, c[:, :, None])[:, :, 0], w, r

    def fo(self, x) -> float:
        """FO deviance: the model linearized at ``b = 0``, scale profiled out."""
        L, a, w, r = self._fo_system(x)
        if L is None:
            return np.inf
        Q = float(np.sum(w * r**2) - np.sum(a**2))
        n = self.spec.n
        if not np.isfinite(Q) or Q <= 0:
            return np.inf
        logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
        val = logdet - np.log(w).sum() + n * (1.0 + _LOG_2PI + np.log(Q / n))
        return float(val - 2.0 * self.logjac)

    def fo_sigma(self, x) -> float:
        """The profiled FO scale ``sqrt(Q / n)`` at ``x``."""
        _, a, w, r = self._fo_system(x)
        return float(np.sqrt((np.sum(w * r**2) - np.sum(a**2)) / self.spec.n))

    def agq(self, x) -> float:
        """AGQ deviance at ``(theta, beta, log sigma, shape)`` (nAGQ nodes per dimension)."""
        theta, beta, logsig, shape = self.split(x, with_sigma=True)
        try:
            m = self.find_modes(theta, beta, shape)
        except np.linalg.LinAlgError:
            return np.inf
        sigma = float(np.exp(logsig))
        if self.nAGQ <= 1:
            nodes, logw, half = np.zeros((1, self.lay.k)), np.zeros(1), np.zeros(1)
        else:
            nodes, logw, half = self.nodes, self.logw, self.half_z2
        lay, spec = self.lay, self.spec
        vstar = m.U / sigma
        LinvT = np.swapaxes(np.linalg.inv(m.L), 1, 2)             # (G, k, k)
        v = vstar[:, None, :] + np.einsum("jab,Kb->jKa", LinvT, nodes)   # (G, K, k)
        Lam = lay.Lam(theta)
        Bk = sigma * np.einsum("jKa,ba->Kjb", v, Lam)              # (K, G, k) = sigma Lam v
        phi0 = spec.phi_fixed(beta)
        zb = lay.z[None] * Bk[:, lay.refs, :]                      # (K, n, k)
        phi = np.repeat(phi0[None], len(nodes), axis=0)
        for c, j in enumerate(lay.param_of):
            phi[:, :, j] += zb[:, :, c]
        f = self.kernel.f_batch(phi)                               # (K, n)
        ll = obs_loglik(spec.error_model, spec.y, f, sigma, np.asarray(shape, float))
        llj = lay.group_sum(ll.T)                                  # (G, K)
        expo = llj - 0.5 * np.sum(v**2, axis=2) + half[None, :] + logw[None, :]
        expo = np.where(np.isfinite(expo), expo, -np.inf)
        top = expo.max(axis=1, keepdims=True)
        if not np.all(np.isfinite(top)):
            return np.inf
        lse = top[:, 0] + np.log(np.exp(expo - top).sum(axis=1))
        logdet = 2.0 * np.log(np.diagonal(m.L, axis1=1, axis2=2)).sum()
        return float(logdet - 2.0 * lse.sum())


def _fd_hessian(fun, x: np.ndarray, rel: float = 1e-4) -> np.ndarray:
    """Central finite-difference Hessian (``fun`` is a deviance of a few parameters)."""
    k = len(x)
    h = rel * np.maximum(np.abs(x), 1e-2)
    H = np.empty((k, k))
    f0 = fun(x)
    for i in range(k):
        for j in range(i, k):
            if i == j:
                e = np.zeros(k)
                e[i] = h[i]
                H[i, i] = (fun(x + e) - 2 * f0 + fun(x - e)) / h[i] ** 2
                continue
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h[i], h[j]
            H[i, j] = H[j, i] = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej)
                                 + fun(x - ei - ej)) / (4 * h[i] * h[j])
    return H


def fit_laplace(spec, kernel, method: str, nAGQ: int, theta0, beta0, optimizer_opts=None):
    """Minimize the FO, FOCE or AGQ deviance with BOBYQA from ``(theta0, beta0)``.

    Returns ``(obj, theta, beta, sigma, shape, vcov_beta, optsum)``; ``vcov_beta`` is the
    fixed-effects block of ``2 H^-1``, ``H`` the central finite-difference Hessian of the
    deviance (the scale profiled out for FO/FOCE; in ``log sigma`` for AGQ), as lme4 does.
    """
    from ..fit.optimize import minimize_bobyqa

    em = spec.error_model
    obj = LaplaceObjective(spec, kernel, nAGQ=nAGQ)
    opts = dict(ftol_rel=1e-15, ftol_abs=1e-12, xtol_abs=1e-9)
    opts.update(optimizer_opts or {})
    x0 = np.r_[theta0, beta0, em.shape_init]
    lower = np.r_[spec.theta_lower, np.full(spec.p, -np.inf), em.shape_lower]
    fun = obj.fo if method == "FO" else obj.foce
    grad = None
    if method == "FOCE" and nAGQ <= 1 and obj.lay.exact_newton:
        from .laplace_grad import FoceGradient, minimize_foce

        grad = FoceGradient(obj)
        opt = minimize_foce(grad, x0, lower)
    if grad is None or not opt.converged:
        start = x0 if grad is None else opt.final
        opt = _bobyqa_twice(fun, start, lower, opts)
        grad = None
    if method != "FO":
        opt = _cold_check(obj, fun, opt, lower, opts)
    theta, beta, shape = obj.split(opt.final)
    sigma = obj.fo_sigma(opt.final) if method == "FO" else (fun(opt.final), obj.sigma())[1]
    idx = slice(spec.ntheta, spec.ntheta + spec.p)
    if nAGQ > 1:
        agq = LaplaceObjective(spec, kernel, nAGQ=nAGQ)
        x = np.r_[theta, beta, np.log(sigma), shape]
        lw = np.r_[spec.theta_lower, np.full(spec.p, -np.inf), -np.inf, em.shape_lower]
        opt3 = minimize_bobyqa(agq.agq, x, lw, initial_step=0.05 * np.abs(x) + 0.01, **opts)
        opt3.feval += opt.feval
        opt3.initial = opt.initial
        opt, obj = opt3, agq
        theta, beta, logsig, shape = agq.split(opt.final, with_sigma=True)
        sigma = float(np.exp(logsig))
        agq.warm = False    # differences of the objective need its cold, smooth form
        H = _fd_hessian(agq.agq, opt.final)
    elif grad is not None:
        H = grad.hessian(opt.final)
        obj.se_method = "Hessian of the deviance from its exact gradient (forward differences)"
    else:
        # the scale is profiled out: the inverse Hessian of the profiled deviance has the
        # same (theta, beta) block as the full one. Warm-started modes are converged to
        # ~1e-8 of the deviance, noise that differences over h^2 ~ 1e-9 would amplify
        obj.warm = False
        H = _fd_hessian(fun, opt.final)
    try:
        vcov = 2.0 * np.linalg.inv(H)[idx, idx]
    except np.linalg.LinAlgError:
        vcov = np.full((spec.p, spec.p), np.nan)
    return obj, theta, beta, sigma, shape, vcov, opt


def _bobyqa_twice(fun, x0, lower, opts):
    """BOBYQA, restarted once from its end: its trust region can stop short here."""
    from ..fit.optimize import minimize_bobyqa

    opt = minimize_bobyqa(fun, x0, lower, initial_step=0.1 * np.abs(x0) + 0.05, **opts)
    opt2 = minimize_bobyqa(fun, opt.final, lower, initial_step=0.01 * np.abs(opt.final) + 1e-3,
                           **opts)
    opt2.feval += opt.feval
    opt2.initial = opt.initial
    return opt2


def _cold_check(obj, fun, opt, lower, opts):
    """The warm-started modes must be the cold ones (nlmer's, from ``u = 0``) at the optimum.
    If a group's cold search finds another mode, optimize again with cold searches only."""
    from ..fit.optimize import minimize_bobyqa

    obj.warm = False
    cold = fun(opt.final)
    if abs(cold - opt.fmin) <= 1e-9 * (1.0 + abs(cold)):
        obj.warm = True
        return opt
    opt3 = minimize_bobyqa(fun, opt.final, lower, initial_step=0.01 * np.abs(opt.final) + 1e-3,
                           **opts)
    opt3.feval += opt.feval
    opt3.initial = opt.initial
    return opt3
