"""Fitted mixed models: estimates, random effects, fit statistics, summaries and DataTrees.

Names follow lme4's user vocabulary (``fixef``, ``ranef``, ``VarCorr``, ``isSingular``) in
Python spelling. A Result holds the numbers and the factor at the optimum; it never calls back
into an optimizer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .varcorr import VarCorr, term_covariances

__all__ = ["MixedModelResult", "LMMResult"]


def _fmt_table(df: pd.DataFrame, digits: int = 4) -> str:
    return df.to_string(float_format=lambda v: f"{v:.{digits}g}")


def _abbrev(name: str, width: int = 6) -> str:
    """A short column label, as R's ``abbreviate``: lower-case vowels after the first
    character go first."""
    if len(name) <= width:
        return name
    short = name[0] + "".join(c for c in name[1:] if c not in "aeiou")
    return short[:width]


class MixedModelResult:
    """Common part of every maximum-likelihood fit of a mixed model.

    Attributes set by the estimator: ``spec``, ``theta`` (array, lme4 order), ``beta``,
    ``u`` (spherical conditional modes, term order), ``objective``, ``optsum``, ``method``.
    Subclasses supply ``sigma`` (None when the family has no scale), ``_vcov_beta`` and
    ``_condvar_u`` (diagonal blocks of the conditional covariance of ``u``).
    """

    method = "ML"
    engine = "pymc_mixed"

    # -- parameters ---------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        """Number of observations used in the fit (after dropping missing values)."""
        return self.spec.n

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
        out: dict[str, pd.DataFrame] = {}
        for t, b in zip(self.spec.reterms, self._b_blocks()):
            df = pd.DataFrame(b, index=pd.Index(t.levels, name=t.group), columns=t.cnames)
            out[t.group] = pd.concat([out[t.group], df], axis=1) if t.group in out else df
        return out

    @property
    def condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariance of each level's random effects, {group: (levels, p, p)}.

        As lme4's ``ranef(fit, condVar = TRUE)``: given the estimates of beta and the
        covariance parameters; terms on the same factor form a block-diagonal matrix.
        """
        scale2 = self._re_scale**2
        out: dict[str, np.ndarray] = {}
        for t, T, blk in zip(self.spec.reterms, self.spec.Ts(self._theta), self._condvar_u()):
            v = scale2 * np.einsum("ab,jbc,dc->jad", T, blk, T)
            if t.group in out:
                prev = out[t.group]
                k0, k1 = prev.shape[1], v.shape[1]
                merged = np.zeros((t.nlevels, k0 + k1, k0 + k1))
                merged[:, :k0, :k0] = prev
                merged[:, k0:, k0:] = v
                v = merged
            out[t.group] = v
        return out

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
        return self.spec.X @ self.beta + self.spec.offset_or_zero + self.spec.Zb(self._b_blocks())

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
        from .postfit.predict import predict

        return predict(self, newdata, re_form=re_form, se_fit=se_fit, newparams=newparams,
                       allow_new_levels=allow_new_levels, offset=offset)

    # -- after the fit (pymc_mixed.postfit) ----------------------------------------------------
    def confint(self, parm=None, level: float = 0.95, method: str = "profile", **kwargs):
        """Confidence intervals: ``method="profile"`` (default), ``"wald"`` or ``"boot"``
        (see :func:`pymc_mixed.postfit.confint`)."""
        from .postfit.intervals import confint

        return confint(self, parm=parm, level=level, method=method, **kwargs)

    def profile(self, which=None, **kwargs):
        """Profile likelihood of every parameter (:func:`pymc_mixed.postfit.profile`)."""
        from .postfit.profile import profile

        return profile(self, which=which, **kwargs)

    def coef(self) -> dict:
        """Per-level coefficients, fixed plus random effects (lme4's ``coef``)."""
        from .postfit.params import coef

        return coef(self)

    def rePCA(self) -> dict:
        """Principal components of the random-effects covariance factors (lme4's ``rePCA``)."""
        from .postfit.params import repca

        return repca(self)

    def hatvalues(self):
        """Leverages, the diagonal of the hat matrix (LMMs; lme4's ``hatvalues``)."""
        from .postfit.influence import hatvalues

        return hatvalues(self)

    def cooks_distance(self):
        """Cook's distance per observation (LMMs; lme4's ``cooks.distance``)."""
        from .postfit.influence import cooks_distance

        return cooks_distance(self)

    def rstudent(self):
        """Studentized residuals (LMMs; lme4's ``rstudent``)."""
        from .postfit.influence import rstudent

        return rstudent(self)

    def influence(self, groups=None, refit: bool = False):
        """Case- or group-deletion influence on the fixed effects
        (:func:`pymc_mixed.postfit.influence`)."""
        from .postfit.influence import influence

        return influence(self, groups=groups, refit=refit)

    def refit(self, y, **kwargs):
        """The same model refitted to a new response (:func:`pymc_mixed.postfit.refit`)."""
        from .postfit.update import refit

        return refit(self, y, **kwargs)

    def simulate(self, nsim: int = 1, seed=None, **kwargs):
        """``nsim`` responses simulated from the fit (:func:`pymc_mixed.simulate`)."""
        from .bootstrap import simulate

        return simulate(self, nsim=nsim, seed=seed, **kwargs)

    @property
    def residuals(self) -> np.ndarray:
        """Response minus fitted values."""
        return self.spec.y - self.fitted

    # -- text -------------------------------------------------------------------------------------------
    def _header(self) -> str:
        return "Mixed model fit"

    def _fit_stats_line(self) -> str:
        if self.method == "REML":  # lme4 prints only the criterion for REML fits
            return f"REML criterion at convergence: {self.objective:.1f}"
        stats = pd.DataFrame([[self.aic, self.bic, self.loglik, self.objective,
                               self.nobs - self.dof]],
                             columns=["AIC", "BIC", "logLik",
                                      "REMLcrit" if self.method == "REML" else "deviance",
                                      "df.resid"])
        return stats.to_string(index=False, float_format=lambda v: f"{v:.1f}")

    def summary(self) -> str:
        """A summary in the style of lme4's ``summary(fit)``."""
        fe = pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se})
        fe[self._stat_name] = fe["Estimate"] / fe["Std. Error"]
        if self._stat_name == "z value":
            from scipy.stats import norm

            fe["Pr(>|z|)"] = 2 * norm.sf(np.abs(fe["z value"]))
        groups = ", ".join(f"{t.group}, {t.nlevels}" for t in self.spec.reterms)
        parts = [
            self._header(),
            f"Formula: {self.spec.formula}",
            "",
            self._fit_stats_line(),
            "",
            *self._residual_lines(),
            "Random effects:",
            str(self.varcorr),
            f"Number of obs: {self.nobs}, groups:  {groups}",
            "",
            "Fixed effects:",
            fe.to_string(float_format=lambda v: f"{v:.4g}" if abs(v) < 1e-3 else f"{v:.4f}"),
            *self._correlation_lines(),
        ]
        notes = []
        if self.spec.n_dropped:
            notes.append(f"{self.spec.n_dropped} rows with missing values were dropped")
        if self.spec.aliased:
            notes.append("aliased columns dropped: " + ", ".join(self.spec.aliased))
        if self.issingular():
            notes.append("boundary (singular) fit: see help('isSingular')")
        if not self.converged:
            notes.append(f"optimizer did not converge: {self.optsum.returnvalue}")
        if notes:
            parts += [""] + [f"Note: {n}" for n in notes]
        return "\n".join(parts)

    _stat_name = "t value"

    def _correlation_lines(self, max_p: int = 12) -> list[str]:
        """lme4's "Correlation of Fixed Effects" (lower triangle, abbreviated names)."""
        p = self.spec.p
        if p < 2 or p > max_p:
            return []
        V = np.asarray(self._vcov_beta)
        d = np.sqrt(np.diag(V))
        C = V / np.outer(d, d)
        names = list(self.spec.xnames)
        w = max(len(n) for n in names) + 1
        rows = [" " * w + " ".join(f"{_abbrev(n):>6}" for n in names[:-1])]
        for i in range(1, p):
            vals = " ".join(f"{C[i, j]:6.3f}" for j in range(i))
            rows.append(f"{names[i]:<{w}}{vals}")
        return ["", "Correlation of Fixed Effects:", *rows]

    def _residual_lines(self) -> list[str]:
        """lme4's "Scaled residuals" block (LMMs); GLMM results may override."""
        if self.sigma is None:
            return []
        scaled = self.residuals * np.sqrt(self.spec.prior_weights) / self.sigma
        q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
        row = pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"])
        return ["Scaled residuals:", row.to_string(index=False,
                                                   float_format=lambda v: f"{v:.4f}"), ""]

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()

    # -- ArviZ ------------------------------------------------------------------------------------------
    def to_datatree(self, draws: int = 0, chains: int = 1, seed=None):
        """The fit as an :class:`xarray.DataTree` (see :mod:`pymc_mixed.datatree`);
        ``draws > 0`` adds a ``posterior`` group of draws from the normal approximation at
        the optimum (:func:`pymc_mixed.approx.normal_approximation`)."""
        from .datatree import result_to_datatree

        return result_to_datatree(self, draws=draws, chains=chains, seed=seed)


class LMMResult(MixedModelResult):
    """A linear mixed model fitted by exact ML or REML."""

    @classmethod
    def from_objective(cls, spec, objective, theta, optsum) -> "LMMResult":
        """Read the estimates off the factor left at ``theta`` by ``objective``."""
        self = cls()
        self.spec = spec
        self.method = "REML" if objective.REML else "ML"
        self.REML = objective.REML
        self._theta = np.asarray(theta, dtype=float)
        self.objective = float(optsum.fmin)
        self.optsum = optsum
        self._system = objective.system
        self.u, self.beta = objective.system.solve()
        self.sigma = objective.sigma()
        Rx = objective.system.Rxx()
        if spec.p:
            Rinv = np.linalg.inv(Rx)
            self._vcov_beta = self.sigma**2 * Rinv.T @ Rinv
        else:
            self._vcov_beta = np.zeros((0, 0))
        return self

    def _condvar_u(self) -> list[np.ndarray]:
        if not hasattr(self, "_condvar_cache"):
            self._condvar_cache = self._system.condvar_u()
        return self._condvar_cache

    def _header(self) -> str:
        how = "REML" if self.REML else "maximum likelihood"
        return f"Linear mixed model fit by {how}"
