"""The nonlinear estimators, registered under the model kind ``"nlmm"``.

Each is ``fit(spec, kernel=..., **options) -> NonlinearResult`` (see
:mod:`pymc_mixed.fit.base`): ``LME`` (nlme's Lindstrom-Bates alternation, the default),
``RELME`` (its REML form), ``FO``, ``FOCE`` (alias ``laplace``: Laplace at the conditional
modes with the Gauss-Newton Hessian, as nlmer) and ``AGQ`` (adaptive Gauss-Hermite quadrature,
``nAGQ`` nodes per dimension). FO, FOCE and AGQ start from a loosely converged LME fit.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ..fit.base import register
from .error_models import get_error_model
from .result import NonlinearResult

__all__ = ["fit_lme_method", "fit_laplace_method", "fit_saem_method"]


def _kernel(spec, kernel):
    if kernel is None:
        from .kernel import NonlinearKernel

        kernel = NonlinearKernel(spec)
    return kernel


def _lme(spec, kernel, method: str, callback, tol: float):
    from .lme import fit_lme

    return fit_lme(spec, kernel, REML=(method == "RELME"), tol=tol, callback=callback)


def _lme_result(spec, kernel, lme, method: str) -> NonlinearResult:
    b = spec.b_blocks(lme.theta, lme.u)
    return NonlinearResult(
        spec=spec, kernel=kernel, method=method, beta=lme.beta, theta_=lme.theta,
        sigma=lme.sigma, shape=np.zeros(0), vcov_beta=lme.vcov_beta, b_blocks=b,
        deviance=lme.deviance - 2 * spec.error_model.log_jacobian(spec.y), optsum=lme.optsum,
        se_method="linearized Fisher information (nlme's varFix)",
        converged=lme.converged and not lme.stopped, stopped=lme.stopped)


def fit_lme_method(spec, *, kernel=None, method: str = "LME", callback=None
                   ) -> NonlinearResult:
    """Lindstrom-Bates LME (or RELME): PNLS for (beta, b), then an LMM on the linearized model."""
    kernel = _kernel(spec, kernel)
    return _lme_result(spec, kernel, _lme(spec, kernel, method, callback, tol=1e-9), method)


def fit_laplace_method(spec, *, kernel=None, method: str = "FOCE", nAGQ: int = 1,
                       callback=None) -> NonlinearResult:
    """FO, FOCE/Laplace or AGQ, started from a loosely converged LME fit."""
    from .laplace import fit_laplace

    kernel = _kernel(spec, kernel)
    # LME has no combined error model: its start values come from the constant model
    start_spec = spec if spec.error_model.name != "combined" else \
        dataclasses.replace(spec, error_model=get_error_model("constant"))
    lme = _lme(start_spec, kernel, "LME", callback, tol=1e-4)
    if lme.stopped:  # the user's output function asked to stop during the start-up
        return _lme_result(spec, kernel, lme, "LME")
    key = "FOCE" if method == "AGQ" else method
    obj, theta, beta, sigma, shape, vcov, opt = fit_laplace(
        spec, kernel, key, int(nAGQ), lme.theta, lme.beta)
    U = np.zeros((obj.lay.G, obj.lay.k)) if key == "FO" else obj.find_modes(theta, beta, shape).U
    b = obj.lay.b_blocks(U, obj.lay.Lam(theta))
    name = key if nAGQ <= 1 else f"AGQ(nAGQ={nAGQ})"
    return NonlinearResult(
        spec=spec, kernel=kernel, method=name, beta=beta, theta_=theta, sigma=sigma,
        shape=shape, vcov_beta=vcov, b_blocks=b, deviance=float(opt.fmin), optsum=opt,
        se_method=obj.se_method, converged=opt.converged)


def fit_saem_method(spec, *, kernel=None, callback=None, seed=None, **options):
    """SAEM (:mod:`pymc_mixed.nonlinear.saem`): exact ML by stochastic approximation EM."""
    from .saem import fit_saem

    if callback is not None:
        raise TypeError("SAEM takes nlmefitsa's OutputFcn=f(beta, status, state), not callback=")
    return fit_saem(spec, _kernel(spec, kernel), seed=seed, **options)


register("nlmm", "LME", functools.partial(fit_lme_method, method="LME"), default=True)
register("nlmm", "RELME", functools.partial(fit_lme_method, method="RELME"))
for _m in ("FO", "FOCE", "AGQ"):
    register("nlmm", _m, functools.partial(fit_laplace_method, method=_m))
register("nlmm", "laplace", functools.partial(fit_laplace_method, method="FOCE"))
register("nlmm", "SAEM", fit_saem_method)
