"""Result of a generalized linear mixed model fitted by Laplace or adaptive Gauss-Hermite
quadrature (:func:`pymc_mixed.fit.glmm.fit_glmm`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .base import MixedModelResult

__all__ = ["GLMMResult"]


@dataclass(eq=False, repr=False)
class GLMMResult(MixedModelResult):
    """A GLMM fitted by maximum likelihood with the Laplace approximation (``nAGQ = 1``, or its
    fast form ``nAGQ = 0``) or adaptive Gauss-Hermite quadrature (``nAGQ > 1``).

    Beyond :class:`~pymc_mixed.results.MixedModelResult`: ``family``, ``link``, ``dispersion``
    (the family's dispersion parameter or None, see :mod:`pymc_mixed.families`), ``nAGQ``,
    fitted values on the response scale (``fitted``) and the link scale (``fitted_link``),
    deviance, Pearson, response and working residuals (``resid(type=...)``).

    ``objective`` is -2 log-likelihood with every normalizing constant, on one scale for
    ``nAGQ = 0, 1`` and ``> 1`` (lme4 drops the saturated-model term for ``nAGQ > 1``; we do
    not).

    ``vcov`` (and ``se``, the summary's tests, Wald intervals) is lme4's default for
    ``nAGQ >= 1``, ``vcov(fit, use.hessian = TRUE)``: from the Hessian of the objective
    (:meth:`vcov_hessian`), computed on first use. ``vcov_rx`` is ``use.hessian = FALSE``, the
    inverse of the fixed-effects block of the PIRLS system at the estimates (``vcov_beta``, as
    the estimator filled it); it is ``vcov`` for ``nAGQ = 0`` fits and, as in lme4, when the
    Hessian is not positive definite (with a warning).
    """

    # -- filled by fit_glmm: the prepared response, the dispersion and the approximation -----------
    resp: Any = None
    dispersion: float | None = None
    nAGQ: int = 1
    fast: bool = False
    _vcov_default: Any = field(default=None, init=False, repr=False)  # computed on first use

    _stat_name = "z value"

    @property
    def family(self):
        """The response family of the model."""
        return self.spec.family

    @property
    def link(self) -> str:
        """Name of the link function."""
        return self.spec.family.link

    @property
    def approximation(self) -> str:
        """Which integral approximation gave the likelihood (Laplace or AGQ)."""
        if self.nAGQ > 1:
            return f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.nAGQ}"
        return "Laplace Approximation"

    def extra_parameters(self) -> dict[str, float]:
        """Family parameters other than ``sigma``: ``{"dispersion": value}`` for the gamma
        (``phi``; ``sigma = sqrt(phi)``) and the negative binomial (its size ``k``), named by
        ``family.dispersion_name`` as in posterior draws."""
        name = self.spec.family.dispersion_name
        if self.dispersion is not None and name != "sigma":
            return {name: float(self.dispersion)}
        return {}

    # random effects: covariances are not scaled by sigma in a GLMM (Lambda = T, as glmer)
    _re_scale = 1.0

    @property
    def dof(self) -> int:
        """Number of estimated parameters (fixed effects, theta, dispersion if estimated)."""
        return self.spec.p + self.spec.ntheta + int(self.dispersion is not None)

    # -- fitted values and residuals ---------------------------------------------------------------
    @property
    def fitted_link(self) -> np.ndarray:
        """The linear predictor ``X beta + Z b + offset`` (link scale)."""
        return self.linear_predictor()

    @property
    def fitted(self) -> np.ndarray:
        """Fitted means on the response scale (proportions for the binomial)."""
        return self.spec.family.linkinv(self.fitted_link)

    def predict(self, newdata=None, re_form=None, allow_new_levels: bool = True, offset=None,
                type: str = "link", se_fit: bool = False, newparams=None):
        """Predictions as lme4's ``predict``: on the link scale (``type="link"``, the default)
        or the response scale (``type="response"``: means, proportions for the binomial).
        ``re_form``, ``se_fit`` and ``newparams`` as for linear models; response-scale
        standard errors by the delta method."""
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', got {type!r}")
        out = super().predict(newdata, re_form=re_form, allow_new_levels=allow_new_levels,
                              offset=offset, se_fit=se_fit, newparams=newparams)
        eta, se = out if se_fit else (out, None)
        if type == "response":
            fam = self.spec.family
            eta, se = fam.linkinv(eta), (None if se is None else se * np.abs(fam.mu_eta(eta)))
        return (eta, se) if se_fit else eta

    def resid(self, type: str = "deviance") -> np.ndarray:
        """Residuals: ``"deviance"`` (default, as lme4), ``"pearson"``, ``"response"`` or
        ``"working"``."""
        fam, r = self.spec.family, self.resp
        eta = self.fitted_link
        mu = fam.linkinv(eta)
        if type == "deviance":
            return fam.deviance_resids(r, mu, self.dispersion)
        if type == "pearson":
            return fam.pearson_resids(r, mu, self.dispersion)
        if type == "response":
            return r.y - mu
        if type == "working":
            return (r.y - mu) / fam.mu_eta(eta)
        raise ValueError(f"unknown residual type {type!r}; use 'deviance', 'pearson', "
                         f"'response' or 'working'")

    @property
    def residuals(self) -> np.ndarray:
        """Deviance residuals (lme4's default ``residuals(fit)`` for a GLMM); see :meth:`resid`
        for the Pearson, response and working forms."""
        return self.resid("deviance")

    @property
    def deviance_residuals(self) -> np.ndarray:
        """Signed square roots of the per-observation deviance contributions."""
        return self.resid("deviance")

    @property
    def pearson_residuals(self) -> np.ndarray:
        """Residuals divided by the square root of the variance function."""
        return self.resid("pearson")

    @property
    def sum_dev_resid(self) -> float:
        """Sum of squared deviance residuals at the conditional modes (lme4's ``deviance()``
        for a GLMM; not an objective)."""
        return float(np.sum(self.resid("deviance") ** 2))

    # -- standard errors: from the Hessian of the objective (default) or the PIRLS system ---------
    @property
    def _vcov_beta(self) -> np.ndarray:
        if self._vcov_default is None:
            self._vcov_default = self._hessian_or_rx()
        return self._vcov_default

    def _hessian_or_rx(self) -> np.ndarray:
        """lme4's ``vcov.merMod`` choice: the Hessian-based covariance where the fit has the
        objective's curvature and it is positive definite, else the RX-based one."""
        if self.curvature is None or self.curvature.objective_hessian is None or not self.spec.p:
            return self.vcov_beta
        V = self.vcov_hessian().to_numpy()
        if np.all(np.isfinite(V)) and np.all(np.linalg.eigvalsh(0.5 * (V + V.T)) > 0):
            return V
        warnings.warn("the variance-covariance matrix from the Hessian of the objective is not "
                      "positive definite or has NaN values: falling back to the one from the "
                      "PIRLS system (vcov_rx), as lme4", UserWarning, stacklevel=3)
        return self.vcov_beta

    @property
    def vcov_rx(self) -> pd.DataFrame:
        """lme4's ``vcov(fit, use.hessian = FALSE)``: the inverse of the fixed-effects block of
        the PIRLS system at the estimates (beta's covariance given theta)."""
        names = self.spec.xnames
        return pd.DataFrame(self.vcov_beta, index=names, columns=names)

    def vcov_hessian(self) -> pd.DataFrame:
        """Covariance of the fixed effects from the Hessian of the objective in
        ``(theta, beta[, log dispersion])``: ``2 H^{-1}``, the fixed-effects block (lme4's default
        ``vcov`` for ``nAGQ >= 1``, which it gets by finite differences; here central differences
        of the analytic gradient where available, else of the objective, with PIRLS converged
        tightly). Not available for ``nAGQ = 0``, whose objective does not depend on ``beta``.
        """
        if self.curvature is None or self.curvature.objective_hessian is None:
            raise ValueError("vcov_hessian needs the default (nAGQ >= 1) fit; nAGQ = 0 profiles "
                             "beta out of its objective")
        H = self.curvature.objective_hessian(self.curvature.x_hat)
        cov = 2.0 * np.linalg.inv(H)
        nt, p = self.spec.ntheta, self.spec.p
        names = self.spec.xnames
        return pd.DataFrame(cov[nt:nt + p, nt:nt + p], index=names, columns=names)

    # -- text --------------------------------------------------------------------------------------
    def _residual_lines(self) -> list[str]:
        """lme4's "Scaled residuals" block for a GLMM: quantiles of the Pearson residuals."""
        q = np.quantile(self.resid("pearson"), [0, 0.25, 0.5, 0.75, 1])
        row = pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"])
        return ["Scaled residuals:", row.to_string(index=False,
                                                   float_format=lambda v: f"{v:.4f}"), ""]

    def _header(self) -> str:
        fam = self.spec.family
        head = (f"Generalized linear mixed model fit by maximum likelihood "
                f"({self.approximation})")
        if self.fast:
            head += " [nAGQ = 0]"
        extra = "".join(f", {k} = {v:.4g}" for k, v in self.extra_parameters().items())
        return f"{head}\n Family: {fam.name}  ( {fam.link} ){extra}"
