"""Fitted mixed models: estimates, random effects, fit statistics, summaries and DataTrees.

Names follow lme4's user vocabulary (``fixef``, ``ranef``, ``VarCorr``, ``isSingular``) in
Python spelling. A result is a declared record that its estimator fills in one constructor
call; what inference after the fit needs from the estimator (the deviance and its curvature,
refits and the objective for profiles) is handed over as values (:class:`Curvature`,
:class:`~pymc_mixed.results.engine.FitEngine`), so no result module imports an estimator.
The text (``summary``) is in :mod:`.text`, the thin post-fit methods (``confint``,
``profile``, ``hatvalues``, ...) in :mod:`.methods`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..spec import factor_groups
from .engine import FitEngine
from .methods import PostFitMethods
from .text import SummaryText
from .varcorr import VarCorr, term_covariances

__all__ = ["Curvature", "MixedModelResult"]


@dataclass(eq=False)
class Curvature:
    """The ML deviance of a fit near its estimates, handed to the result by the estimator.

    Parameters are the model's layout ``x = (theta, beta[, dispersion])``
    (:class:`~pymc_mixed.spec.ParamLayout`), dispersion on its natural scale.

    x_hat : the estimates in that layout.
    make_deviance : ``() -> f`` with ``f(x) = -2 log L`` (ML, not profiled), built on first use.
    hessian : ``(f, x, step) -> H``: the package's finite-difference Hessian
        (:func:`pymc_mixed.fit.curvature.hessian`), for functions of other parameterizations.
    objective_hessian : ``x -> H``, the Hessian of the deviance in ``x`` by the estimator's
        best means (GLMMs: differences of the analytic gradient), or None.
    """

    x_hat: np.ndarray
    make_deviance: Callable[[], Callable]
    hessian: Callable
    objective_hessian: Callable | None = None
    _deviance: Callable | None = field(default=None, init=False, repr=False)

    @property
    def deviance(self) -> Callable:
        """``f(x) = -2 log L`` in the model's parameter layout."""
        if self._deviance is None:
            self._deviance = self.make_deviance()
        return self._deviance


@dataclass(eq=False, repr=False)
class MixedModelResult(SummaryText, PostFitMethods):
    """Common part of every maximum-likelihood fit of a mixed model.

    Filled by the estimator in one constructor call:

    spec : the model (:class:`~pymc_mixed.spec.ModelSpec`).
    theta_hat : covariance parameters (array, lme4 order; ``theta`` is the named Series).
    beta : fixed effects.  u : spherical conditional modes (term order).
    objective : the minimized criterion (-2 log L, or the REML criterion).
    optsum : the optimizer's record (:class:`~pymc_mixed.fit.optimize.OptSummary`).
    vcov_beta : covariance matrix of ``beta``.
    condvar_blocks : per term the conditional covariances of ``u`` (levels, p, p), or a
        callable computing them on first use.
    sigma : residual SD (None when the family has no scale).  method : ``"ML"``/``"REML"``.
    curvature : the deviance and its Hessian for post-fit inference (:class:`Curvature`).
    engine : the estimator's callables for refits and profiles (:class:`FitEngine`: anova
        refits REML fits by ML with ``engine.fit(spec, REML=False)``; ``confint``,
        ``influence``, ``refit(y)``, ``update`` and the GLMM bootstrap use it).
    """

    spec: Any
    theta_hat: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    objective: float
    optsum: Any
    vcov_beta: np.ndarray
    condvar_blocks: Any
    sigma: float | None = None
    method: str = "ML"
    curvature: Curvature | None = None
    engine: FitEngine | None = None

    engine = "pymc_mixed"

    @property
    def _theta(self) -> np.ndarray:
        return self.theta_hat

    @property
    def _vcov_beta(self) -> np.ndarray:
        return self.vcov_beta

    def _condvar_u(self) -> list[np.ndarray]:
        """Per term, the conditional covariances of ``u`` (computed once)."""
        if callable(self.condvar_blocks):
            self.condvar_blocks = self.condvar_blocks()
        return self.condvar_blocks

    # -- parameters ---------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        """Number of observations used in the fit: rows left after dropping missing values,
        less those of prior weight zero (they carry no information and are left out of the
        likelihood, so AIC/BIC and the fit agree with a fit without them)."""
        return int(np.count_nonzero(self.spec.prior_weights))

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effects estimates, indexed by coefficient name."""
        return pd.Series(self.beta, index=self.spec.xnames, name="fixef")

    coef_ = fixef

    @property
    def vcov(self) -> pd.DataFrame:
        """Estimated covariance matrix of the fixed effects."""
        names = self.spec.xnames
        return pd.DataFrame(self._vcov_beta, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self._vcov_beta)), index=self.spec.xnames, name="se")

    @property
    def theta(self) -> pd.Series:
        """Relative covariance parameters in lme4's order (``getME(fit, "theta")``)."""
        return pd.Series(self._theta, index=self.spec.theta_names, name="theta")

    @property
    def _re_scale(self) -> float:
        """Scale of ``Lambda_theta``: the residual SD in an LMM (theta is relative to it)."""
        return 1.0 if self.sigma is None else self.sigma

    @property
    def varcorr(self) -> VarCorr:
        """Variance components (lme4's ``VarCorr``)."""
        scale = self._re_scale
        return VarCorr(groups=[t.group for t in self.spec.reterms],
                       cnames=[t.cnames for t in self.spec.reterms],
                       covs=term_covariances(self.spec, self._theta, scale),
                       sigma=self.sigma)

    VarCorr = varcorr

    def _b_blocks(self) -> list[np.ndarray]:
        """Per term, the conditional modes ``b`` as (levels, p) arrays."""
        return self.spec.b_blocks(self._theta, self.u)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: {grouping factor: levels x columns}."""
        blocks = self._b_blocks()
        return {g: pd.DataFrame(np.concatenate([blocks[k] for k in info["terms"]], axis=1),
                                index=pd.Index(info["levels"], name=g), columns=info["cnames"])
                for g, info in factor_groups(self.spec.reterms).items()}

    @property
    def condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariance of each level's random effects, {group: (levels, p, p)}.

        As lme4's ``ranef(fit, condVar = TRUE)``: given the estimates of beta and the
        covariance parameters; terms on the same factor form a block-diagonal matrix.
        """
        from ..spec import block_diag

        scale2 = self._re_scale**2
        per_term = [scale2 * np.einsum("ab,jbc,dc->jad", T, blk, T)
                    for T, blk in zip(self.spec.Ts(self._theta), self._condvar_u())]
        return {g: block_diag([per_term[k] for k in info["terms"]])
                for g, info in factor_groups(self.spec.reterms).items()}

    # -- fit statistics -------------------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """Log-likelihood at the estimates (for REML fits, minus half the REML criterion)."""
        return -0.5 * self.objective

    @property
    def dof(self) -> int:
        """Number of estimated parameters (fixed effects, covariance parameters, scale)."""
        return self.spec.p + self.spec.ntheta + (self.sigma is not None)

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``-2 loglik + 2 dof``."""
        return -2.0 * self.loglik + 2.0 * self.dof

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``-2 loglik + dof log(nobs)``."""
        return -2.0 * self.loglik + self.dof * np.log(self.nobs)

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (for REML fits, the REML criterion)."""
        return self.objective

    def issingular(self, tol: float = 1e-4) -> bool:
        """True when an estimated covariance matrix is singular (a diagonal theta near 0)."""
        diag = self.spec.theta_lower == 0
        return bool(np.any(self._theta[diag] < tol))

    isSingular = issingular

    @property
    def converged(self) -> bool:
        """True when the optimizer met its convergence criteria (see ``optsum``)."""
        return self.optsum.converged

    # -- fitted values ------------------------------------------------------------------------------
    def linear_predictor(self) -> np.ndarray:
        """``X beta + Z b + offset`` for the observations of the fit."""
        return self.spec.mean.predict_numpy(self.spec, self.beta, self._b_blocks())

    @property
    def fitted(self) -> np.ndarray:
        """Fitted values ``X beta + Z b (+ offset)`` for the observations of the fit."""
        return self.linear_predictor()

    def predict(self, newdata=None, re_form=None, allow_new_levels: bool = True,
                offset=None, se_fit: bool = False, newparams=None):
        """Predictions on the scale of the linear predictor (lme4's ``predict``).

        Parameters
        ----------
        newdata : DataFrame with the model's columns, or None for the fitted observations.
        re_form : None to include every random-effect term; ``"~0"``, ``"NA"`` or False for
            population-level predictions (random effects at zero); a formula such as
            ``"~ (1 | Subject)"`` for a subset of the model's terms.
        allow_new_levels : levels of a grouping factor not seen in the fit get random effects
            of zero (their expected value); with False they raise an error instead.
        offset : offset for ``newdata`` (array), if the model has one.
        se_fit : also return standard errors (population-level predictions only).
        newparams : dict with ``beta`` and/or ``theta`` to predict with instead of the
            estimates (random effects: the conditional modes at those values).

        See :func:`pymc_mixed.postfit.predict`.
        """
        from ..postfit.predict import predict

        if newdata is not None and not isinstance(newdata, pd.DataFrame):
            raise TypeError(f"newdata must be a pandas DataFrame with the model's columns, got "
                            f"{type(newdata).__name__}")
        if newdata is not None and len(newdata) == 0:
            raise ValueError("newdata has no rows: nothing to predict")

        return predict(self, newdata, re_form=re_form, se_fit=se_fit, newparams=newparams,
                       allow_new_levels=allow_new_levels, offset=offset)

    @property
    def residuals(self) -> np.ndarray:
        """Response minus fitted values."""
        return self.spec.y - self.fitted

    # -- ArviZ ------------------------------------------------------------------------------------------
    def to_datatree(self, draws: int = 0, chains: int = 1, seed=None):
        """The fit as an :class:`xarray.DataTree` (see :mod:`pymc_mixed.datatree`);
        ``draws > 0`` adds a ``posterior`` group of draws from the normal approximation at
        the optimum (:func:`pymc_mixed.postfit.approx.normal_approximation`)."""
        from ..datatree import result_to_datatree

        posterior = None
        if draws:
            from ..postfit.approx import normal_approximation

            posterior = normal_approximation(self, draws=draws, chains=chains, seed=seed)
        return result_to_datatree(self, posterior)
