"""The one place where post-fit code reaches the estimators and the linear algebra.

Profiles, bootstraps and updates re-evaluate a model's objective or refit it. They import the
estimators only through the functions below (and only inside them, so that importing
:mod:`pymc_mixed.postfit` loads no estimator): when the package layout changes, this module is
the one to adapt.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def spec_with(spec, **changes):
    """A copy of a ModelSpec with some fields replaced (``y``, ``X``, ``xnames``, ...)."""
    return dataclasses.replace(spec, **changes)


def lmm_objective(spec, REML: bool):
    """The profiled LMM objective of theta (``LMMObjective``); ``.system`` is its factor."""
    from ..fit.pls import LMMObjective

    return LMMObjective(spec, REML)


def fit_lmm(spec, REML: bool, **kwargs):
    """Fit a linear mixed model (``pymc_mixed.fit.pls.fit_lmm``)."""
    from ..fit.pls import fit_lmm as _fit

    return _fit(spec, REML=REML, **kwargs)


def fit_glmm(spec, **kwargs):
    """Fit a GLMM (``pymc_mixed.fit.glmm.fit_glmm``)."""
    from ..fit.glmm import fit_glmm as _fit

    return _fit(spec, **kwargs)


def fit_like(result, spec, **kwargs):
    """Refit ``spec`` with the estimator and settings that produced ``result``."""
    if is_lmm(result):
        return fit_lmm(spec, REML=bool(getattr(result, "REML", False)), **kwargs)
    return fit_glmm(spec, nAGQ=int(getattr(result, "nAGQ", 1)),
                    fast=bool(getattr(result, "fast", False)), **kwargs)


def is_lmm(result) -> bool:
    """True for a linear mixed model (Gaussian, identity link) fitted by ML/REML."""
    fam = result.spec.family
    return fam.name == "gaussian" and fam.link == "identity"


def laplace_objective(spec, nAGQ: int = 1, tol: float = 1e-10):
    """The Laplace (or AGQ) objective of ``x = (theta, beta[, log dispersion])`` and its data
    (``GLMMData``: swap ``data.resp`` to change the response)."""
    from ..fit.agq import AGQObjective
    from ..fit.pirls import GLMMData, LaplaceObjective

    data = GLMMData(spec)
    obj = AGQObjective(data, nAGQ, tol=tol) if nAGQ > 1 else LaplaceObjective(data, tol=tol)
    return data, obj


def minimize_bobyqa(f, x0, lower, upper=None, **kwargs):
    """NLopt BOBYQA (``pymc_mixed.fit.optimize.minimize_bobyqa``), without warnings."""
    import warnings

    from ..fit.optimize import ConvergenceWarning, minimize_bobyqa as _min

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _min(f, x0, lower, upper, keep_log=False, **kwargs)


def single_threaded_blas(size=None):
    """Context manager limiting BLAS to one thread (see ``pymc_mixed.linalg.threads``)."""
    from ..linalg.threads import single_threaded_blas as _st

    return _st(size)


def objective_hessian(obj, x) -> np.ndarray:
    """Hessian of a Laplace/AGQ objective at ``x`` (``pymc_mixed.fit.glmm``)."""
    from ..fit.glmm import objective_hessian as _h

    return _h(obj, x)


def build_spec(formula, data, **kwargs):
    """Formula and data to a ModelSpec (``pymc_mixed.formula.build_spec``)."""
    from ..formula import build_spec as _build

    return _build(formula, data, **kwargs)


def prepare_response(spec, y):
    """The family's prepared response (trials, prior weights) for a new ``y`` on the scale of
    ``spec.y``: what a GLMM objective reads as ``data.resp``."""
    fam = spec.family
    kw = {"response": spec.response} if hasattr(fam, "validate_trials") else {}
    return fam.prepare(np.asarray(y, dtype=float), spec.trials, spec.weights, **kw)
