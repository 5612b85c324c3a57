"""NonlinearResult: the estimates of a nonlinear mixed model, in lme4/nlme vocabulary.

The estimator hands over numbers (and, for predictions, the compiled kernel); the result never
imports an estimator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results.varcorr import VarCorr

__all__ = ["NonlinearResult"]

_KINDS = ("ires", "pres", "iwres", "pwres", "cwres")


@dataclass
class NonlinearResult:
    """A fitted nonlinear mixed model.

    ``deviance`` is -2 log-likelihood with every constant (on the scale of ``y``);
    ``b_blocks`` the per-term random effects (levels, p_t); ``sigma`` the error model's scale
    and ``shape`` its shape parameters (see :mod:`pymc_mixed.nonlinear.error_models`).
    """

    spec: object
    kernel: object = field(repr=False)
    method: str
    beta: np.ndarray
    theta_: np.ndarray
    sigma: float
    shape: np.ndarray
    vcov_beta: np.ndarray
    b_blocks: list
    deviance: float
    optsum: object = field(repr=False)
    se_method: str = ""
    converged: bool = True
    stopped: bool = False

    # -- estimates -----------------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        """Fixed effects, named ``lka`` (fixed part ``"1"``) or ``lCl.(Intercept)``, ``lCl.Wt``."""
        return pd.Series(self.beta, index=self.spec.xnames, name="fixef")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects (``se_method`` says how it was computed)."""
        nm = self.spec.xnames
        return pd.DataFrame(self.vcov_beta, index=nm, columns=nm)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov_beta)), index=self.spec.xnames, name="se")

    @property
    def theta(self) -> pd.Series:
        """lme4's relative covariance parameters (relative to ``sigma``)."""
        return pd.Series(self.theta_, index=self.spec.theta_names, name="theta")

    @property
    def varcorr(self) -> VarCorr:
        """Random-effect covariances per term (parameter names in ``var1``) and the residual."""
        s = self.spec
        covs = [self.sigma**2 * T @ T.T for T in s.Ts(self.theta_)]
        return VarCorr([t.group for t in s.reterms], [list(t.cnames) for t in s.reterms],
                       covs, self.sigma)

    @property
    def error_params(self) -> dict:
        """nlmefit's error parameters (``a``, ``b``)."""
        return self.spec.error_model.error_params(self.sigma, self.shape)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects per grouping factor (levels x parameters)."""
        out: dict[str, list] = {}
        for t, b in zip(self.spec.reterms, self.b_blocks):
            out.setdefault(t.group, []).append(pd.DataFrame(b, index=t.levels,
                                                            columns=t.cnames))
        return {g: pd.concat(frames, axis=1) for g, frames in out.items()}

    # -- fit statistics --------------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """Log-likelihood (the method's approximation)."""
        return -0.5 * self.deviance

    @property
    def npar(self) -> int:
        """Fixed effects, covariance parameters, error parameters."""
        return self.spec.p + self.spec.ntheta + 1 + len(self.shape)

    @property
    def aic(self) -> float:
        """Akaike's information criterion."""
        return self.deviance + 2 * self.npar

    @property
    def bic(self) -> float:
        """Bayesian information criterion (``log n`` observations, as nlme and lme4)."""
        return self.deviance + np.log(self.spec.n) * self.npar

    # the names MixedModelResult and the DataTree builders read
    @property
    def objective(self) -> float:
        """-2 log-likelihood (``deviance``)."""
        return self.deviance

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.spec.n

    dof = npar

    @property
    def _theta(self) -> np.ndarray:
        return np.asarray(self.theta_)

    @property
    def _vcov_beta(self) -> np.ndarray:
        return np.asarray(self.vcov_beta)

    def issingular(self, tol: float = 1e-4) -> bool:
        """True when an estimated random-effect covariance is singular (a diagonal theta ~ 0)."""
        diag = self.spec.theta_lower == 0
        return bool(np.any(self._theta[diag] < tol))

    isSingular = issingular

    def to_datatree(self):
        """The fit as an :class:`xarray.DataTree` with the groups and names of LMM/GLMM fits
        (``mle``, ``fit_stats``, ``observed_data``, ``constant_data``), so ML and posterior
        compare by name (:func:`pymc_mixed.compare`)."""
        from ..datatree import result_to_datatree

        return result_to_datatree(self)

    # -- predictions and residuals -----------------------------------------------------------
    def fitted(self, level: str = "individual") -> np.ndarray:
        """Fitted means: ``individual`` (at the random effects' modes) or ``population``."""
        s = self.spec
        phi = s.phi(self.beta, self.b_blocks) if level == "individual" else s.phi_fixed(self.beta)
        return self.kernel.f(phi)

    def predict(self, newdata: pd.DataFrame | None = None, level: str = "individual"):
        """Predicted means for ``newdata`` (default: the data). New levels get ``b = 0``."""
        if level not in ("individual", "population"):
            raise ValueError(f"level must be 'individual' or 'population', got {level!r}")
        if newdata is None:
            return self.fitted(level)
        from .kernel import NonlinearKernel
        from .spec import NonlinearSpec

        s = self.spec
        A, zs, refs = s.on(newdata)
        phi = np.empty((len(newdata), s.P))
        for j, fp in enumerate(s.fixed):
            phi[:, j] = A[:, fp.cols] @ self.beta[fp.cols]
        if level == "individual":
            for z, r, idx, b in zip(zs, refs, s.term_params, self.b_blocks):
                br = np.where((r >= 0)[:, None], b[np.maximum(r, 0)], 0.0)
                for c, j in enumerate(idx):
                    phi[:, j] += z[:, c] * br[:, c]
        cols = {a: pd.to_numeric(newdata[a]).to_numpy(float) for a in s.argnames}
        tmp = NonlinearSpec(fun=s.fun, params=s.params, argnames=s.argnames, columns=cols,
                            response=s.response, y=np.zeros(len(newdata)), fixed=s.fixed,
                            reterms=[], term_params=[], error_model=s.error_model,
                            beta0=s.beta0)
        return NonlinearKernel(tmp).f(phi)

    def residuals(self, kind: str = "ires") -> np.ndarray:
        """Residuals (MATLAB nlmefit's kinds, on the error model's working scale):

        ``ires``/``pres`` individual/population ``y - f``; ``iwres`` = ires / sd;
        ``pwres``/``cwres`` whitened by the model's marginal covariance
        ``V_j = sigma^2 (W_j^-1 + Z_j Lambda Lambda' Z_j')`` linearized at ``b = 0`` (pwres) or at
        the modes (cwres, Hooker et al. 2007), per group.
        """
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}; got {kind!r}")
        s, em = self.spec, self.spec.error_model
        yw = em.working_response(s.y)
        level = "population" if kind in ("pres", "pwres") else "individual"
        f = self.fitted(level)
        r = yw - em.working_mean(f)[0]
        if kind in ("ires", "pres"):
            return r
        if kind == "iwres":
            return r / (self.sigma * em.g(f, self.shape))
        return self._whitened(kind == "cwres")

    def _whitened(self, conditional: bool) -> np.ndarray:
        from .linearize import linearized_lmm

        s, em = self.spec, self.spec.error_model
        b = self.b_blocks if conditional else [np.zeros_like(x) for x in self.b_blocks]
        f, J = self.kernel.fj(s.phi(self.beta, b))
        lin = linearized_lmm(s, f, J, self.beta, b)
        mean = lin.X @ self.beta                 # E[y] of the linearized model
        resid = lin.y - mean
        g2 = em.g(f, self.shape)**2
        Zs = [t.z for t in lin.reterms]
        Ts = s.Ts(self.theta_)
        out = np.empty(s.n)
        # post-fit, once: a loop over the levels of the first grouping factor is fine here
        first = lin.reterms[0]
        for j in range(first.nlevels):
            rows = np.flatnonzero(first.refs == j)
            V = np.diag(g2[rows])
            for t, z, T in zip(lin.reterms, Zs, Ts):
                for lev in np.unique(t.refs[rows]):
                    m = rows[t.refs[rows] == lev]
                    zl = np.zeros((len(rows), t.p))
                    zl[np.isin(rows, m)] = z[m]
                    V += zl @ T @ T.T @ zl.T
            L = np.linalg.cholesky(self.sigma**2 * V)
            out[rows] = np.linalg.solve(L, resid[rows])
        return out

    # -- text ----------------------------------------------------------------------------
    def summary(self) -> str:
        """A printed summary in nlme's spirit."""
        s = self.spec
        head = (f"Nonlinear mixed model fit by {self.method} ({s.error_model.name} error model)\n"
                f"  logLik {self.loglik:.4f}  AIC {self.aic:.4f}  BIC {self.bic:.4f}  "
                f"n = {s.n}" + ("" if self.converged else "  (NOT CONVERGED)")
                + ("  (stopped by the output function)" if self.stopped else ""))
        fe = pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se})
        return (f"{head}\n\nRandom effects:\n{self.varcorr}\n\nFixed effects "
                f"(standard errors: {self.se_method}):\n{fe.to_string(float_format='%.6g')}")

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__
