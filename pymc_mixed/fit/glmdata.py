"""What the GLMM estimators read from a spec (:class:`GLMMData`), the GLM fit that gives them
starting values, and the separation check."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..spec import term_factors
from .xbasis import FixedBasis

__all__ = ["GLMMData", "PIRLSFailure", "glm_fit", "check_separation"]


class PIRLSFailure(RuntimeError):
    """PIRLS could not find the conditional modes (divergence, overflow in the link)."""


class GLMMData:
    """What the GLMM estimators need from a :class:`~pymc_mixed.spec.ModelSpec`, in numbers:
    the family and prepared response, ``X``, the offset and ``Z`` as a sparse matrix."""

    def __init__(self, spec, orthonormal: bool = False):
        self.spec = spec
        self.family = spec.family
        self.resp = self.family.prepare(spec.y, spec.trials, spec.weights,
                                        **({"response": spec.response}
                                           if hasattr(self.family, "validate_trials") else {}))
        # ``orthonormal``: the estimators work in an orthonormal basis Q of X (see
        # :mod:`.xbasis`); beta, the optimizer's x and the curvature are mapped back to X's
        # columns by ``fit_glmm``. Else Q = X (objectives of X's coefficients, for tests).
        self.basis = FixedBasis(spec.X, transform=orthonormal)
        self.X = np.ascontiguousarray(self.basis.Q, dtype=float)
        self.offset = spec.offset_or_zero
        self.reterms = spec.reterms
        self.n, self.p, self.q = spec.n, spec.p, spec.q
        self.ntheta = spec.ntheta
        self.has_dispersion = bool(self.family.has_dispersion)
        blocks = []
        obs = np.arange(self.n)
        for t in self.reterms:
            cols = t.columns
            blocks.append(sp.csr_matrix((t.z.ravel(), (np.repeat(obs, t.p), cols.ravel())),
                                        shape=(self.n, t.q)))
        self.Z = sp.hstack(blocks, format="csr")
        self.Zt = self.Z.T.tocsr()

    def _apply_Lambda(self, theta: np.ndarray, x: np.ndarray, transpose: bool) -> np.ndarray:
        """``Lambda_theta x`` or ``Lambda_theta' x``, term by term (levels-major blocks)."""
        out, start = np.empty_like(x), 0
        for t, T in zip(self.reterms, term_factors(self.reterms, theta)):
            blk = x[start:start + t.q]
            if t.p == 1:
                out[start:start + t.q] = T[0, 0] * blk
            else:
                out[start:start + t.q] = (blk.reshape(t.nlevels, t.p) @ (T if transpose else T.T)
                                          ).ravel()
            start += t.q
        return out

    def Lambda_u(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``b = Lambda_theta u`` (term order)."""
        return self._apply_Lambda(theta, u, transpose=False)

    def Lambda_t(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``Lambda_theta' x`` (term order)."""
        return self._apply_Lambda(theta, x, transpose=True)

    def eta(self, theta, u, beta) -> np.ndarray:
        return self.X @ beta + self.offset + self.Z @ self.Lambda_u(theta, u)


def glm_fit(data: GLMMData, dispersion=None, maxit: int = 50, tol: float = 1e-10):
    """Maximum-likelihood GLM without random effects (IRLS with step-halving): the starting
    values of the GLMM fit. Returns ``(beta, mu, converged)``."""
    fam, r, X = data.family, data.resp, data.X
    mu = fam.mustart(r)
    eta = fam.linkfun(mu)
    beta = np.zeros(data.p)
    dev_old = np.inf
    converged = False
    for _ in range(maxit):
        mu_eta = fam.mu_eta(eta)
        w = r.wt * mu_eta**2 / fam.variance(mu, dispersion)
        z = eta - data.offset + (r.y - mu) / mu_eta
        sw = np.sqrt(w)
        b_new = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        step = 1.0
        for _ in range(20):  # step-halving towards the last accepted beta
            b_try = beta + step * (b_new - beta)
            eta_try = X @ b_try + data.offset
            mu_try = fam.linkinv(eta_try)
            dev = float(np.sum(fam.dev_resids(r.y, mu_try, r.wt, dispersion))) \
                if fam.valid_mu(mu_try) else np.inf
            if np.isfinite(dev) and dev <= dev_old + 1e-10 * (1 + abs(dev)):
                break
            step *= 0.5
        beta, eta, mu = b_try, eta_try, mu_try
        if abs(dev_old - dev) < tol * (abs(dev) + 0.1):
            converged = True
            break
        dev_old = dev
    return beta, mu, converged


def check_separation(data: GLMMData, beta, mu) -> str | None:
    """A message when a binomial GLM's fitted probabilities are numerically 0 or 1 at large
    coefficients: (quasi-)complete separation; else None."""
    fam = data.family
    if fam.name not in ("binomial", "bernoulli"):
        return None
    edge = (mu < 1e-8) | (mu > 1 - 1e-8)
    if edge.sum() and np.max(np.abs(beta), initial=0.0) > 10:
        return (f"fitted probabilities numerically 0 or 1 for {int(edge.sum())} observation(s) "
                f"with large coefficients: the data may be (quasi-)completely separated, and "
                f"the estimates of {', '.join(_big(data, beta))} may be infinite")
    return None


def _big(data, beta):
    names = data.spec.xnames
    return [n for n, b in zip(names, beta) if abs(b) > 10] or names
