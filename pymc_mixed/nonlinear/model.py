"""NonlinearMixedModel: a mechanistic mean function with fixed and random parameters."""

from __future__ import annotations

import numpy as np

from .kernel import NonlinearKernel
from .mean import NonlinearMean
from .result import NonlinearResult
from .spec import build_nonlinear_spec

__all__ = ["NonlinearMixedModel"]

_METHODS = {"lme": "LME", "relme": "RELME", "fo": "FO", "foce": "FOCE", "laplace": "FOCE"}


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
        self.mean = NonlinearMean()
        self.kernel.check_start(self.spec.phi_fixed(self.spec.beta0))

    def fit(self, method: str = "LME", nAGQ: int | None = None, callback=None, seed=None,
            **saem_options) -> NonlinearResult:
        """Maximum likelihood by ``method``: ``"LME"`` (default; nlme's Lindstrom-Bates),
        ``"RELME"`` (its REML form), ``"FO"``, ``"FOCE"`` (alias ``"laplace"``: Laplace at the
        conditional modes with the Gauss-Newton Hessian, as nlmer). ``nAGQ = k > 1`` uses
        adaptive Gauss-Hermite quadrature with ``k`` nodes per dimension (one grouping factor);
        ``nAGQ = 1`` is FOCE. FO/FOCE/AGQ start from the LME estimates. ``"SAEM"``: exact
        maximum likelihood by stochastic approximation EM with ``seed`` and nlmefitsa's
        options (see :mod:`pymc_mixed.nonlinear.saem`)."""
        if str(method).lower() == "saem":
            from .saem import fit_saem
            return fit_saem(self.spec, self.kernel, seed=seed, **saem_options)
        if saem_options:
            raise TypeError(f"unexpected arguments for method {method!r}: {', '.join(saem_options)}")
        key = _METHODS.get(str(method).lower())
        if key is None:
            raise ValueError(f"method must be one of LME, RELME, FO, FOCE, laplace; got {method!r}")
        if nAGQ is not None:
            if int(nAGQ) != nAGQ or nAGQ < 1:
                raise ValueError(f"nAGQ must be a whole number >= 1, got {nAGQ!r}")
            key = "FOCE"
        from .lme import fit_lme

        spec = self.spec
        # FO/FOCE/AGQ only start from LME's estimates: a loose alternation is enough there
        tol = 1e-9 if key in ("LME", "RELME") else 1e-4
        lme = fit_lme(spec, self.kernel, REML=(key == "RELME"), tol=tol, callback=callback)
        if key in ("LME", "RELME") or lme.stopped:
            b = spec.b_blocks(lme.theta, lme.u)
            return NonlinearResult(
                spec=spec, kernel=self.kernel, method=key if not lme.stopped else "LME",
                beta=lme.beta, theta_=lme.theta, sigma=lme.sigma, shape=np.zeros(0),
                vcov_beta=lme.vcov_beta, b_blocks=b,
                deviance=lme.deviance - 2 * spec.error_model.log_jacobian(spec.y),
                optsum=lme.optsum, se_method="linearized Fisher information (nlme's varFix)",
                converged=lme.converged, stopped=lme.stopped)
        return self._fit_laplace(key, int(nAGQ or 1), lme)

    def _fit_laplace(self, key: str, nAGQ: int, lme) -> NonlinearResult:
        from .laplace import fit_laplace

        spec = self.spec
        obj, theta, beta, sigma, shape, vcov, opt = fit_laplace(
            spec, self.kernel, key, nAGQ, lme.theta, lme.beta)
        if key == "FO":
            U = np.zeros((obj.lay.G, obj.lay.k))
        else:
            U = obj.find_modes(theta, beta, shape).U
        b = obj.lay.b_blocks(U, obj.lay.Lam(theta))
        name = key if nAGQ <= 1 else f"AGQ(nAGQ={nAGQ})"
        return NonlinearResult(
            spec=spec, kernel=self.kernel, method=name, beta=beta, theta_=theta, sigma=sigma,
            shape=shape, vcov_beta=vcov, b_blocks=b, deviance=float(opt.fmin), optsum=opt,
            se_method=obj.se_method, converged=opt.converged)

    def graph(self):
        """The plain joint log density ``log p(y, u | beta, theta, sigma)`` (constant error
        model) through :func:`pymc_mixed.graph.joint_logp_graph` with this model's mean."""
        from ..graph import joint_logp_graph

        if self.spec.error_model.name != "constant":
            raise NotImplementedError("the PyTensor graph covers the constant error model for now")
        return joint_logp_graph(self.spec, predictor=self.mean.predictor)
