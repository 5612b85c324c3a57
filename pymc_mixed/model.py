"""MixedModel: the user's entry point, from a formula and a data frame to fitted results."""

from __future__ import annotations

import pandas as pd

from .formula import build_spec

# The estimators and what they stand on (SciPy's sparse, linalg and optimize modules, NLopt)
# load with the package, as lme4's machinery loads with library(lme4): the first fit in a
# process then costs what every later fit costs. PyMC, ArviZ and PyTensor stay out of this.
import nlopt  # noqa: E402,F401
import scipy.optimize  # noqa: E402,F401

from .fit import estimator  # noqa: E402  (importing fit registers the LMM and GLMM estimators)

__all__ = ["MixedModel"]


class MixedModel:
    """A (generalized) linear mixed model specified by an lme4-style formula.

    Parameters
    ----------
    formula : ``"y ~ x + (1 + x | g)"``; supports ``(1|g)``, ``(1 + x|g)``, ``(0 + x|g)``,
        ``(x || g)``, ``(1|a/b)``, ``(1|a:b)``, categorical predictors (treatment contrasts),
        interactions and functions of columns in the fixed part.
    data : pandas DataFrame. Rows with missing values in the variables used are dropped
        (with a warning giving the count).
    family : ``"gaussian"`` (the default, a linear mixed model) or a GLM family name.
    weights, offset : column names or arrays of prior weights and an offset.

    Examples
    --------
    >>> import pymc_mixed as pmm
    >>> m = pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)",
    ...                    pmm.datasets.load("sleepstudy"))
    >>> res = m.fit(REML=False)
    >>> round(res.objective, 4)
    1751.9393
    """

    def __init__(self, formula: str, data: pd.DataFrame, family="gaussian",
                 link: str | None = None, weights=None, offset=None):
        self.formula = formula
        self.spec = build_spec(formula, data, family=family, link=link, weights=weights,
                               offset=offset)
        self.result = None

    @property
    def family(self):
        """The response family (Gaussian with identity link for an LMM)."""
        return self.spec.family

    @property
    def is_linear(self) -> bool:
        """True for a Gaussian response with identity link: exact ML/REML applies."""
        return self.spec.kind == "lmm"

    def fit(self, method: str | None = None, *, REML: bool | None = None, **kwargs):
        """Fit by maximum likelihood; returns a result and keeps it as ``self.result``.

        ``method`` names the estimator, looked up by model kind (``self.spec.kind``) in the
        registry of :mod:`pymc_mixed.fit.base`: ``"REML"`` (the default, as lme4) or ``"ML"``
        for a linear mixed model; ``"laplace"`` (the default), ``"agq"`` (with ``nAGQ > 1``)
        or ``"nAGQ0"`` for a GLMM. lme4's spellings work too: ``REML=False``, ``nAGQ=0``,
        ``nAGQ=9``, ``fast=True``. Other keyword arguments go to the estimator
        (``optimizer``, ``ftol_rel``, ...).
        """
        if isinstance(method, bool):  # fit(False): the old positional REML
            method, REML = None, method
        kind = self.spec.kind
        method = _method_from_lme4_options(kind, method, REML, kwargs)
        self.result = estimator(kind, method)(self.spec, **kwargs)
        if self.result.issingular():
            import warnings

            from .errors import SingularFitWarning

            warnings.warn("boundary (singular) fit: a random-effects covariance matrix is "
                          "singular (see result.issingular() and result.varcorr)",
                          SingularFitWarning, stacklevel=2)
        return self.result

    # -- Bayesian inference through the same graph (pymc_mixed.bayes) -----------------------------
    @property
    def priors(self) -> dict:
        """Priors of the PyMC model by parameter name (``beta``, ``sigma``, ``sd_<group>``,
        ``corr_<group>``); documented defaults in :mod:`pymc_mixed.bayes.priors`. Assign a dict to
        replace some of them (values: ``pymc_mixed.bayes.Prior``, ``pm.X.dist(...)`` or
        callables); the others keep their defaults."""
        if getattr(self, "_priors", None) is None:
            from .bayes import default_priors

            self._priors = default_priors(self.spec)
        return self._priors

    @priors.setter
    def priors(self, value) -> None:
        from .bayes import merge_priors

        self._priors = merge_priors(self.spec, value)

    @property
    def pymc_model(self):
        """The ``pm.Model`` of this model (built once per set of priors), random effects
        centered or not per factor as the ML fit suggests
        (:mod:`pymc_mixed.bayes.parametrization`)."""
        from .bayes import cached_pymc_model

        return cached_pymc_model(self)

    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4, seed=None,
               sampler: str = "auto", posterior_predictive: bool = False,
               progressbar: bool = True, centered: dict | None = None, **kwargs):
        """Sample the posterior with NUTS (nutpie when installed; ``sampler="pymc"``,
        ``"numpyro"``, ``"blackjax"``); returns an :class:`xarray.DataTree` (see
        :func:`pymc_mixed.bayes.sample_model`). ``centered={group: bool}`` overrides the
        automatic parametrization; ``posterior_predictive`` adds PyMC's posterior
        predictive draws."""
        from .bayes import cached_pymc_model, sample_model, sample_posterior_predictive

        model = cached_pymc_model(self, centered=centered)
        post = sample_model(self.spec, model, draws=draws, tune=tune, chains=chains, seed=seed,
                            sampler=sampler, progressbar=progressbar, **kwargs)
        if posterior_predictive:
            sample_posterior_predictive(model, post, seed=seed)
        return post

    def sample_prior_predictive(self, draws: int = 500, seed=None):
        """PyMC's prior predictive draws (``prior``, ``prior_predictive`` groups)."""
        from .bayes import sample_prior_predictive

        return sample_prior_predictive(self.pymc_model, draws=draws, seed=seed)

    def sample_posterior_predictive(self, post, seed=None):
        """PyMC's posterior predictive draws of the response, added to ``post`` as
        ``posterior_predictive`` (and returned)."""
        from .bayes import sample_posterior_predictive

        return sample_posterior_predictive(self.pymc_model, post, seed=seed)

    def predict(self, post, newdata, kind: str = "mean", seed=None, **kwargs):
        """Posterior predictions on ``newdata`` (``predictions`` group): ``kind="mean"`` the
        mean response, ``"response"`` drawn responses; unseen levels get random effects from
        the population distribution (:func:`pymc_mixed.bayes.predict`)."""
        from .bayes import predict

        return predict(self.spec, post, newdata, kind=kind, seed=seed, **kwargs)

    def __repr__(self) -> str:
        terms = ", ".join(repr(t) for t in self.spec.reterms)
        head = (f"MixedModel({self.formula!r}, family={self.spec.family!r}, n={self.spec.n}, "
                f"terms=[{terms}])")
        pri = self.priors
        return head + "\n  priors: " + ", ".join(f"{k}={v!r}" for k, v in pri.items())


def _method_from_lme4_options(kind: str, method, REML, kwargs) -> str | None:
    """The registry's method name from lme4's options: ``REML=`` for an LMM, ``nAGQ=`` /
    ``fast=`` for a GLMM (left in ``kwargs`` where the estimator reads them too)."""
    if kind == "lmm":
        if REML is not None:
            wanted = "REML" if REML else "ML"
            if method is not None and method.upper() != wanted:
                raise ValueError(f"method={method!r} contradicts REML={REML}")
            return wanted
        return method
    if REML:
        raise ValueError("REML applies to linear mixed models only")
    if method is None and kind == "glmm":
        nAGQ = kwargs.get("nAGQ", 1)
        if nAGQ == 0 or kwargs.get("fast", False):
            return "nAGQ0"
        return "agq" if nAGQ > 1 else "laplace"
    return method
