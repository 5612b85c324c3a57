"""The one place where post-fit code reaches an estimator: through the result.

Profiles, bootstraps, influence refits and updates re-evaluate a model's objective or refit a
changed model. The estimator that made a result hands it a
:class:`~pymc_mixed.results.engine.FitEngine` (``result.engine``: its fit, its objective, its
minimizer), so nothing in :mod:`pymc_mixed.postfit` imports an estimator; this module reads that
hand-over and is the one to adapt when it changes.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ..errors import ConvergenceWarning


def spec_with(spec, **changes):
    """A copy of a ModelSpec (or ReTerm) with some fields replaced (``y``, ``X``, ...)."""
    return dataclasses.replace(spec, **changes)


def is_lmm(result) -> bool:
    """True for a linear mixed model (Gaussian, identity link) fitted by ML/REML."""
    return result.spec.kind == "lmm"


def engine(result):
    """The estimator's hand-over of ``result`` (raises when the result has none)."""
    eng = getattr(result, "engine", None)
    if eng is None:
        raise ValueError(f"this {type(result).__name__} carries no estimator to refit with "
                         "(it was not made by pymc_mixed's ML estimators)")
    return eng


def fit_like(result, spec, **kwargs):
    """Fit ``spec`` with the estimator and settings that produced ``result`` (keyword
    arguments override them: ``REML=False``, ``theta0=...``)."""
    return engine(result).fit(spec, **kwargs)


def lmm_objective(result, spec=None, REML: bool = False):
    """The profiled LMM objective of theta for ``spec`` (default the result's);
    ``.system`` is its blocked factor."""
    return engine(result).objective(result.spec if spec is None else spec, REML)


def laplace_objective(result, spec=None, **kwargs):
    """``(data, obj)``: the GLMM's Laplace/AGQ objective of ``x = (theta, beta[, log
    dispersion])`` and its data (swap ``data.resp`` to change the response)."""
    return engine(result).objective(result.spec if spec is None else spec, **kwargs)


def minimize(result, f, x0, lower, upper=None, **kwargs):
    """The estimator's bounded derivative-free minimizer (BOBYQA), without convergence
    warnings (a profile point or a bootstrap refit reports through its value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return engine(result).minimize(f, x0, lower, upper, keep_log=False, **kwargs)


def prepare_response(spec, y):
    """The family's prepared response (trials, prior weights) for a new ``y`` on the scale of
    ``spec.y``: what a GLMM objective reads as ``data.resp``."""
    fam = spec.family
    kw = {"response": spec.response} if hasattr(fam, "validate_trials") else {}
    return fam.prepare(np.asarray(y, dtype=float), spec.trials, spec.weights, **kw)
