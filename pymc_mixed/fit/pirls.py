"""Penalized iteratively reweighted least squares (PIRLS) and the Laplace objective of a GLMM.

For fixed covariance parameters ``theta`` (and ``beta``, unless it is estimated jointly) the
conditional modes of the spherical random effects minimize the penalized deviance

    pdev(u) = -2 log p(y | eta) + ||u||^2,     eta = X beta + Z Lambda_theta u + offset,

up to terms free of ``u``. Each PIRLS iteration is one Fisher-scoring step: the weighted PLS
system of the linear mixed model with weights ``W = wt mu_eta^2 / Var(y)`` and the working
response, factored by the blocked Cholesky kernel; a step that does not lower ``pdev`` is halved.
The Laplace approximation to -2 log-likelihood is then (Bates et al. 2015; lme4's ``nAGQ = 1``)

    -2 log L(theta, beta) ~= -2 log p(y | u*) + ||u*||^2 + log det(Lambda'Z'WZ Lambda + I),

with every normalizing constant of ``log p(y | u)`` kept. Two forms, as lme4:

* default (``nAGQ = 1``): PIRLS over ``u`` only, ``(theta, beta)`` optimized outside;
* fast (``nAGQ = 0``): PIRLS over ``(u, beta)`` jointly, only ``theta`` optimized outside.

Families with a dispersion (Gaussian ``sigma``, Gamma ``phi``, negative binomial ``k``) have it
optimized outside as well, on the log scale.
"""

from __future__ import annotations

import numpy as np

from ..linalg import make_system
from .glmdata import GLMMData, PIRLSFailure, check_separation, glm_fit  # noqa: F401  (re-exported)

__all__ = ["GLMMData", "PIRLS", "PIRLSFailure", "LaplaceObjective", "glm_fit"]


class PIRLS:
    """The conditional modes for given ``theta`` (and ``beta`` unless ``joint``).

    ``run`` leaves the factor of the system at the weights of the returned modes, so
    ``logdet()`` is the Laplace term there. Modes of the last successful call are the next
    call's starting point (warm start).

    Parameters
    ----------
    data : :class:`GLMMData`.
    joint : estimate ``beta`` together with ``u`` (lme4's ``nAGQ = 0``).
    tol : convergence when the largest change of ``u`` (and of ``beta`` scaled by its
        standard error) in one Fisher step is below ``tol``; the factor is then refreshed
        once at the new modes, so the objective is accurate to about ``tol^2``.
    maxit : largest number of Fisher steps.
    """

    def __init__(self, data: GLMMData, joint: bool = False, tol: float = 1e-6, maxit: int = 60):
        self.data = data
        self.joint = joint
        self.tol = tol
        self.maxit = maxit
        X = data.X if joint else data.X[:, :0]
        self.system = make_system(data.reterms, X, np.zeros(data.n), None)
        self.u = np.zeros(data.q)
        self.beta = np.zeros(data.p)
        self.iterations = 0
        self.total_iterations = 0
        self._theta = None
        self._disp = None
        self._fresh = False

    # -- pieces ------------------------------------------------------------------------------------
    def _pdev(self, eta, u, dispersion):
        fam = self.data.family
        mu = fam.linkinv(eta)
        if not fam.valid_mu(mu):
            return np.inf, mu
        d = fam.pirls_deviance(self.data.resp, mu, dispersion) + float(u @ u)
        return (d if np.isfinite(d) else np.inf), mu

    def _weights(self, eta, mu, dispersion):
        fam, r = self.data.family, self.data.resp
        mu_eta = fam.mu_eta(eta)
        var = fam.variance(mu, dispersion)
        w = r.wt * mu_eta * mu_eta / var
        return w, (r.y - mu) / mu_eta

    def _factor(self, theta, eta, mu, off, dispersion):
        """Weights and working response at ``eta``; factor; return the Fisher step's target."""
        w, zres = self._weights(eta, mu, dispersion)
        s = self.system
        s.set_weights(w, eta - off + zres)
        s.update(theta)
        return w

    def _what(self) -> str:
        fam = self.data.family
        return f"{fam.name} family with {fam.link} link"

    def _warm_u(self, theta):
        """The last modes, moved to the new ``theta`` so that ``b = Lambda u`` stays put (the
        random effects, not their spherical version, change little between evaluations).
        Returns ``(u, same_b)``; ``same_b`` says ``b`` (hence ``eta``) did not change."""
        u = self.u.copy()
        old = self._theta
        if old is None:
            return u, False
        same_b = True
        start, k = 0, 0
        for t in self.data.reterms:
            sl = slice(start, start + t.q)
            T_new, T_old = t.T(theta[k:k + t.ntheta]), t.T(old[k:k + t.ntheta])
            if np.array_equal(T_new, T_old):
                pass
            elif np.all(np.diag(T_new) > 1e-8):
                if t.p == 1:
                    u[sl] *= T_old[0, 0] / T_new[0, 0]
                else:
                    b = u[sl].reshape(t.nlevels, t.p) @ T_old.T
                    u[sl] = np.linalg.solve(T_new, b.T).T.ravel()
            else:
                same_b = False
                if np.all(np.diag(T_new) == 0):
                    u[sl] = 0.0
            start += t.q
            k += t.ntheta
        return u, same_b

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, theta, beta=None, dispersion=None, u0=None, beta0=None):
        """PIRLS at ``theta`` (and fixed ``beta`` unless joint). Returns ``(u, beta, pdev)``;
        raises :class:`PIRLSFailure` if no finite penalized deviance can be reached."""
        d = self.data
        theta = np.asarray(theta, dtype=float)
        if u0 is None:
            u, same_b = self._warm_u(theta)
        else:
            u, same_b = np.asarray(u0, dtype=float).copy(), False
        if self.joint:
            same_beta = beta0 is None
            beta = (self.beta if beta0 is None else np.asarray(beta0, dtype=float)).copy()
        else:
            beta = np.asarray(beta, dtype=float)
            same_beta = np.array_equal(beta, self.beta)
        # The cross-products left by the last call hold the weights at its final eta; with
        # b and beta unchanged they are the weights at this call's start: only refactor.
        reuse = self._fresh and same_b and same_beta and dispersion == self._disp
        self._fresh = False
        Xb_off = d.X @ beta + d.offset
        off = d.offset if self.joint else Xb_off
        eta = Xb_off + d.Z @ d.Lambda_u(theta, u)
        pdev, mu = self._pdev(eta, u, dispersion)
        if not np.isfinite(pdev):  # warm start unusable: from u = 0
            u[:] = 0.0
            eta = Xb_off.copy()
            reuse = False
            pdev, mu = self._pdev(eta, u, dispersion)
            if not np.isfinite(pdev):
                raise PIRLSFailure(f"the linear predictor at the starting values gives means "
                                   f"outside the range of the {self._what()} (overflow in "
                                   f"the link?)")
        se_scale = None
        converged = False
        for it in range(1, self.maxit + 1):
            if reuse and it == 1:
                self.system.update(theta)
            else:
                self._factor(theta, eta, mu, off, dispersion)
            u_new, b_new = self.system.solve()
            if not self.joint:
                b_new = beta
            du, db = u_new - u, b_new - beta
            step = 1.0
            for _ in range(12):
                u_try, b_try = u + step * du, beta + step * db
                eta_try = d.X @ b_try + d.offset + d.Z @ d.Lambda_u(theta, u_try) \
                    if self.joint else Xb_off + d.Z @ d.Lambda_u(theta, u_try)
                pdev_try, mu_try = self._pdev(eta_try, u_try, dispersion)
                if pdev_try <= pdev + 1e-10 * (1.0 + abs(pdev)):
                    break
                step *= 0.5
            else:
                # No decrease even for tiny steps: at the minimum up to round-off, or diverging.
                if np.max(np.abs(du), initial=0.0) < 1e-4:
                    converged = True
                    break
                raise PIRLSFailure(f"PIRLS step-halving failed to reduce the penalized deviance "
                                   f"({pdev:.6g}) after {it} iterations: the modes may lie "
                                   f"outside the mean space of the {self._what()}")
            change = step * np.max(np.abs(du), initial=0.0)
            if self.joint and len(db):
                if se_scale is None:  # beta in standard-error units: Rxx' db
                    se_scale = self.system.Rxx()
                change = max(change, step * np.max(np.abs(se_scale.T @ db)))
            u, beta, eta, pdev, mu = u_try, b_try, eta_try, pdev_try, mu_try
            if change < self.tol:
                converged = True
                break
        self.iterations = it
        self.total_iterations += it
        if not converged:
            raise PIRLSFailure(f"PIRLS did not converge in {self.maxit} iterations")
        # refresh the factor at the final modes: the Laplace term is evaluated there
        self._factor(theta, eta, mu, off, dispersion)
        self.u, self.beta = u, beta
        self.mu, self.eta = mu, eta
        self._theta = theta.copy()
        self._disp = dispersion
        self._fresh = True
        return u, beta, pdev


class LaplaceObjective:
    """-2 log-likelihood of a GLMM by the Laplace approximation, full scale.

    ``fast=False``: a function of ``x = (theta, beta[, log dispersion])``; ``fast=True``: of
    ``x = (theta[, log dispersion])``, with ``beta`` the joint mode found by PIRLS.
    Non-finite values (PIRLS failure) are returned as ``inf`` so an optimizer backs off.
    """

    def __init__(self, data: GLMMData, fast: bool = False, tol: float = 1e-6):
        self.data = data
        self.fast = fast
        self.pirls = PIRLS(data, joint=fast, tol=tol)
        self.nt, self.p = data.ntheta, data.p
        self.neval = 0
        self.failures = 0
        self.last_error = "no evaluation yet"

    def split(self, x):
        """``x`` -> (theta, beta or None, dispersion or None)."""
        x = np.asarray(x, dtype=float)
        theta = x[:self.nt]
        k = self.nt
        beta = None
        if not self.fast:
            beta = x[k:k + self.p]
            k += self.p
        disp = float(np.exp(x[k])) if self.data.has_dispersion else None
        return theta, beta, disp

    def laplace(self) -> float:
        """The objective at the modes PIRLS left (call after ``run``)."""
        d, pr = self.data, self.pirls
        _, _, disp = self._last
        ll = d.family.loglik(d.resp, pr.mu, disp)
        return float(-2.0 * ll + pr.u @ pr.u + pr.system.logdet())

    @property
    def has_gradient(self) -> bool:
        """Analytic gradients need a canonical link (Fisher weights = observed information), no
        dispersion parameter and the dense-Schur kernel (for the leverages)."""
        fam = self.data.family
        return (fam.is_canonical and not fam.has_dispersion
                and hasattr(self.pirls.system, "leverages"))

    def gradient(self) -> np.ndarray:
        """Gradient of the objective at the point of the last call (see ``has_gradient``).

        With ``s = d(-log p)/d eta``, ``W`` the weights, ``W'`` their derivative in ``eta``,
        leverages ``h = diag(Z Lambda H^-1 Lambda'Z')`` and ``c = h W'``: the derivative of
        ``log|H|`` through the modes is carried by one extra solve ``a = A^-1 [Lambda'Z'c; X'c]``
        (``A`` the PIRLS matrix, ``X'c`` only in the joint form) and ``e = Z Lambda a_u (+ X
        a_beta)``. Then with ``r = 2 s + c - W e``::

            dF/dbeta = X'r
            dF/dtheta_(ij) = sum_l (Z'r)_li u_lj - a_lj (Z's)_li + 2 [(I - H^-1_ll) T^-1]_ji

        where ``Lambda'Z'WZ = (H - I) Lambda^-1`` turned the trace of the direct term into the
        conditional covariances (singular ``T`` falls back to finite differences).
        """
        d, pr = self.data, self.pirls
        theta, _, _ = self._last
        fam, r = d.family, d.resp
        eta, mu, u = pr.eta, pr.mu, pr.u
        system = pr.system
        mu_eta = fam.mu_eta(eta)
        V = fam.variance(mu)
        W = r.wt * mu_eta * mu_eta / V
        s = -r.wt * (r.y - mu) * mu_eta / V
        c = system.leverages() * (r.wt * fam.dvariance(mu) * mu_eta)
        b = d.Lambda_t(theta, d.Zt @ c)
        if self.fast:
            b = np.concatenate([b, d.X.T @ c])
        a = system.solve_rhs(b)
        q = d.q
        e = d.Z @ d.Lambda_u(theta, a[:q])
        if self.fast:
            e += d.X @ a[q:]
        rv = 2.0 * s + c - W * e
        Ztr, Zts = d.Zt @ rv, d.Zt @ s
        condvar = system.condvar_u()
        g = np.empty(self.nt)
        start, k = 0, 0
        singular = []
        for t, cv in zip(d.reterms, condvar):
            sl = slice(start, start + t.q)
            ul, al = u[sl].reshape(t.nlevels, t.p), a[:q][sl].reshape(t.nlevels, t.p)
            R, S = Ztr[sl].reshape(t.nlevels, t.p), Zts[sl].reshape(t.nlevels, t.p)
            T = t.T(theta[k:k + t.ntheta])
            dg = np.diag(T)
            if np.all(dg > 0):
                Tinv = np.linalg.inv(T)
                direct = 2.0 * np.einsum("lab,bc->ac", np.eye(t.p)[None] - cv, Tinv)
            elif t.p == 1:
                direct = np.zeros((1, 1))  # limit as theta -> 0
            else:
                direct = None
            rows, cols = t.tril_index
            for m, (i, j) in enumerate(zip(rows, cols)):
                if direct is None:
                    singular.append(k + m)
                    continue
                g[k + m] = R[:, i] @ ul[:, j] - al[:, j] @ S[:, i] + direct[j, i]
            start += t.q
            k += t.ntheta
        out = g if self.fast else np.concatenate([g, d.X.T @ rv])
        if singular:  # forward differences, then back to the point
            x0 = np.concatenate([theta, [] if self.fast else self._last[1]])
            f0 = self.laplace()
            for idx in singular:
                xp = x0.copy()
                xp[idx] += 1e-6
                out[idx] = (self(xp) - f0) / 1e-6
            self(x0)
        return out

    def __call__(self, x) -> float:
        self.neval += 1
        theta, beta, disp = self.split(x)
        self._last = (theta, beta, disp)
        try:
            self.pirls.run(theta, beta, disp)
        except (PIRLSFailure, np.linalg.LinAlgError, FloatingPointError) as err:
            self.failures += 1
            self.last_error = str(err)
            return np.inf
        val = self.laplace()
        if not np.isfinite(val):
            self.last_error = "the objective is not finite at the conditional modes"
            return np.inf
        return val
