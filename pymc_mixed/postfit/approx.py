"""A maximum-likelihood fit as posterior-shaped draws: the asymptotic normal approximation.

``normal_approximation(result)`` draws from the normal approximation at the optimum -- the
Laplace approximation of the posterior under flat priors, as pymc-extras' ``fit_laplace``
does -- and returns them with the names, dims and coordinates of the ``mle`` group
(:mod:`pymc_mixed.datatree`) and of a NUTS posterior (:mod:`pymc_mixed.bayes`), so every ArviZ
summary and plot takes an ML fit and a posterior alike.

How the draws are made:

* the parameters ``psi = (theta*, beta, log dispersion)`` -- ``theta*`` is ``theta`` with
  its diagonal elements (standard-deviation-like, >= 0) on the log scale -- are drawn from
  ``N(psi_hat, 2 H^-1)`` with ``H`` the Hessian of the non-profiled ``-2 log L`` in ``psi``.
  Both come from the fit's :class:`~pymc_mixed.results.Curvature`, handed over by its
  estimator: for a linear mixed model the exact deviance, differentiated in ``psi`` by the
  package's finite-difference Hessian; for a GLMM the Hessian of the Laplace/AGQ objective by
  the estimator's own means (central differences of its analytic gradient), with the chain
  rule for the log scale. The dispersion is the residual SD ``sigma`` of an LMM, the family's
  dispersion of a GLMM.
* diagonal ``theta`` elements at the boundary (below ``1e-4``: a singular fit) are held at
  their estimate; the normal approximation has no meaning there.
* REML fits are centred at the REML estimates with the curvature of the ML deviance.
* ``sd_g``, ``corr_g`` and ``sigma`` follow from each draw of ``theta`` and the dispersion;
  the random effects ``b_g`` are drawn from their conditional distribution at the estimates
  (the conditional modes and variances of ``ranef`` / ``condvar``, lme4's ``condVar``),
  independently across levels.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..datatree.build import corr_dim, corr_pairs
from ..spec import block_diag, coef_dim, factor_groups

__all__ = ["normal_approximation", "laplace_covariance"]

_BOUNDARY = 1e-4


class _Param:
    """The working parameterization ``psi`` of a fit and its map back to (theta, beta, disp)."""

    def __init__(self, result):
        spec = result.spec
        self.spec = spec
        self.is_lmm = spec.kind == "lmm"
        curv = result.curvature
        if curv is None:
            raise ValueError("the normal approximation needs the objective of the fit; nAGQ = 0 "
                             "fits profile beta out of theirs (refit with nAGQ >= 1)")
        self.theta, self.beta, disp = spec.layout.unpack(curv.x_hat)
        self.disp = None if disp is None else float(disp)
        diag = spec.theta_lower == 0
        self.log_idx = diag & (self.theta >= _BOUNDARY)
        self.fixed = diag & (self.theta < _BOUNDARY)
        self.free_theta = ~self.fixed
        x = self.natural()
        self.nt = spec.ntheta
        # positions of psi inside x (theta elements at the boundary are left out)
        self.keep = np.concatenate([self.free_theta, np.ones(len(x) - self.nt, dtype=bool)])
        self.logmask = np.concatenate([self.log_idx, np.zeros(len(x) - self.nt, dtype=bool)])
        if self.disp is not None:
            self.logmask[-1] = True
        self.x_hat = x

    def natural(self):
        parts = [self.theta, self.beta]
        if self.disp is not None:
            parts.append([self.disp])
        return np.concatenate(parts)

    def psi_hat(self):
        x = self.x_hat.copy()
        x[self.logmask] = np.log(x[self.logmask])
        return x[self.keep]

    def to_natural(self, psi):
        """(..., k) psi -> (..., len(x)) natural (theta, beta[, disp])."""
        psi = np.asarray(psi, dtype=float)
        x = np.broadcast_to(self.x_hat, psi.shape[:-1] + self.x_hat.shape).copy()
        x[..., self.keep] = psi
        x[..., self.logmask] = np.exp(x[..., self.logmask])
        return x

    def names(self) -> list[str]:
        names = list(self.spec.theta_names) + list(self.spec.xnames)
        if self.disp is not None:
            names.append("log(sigma)" if self.is_lmm else "log(dispersion)")
        for i in np.flatnonzero(self.logmask[:self.nt]):
            names[i] = f"log({names[i]})"
        return [n for n, k in zip(names, self.keep) if k]


def _hessian(result, par: _Param) -> np.ndarray:
    """Hessian of -2 log L in psi, from the curvature the estimator handed the result."""
    curv = result.curvature
    if curv.objective_hessian is None:
        # differentiate the deviance in psi itself, beta steps scaled by its standard errors
        dev, p = curv.deviance, result.spec.p

        def f(psi):
            return dev(par.to_natural(psi))

        psi0 = par.psi_hat()
        se = np.sqrt(np.clip(np.diag(result._vcov_beta), 0, None)) if p else np.zeros(0)
        steps = 1e-4 * np.maximum(np.abs(psi0), 1.0)
        beta_pos = np.arange(len(psi0))[int(par.free_theta.sum()):][:p]
        steps[beta_pos] = np.where(se > 0, 1e-3 * se, steps[beta_pos])
        return curv.hessian(f, psi0, steps)
    x_hat = np.asarray(curv.x_hat, dtype=float)
    Hx = curv.objective_hessian(x_hat)
    J = np.where(par.logmask, x_hat, 1.0)  # d x / d psi on the log scale is x
    H = Hx * np.outer(J, J)
    return H[np.ix_(par.keep, par.keep)]


def laplace_covariance(result):
    """``(names, psi_hat, cov)``: the normal approximation of the working parameters
    (see the module docstring) of a fit."""
    par = _Param(result)
    H = _hessian(result, par)
    H = 0.5 * (H + H.T)
    vals, vecs = np.linalg.eigh(H)
    if np.any(vals <= 0):
        warnings.warn("the Hessian of the deviance is not positive definite at the estimates; "
                      "the normal approximation clips its non-positive curvature",
                      UserWarning, stacklevel=3)
        vals = np.maximum(vals, 1e-8 * max(vals.max(), 1e-300))
    cov = (vecs / vals) @ vecs.T * 2.0
    return par.names(), par.psi_hat(), cov, par


def _group_draws(spec, theta, scale):
    """Per grouping factor: sd (S, k) and corr (S, k, k) or None, from theta draws (S, nt)."""
    covs = []
    for t, sl in zip(spec.reterms, spec.theta_slices):
        T = np.zeros((theta.shape[0], t.p, t.p))
        rows, cols = t.tril_index
        T[:, rows, cols] = theta[:, sl]
        covs.append(np.einsum("sij,skj->sik", T, T) * (scale**2)[:, None, None])
    out: dict[str, dict] = {}
    for g, info in factor_groups(spec.reterms).items():
        full = block_diag([covs[k] for k in info["terms"]])
        sd = np.sqrt(np.einsum("sii->si", full))
        corr = None
        if info["correlated"]:
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = full / (sd[:, :, None] * sd[:, None, :])
            idx = np.arange(full.shape[-1])
            corr[:, idx, idx] = 1.0
        out[g] = {"sd": sd, "corr": corr}
    return out


def _add_group_draws(result, theta, scale, shape, rng, data: dict, coords: dict) -> None:
    """``sd_g``, ``corr_g`` from the theta draws and ``b_g`` from the conditional distribution
    of the random effects, added to ``data`` / ``coords`` per grouping factor."""
    S = shape[0] * shape[1]
    ranef, condvar = result.ranef, result.condvar
    for g, info in _group_draws(result.spec, theta, scale).items():
        cd = coef_dim(g)
        cn = list(ranef[g].columns)
        coords[cd] = cn
        coords[g] = list(ranef[g].index)
        k = len(cn)
        data[f"sd_{g}"] = (("chain", "draw", cd), info["sd"].reshape(shape + (k,)))
        pairs = corr_pairs(result.spec, g)
        if pairs:  # each pair once, as the mle group and posteriors
            coords[corr_dim(g)] = [lab for _, _, lab in pairs]
            vals = np.stack([info["corr"][:, i, j] for i, j, _ in pairs], axis=-1)
            data[f"corr_{g}"] = (("chain", "draw", corr_dim(g)), vals.reshape(shape + (-1,)))
        mode = ranef[g].to_numpy()
        L = _sqrt_psd(np.asarray(condvar[g]))  # (levels, k, k)
        z = rng.standard_normal((S, mode.shape[0], k))
        b = mode + np.einsum("lij,slj->sli", L, z)
        data[f"b_{g}"] = (("chain", "draw", g, cd), b.reshape(shape + mode.shape))


def _sqrt_psd(V: np.ndarray) -> np.ndarray:
    """A square root ``A`` with ``A A' = V`` for a stack of PSD matrices (..., k, k)."""
    vals, vecs = np.linalg.eigh(V)
    return vecs * np.sqrt(np.clip(vals, 0, None))[..., None, :]


def normal_approximation(result, draws: int = 1000, chains: int = 1, seed=None):
    """Draws from the normal approximation of a fit at its optimum (module docstring).

    Returns an :class:`xarray.Dataset` with dims ``(chain, draw, ...)`` and the variables of
    the ``mle`` group: ``beta``, ``theta``, ``sigma`` (and the family's dispersion where it is
    not ``sigma``), ``sd_g``, ``corr_g``, ``b_g``.
    """
    import xarray as xr

    spec = result.spec
    rng = np.random.default_rng(seed)
    names, psi_hat, cov, par = laplace_covariance(result)
    S = int(draws) * int(chains)
    A = _sqrt_psd(cov)
    psi = psi_hat + rng.standard_normal((S, len(psi_hat))) @ A.T
    x = par.to_natural(psi)
    nt, p = spec.ntheta, spec.p
    theta, beta = x[:, :nt], x[:, nt:nt + p]
    disp = x[:, -1] if par.disp is not None else None

    shape = (int(chains), int(draws))
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "coef": list(spec.xnames),
              "theta_par": list(spec.theta_names)}
    data = {
        "beta": (("chain", "draw", "coef"), beta.reshape(shape + (p,))),
        "theta": (("chain", "draw", "theta_par"), theta.reshape(shape + (nt,))),
    }
    if par.is_lmm:
        sigma = disp
        scale = sigma
    else:
        scale = np.ones(S)
        sigma = None
        fam = spec.family
        if disp is not None:
            if getattr(fam, "dispersion_kind", None) == "scale":
                sigma = np.sqrt(fam.phi(disp))
            name = getattr(fam, "dispersion_name", None) or "sigma"
            if name != "sigma":
                data[name] = (("chain", "draw"), disp.reshape(shape))
            elif sigma is None:
                sigma = disp
    if sigma is not None and getattr(result, "sigma", None) is not None:
        data["sigma"] = (("chain", "draw"), np.asarray(sigma).reshape(shape))

    _add_group_draws(result, theta, scale, shape, rng, data, coords)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"method": "normal approximation at the optimum (Laplace, flat priors)",
                     "parameters": ", ".join(names), "source": result.method})
    return ds
