"""NonlinearMixedModel: a mechanistic mean function with fixed and random parameters."""

from __future__ import annotations

from . import estimators as _estimators  # noqa: F401  (registers the nlmm methods)
from .kernel import NonlinearKernel
from .result import NonlinearResult
from .spec import build_nonlinear_spec

__all__ = ["NonlinearMixedModel"]

class NonlinearMixedModel:
    """``y = f(A beta + B b, x) + e``, ``b ~ N(0, Psi)`` per group.

    Parameters
    ----------
    fun : ``fun(phi, col1, col2, ...)`` returning the mean, one value per observation, as a
        PyTensor expression; ``phi["name"]`` is each parameter per observation, the further
        arguments are data columns by name.
    data : pandas DataFrame.
    response : name of the response column.
    fixed : ``{param: formula}`` fixed part of every parameter (``"1"``, ``"1 + Wt"``).
    random : ``"p1 + p2 ~ 1 | group"`` or a list of them (several grouping factors).
    cov : ``"full"`` (default), ``"diagonal"`` or blocks ``[["p1"], ["p2", "p3"]]``.
    start : starting values of the parameters (their intercepts) or of named coefficients.
    error_model : ``"constant"``, ``"proportional"``, ``"combined"`` or ``"exponential"``.
    """

    def __init__(self, fun, data, response: str, fixed: dict, random, cov="full", start=None,
                 error_model: str = "constant"):
        self.spec = build_nonlinear_spec(fun, data, response, fixed, random, cov=cov,
                                         start=start, error_model=error_model)
        self.kernel = NonlinearKernel(self.spec)   # compiled once, on first use
        self.result = None
        self.kernel.check_start(self.spec.phi_fixed(self.spec.beta0))

    def fit(self, method: str = "LME", nAGQ: int | None = None, callback=None,
            **options) -> NonlinearResult:
        """Maximum likelihood by ``method``: ``"LME"`` (default; nlme's Lindstrom-Bates),
        ``"RELME"`` (its REML form), ``"FO"``, ``"FOCE"`` (alias ``"laplace"``: Laplace at the
        conditional modes with the Gauss-Newton Hessian, as nlmer). ``nAGQ = k > 1`` uses
        adaptive Gauss-Hermite quadrature with ``k`` nodes per dimension (one grouping factor);
        ``nAGQ = 1`` is FOCE. FO/FOCE/AGQ start from the LME estimates. ``"SAEM"``: exact
        maximum likelihood by stochastic approximation EM, with ``seed=`` and nlmefitsa's
        options (see :mod:`pymc_mixed.nonlinear.saem`). Estimators are looked up in the
        registry (:mod:`pymc_mixed.fit.base`) under the kind ``"nlmm"``; further keyword
        arguments go to the estimator. Keeps the result as ``self.result``."""
        from ..fit.base import estimator, methods

        if nAGQ is not None:
            if int(nAGQ) != nAGQ or nAGQ < 1:
                raise ValueError(f"nAGQ must be a whole number >= 1, got {nAGQ!r}")
            options["nAGQ"] = int(nAGQ)
            if str(method).upper() in ("LME", "RELME", "FO"):
                method = "AGQ" if nAGQ > 1 else "FOCE"
        try:
            fit = estimator("nlmm", method)
        except ValueError:
            raise ValueError(f"method must be one of {', '.join(methods('nlmm'))}; "
                             f"got {method!r}") from None
        _check_options(fit, method, options)
        self.result = fit(self.spec, kernel=self.kernel, callback=callback, **options)
        _warn_if_not_converged(self.result)
        return self.result

    # -- Bayesian inference through the same PyMC model builder as MixedModel -----------------
    @property
    def priors(self) -> dict:
        """Priors by parameter name (``beta``, ``sd_<group>``, ``corr_<group>``, ``sigma``, and
        ``sigma_prop`` for the combined error model); defaults around the start values as
        documented in :mod:`pymc_mixed.bayes.nonlinear`. Assigning a dict replaces some of
        them (checked: names, lengths, positive support); one coefficient by ``"beta[lka]"``."""
        if getattr(self, "_priors", None) is None:
            from ..bayes import default_priors

            self._priors = default_priors(self.spec)
        return self._priors

    @priors.setter
    def priors(self, value) -> None:
        from ..bayes import merge_priors

        self._priors = merge_priors(self.spec, value)

    @property
    def pymc_model(self):
        """The ``pm.Model`` (built once per set of priors): ``beta`` named by the coefficients,
        ``sd_<group>``, ``b_<group>`` with level coordinates, ``theta``, the error parameters
        and the response under the error model (:mod:`pymc_mixed.bayes.nonlinear`)."""
        from ..bayes import cached_pymc_model
        from ..bayes.nonlinear import nonlinear_centering

        return cached_pymc_model(self, centered=nonlinear_centering(self))

    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4, seed=None,
               sampler: str = "auto", progressbar: bool = True, centered: dict | None = None,
               **kwargs):
        """NUTS through :func:`pymc_mixed.bayes.sample_model` (nutpie when installed); returns a
        DataTree with the layout of :meth:`pymc_mixed.MixedModel.sample`. ``centered={group:
        bool}`` overrides the default parametrization (non-centered random effects)."""
        from ..bayes import cached_pymc_model, sample_model
        from ..bayes.nonlinear import nonlinear_centering

        model = cached_pymc_model(self, centered=centered or nonlinear_centering(self))
        return sample_model(self.spec, model, draws=draws, tune=tune, chains=chains, seed=seed,
                            sampler=sampler, progressbar=progressbar, **kwargs)

    def __repr__(self) -> str:
        s = self.spec
        head = (f"NonlinearMixedModel({s.formula!r}, error_model={s.error_model.name!r}, "
                f"n={s.n}, coef=[{', '.join(s.xnames)}], random=[{', '.join(s.theta_names)}])")
        return head + "\n  priors: " + ", ".join(f"{k}={v!r}" for k, v in self.priors.items())

    def graph(self):
        """The plain joint log density ``log p(y, u | beta, theta, sigma)`` (constant error
        model) through :func:`pymc_mixed.graph.joint_logp_graph` with this model's mean."""
        from ..graph import joint_logp_graph

        if self.spec.error_model.name != "constant":
            raise NotImplementedError("the PyTensor graph covers the constant error model for now")
        return joint_logp_graph(self.spec)


def _check_options(fit, method, options: dict) -> None:
    """A named error for options the method's estimator does not take (SAEM's ``NChains`` given
    to FOCE, say), rather than a TypeError from deep inside."""
    import inspect

    params = inspect.signature(fit).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    extra = [k for k in options if k not in params]
    if extra:
        raise TypeError(f"unexpected arguments for method {method!r}: {', '.join(extra)}")


def _warn_if_not_converged(res) -> None:
    """Non-convergence and singular covariances are reported as warnings too, as for
    linear models (a fit stopped by the user's output function says so in the result)."""
    import warnings

    from ..errors import ConvergenceWarning, SingularFitWarning

    if not getattr(res, "converged", True) and not getattr(res, "stopped", False):
        warnings.warn(f"the {res.method} fit did not converge (see result.optsum)",
                      ConvergenceWarning, stacklevel=3)
    if res.issingular():
        warnings.warn("boundary (singular) fit: a random-effects covariance matrix is singular "
                      "(see result.issingular() and result.varcorr)", SingularFitWarning,
                      stacklevel=3)
