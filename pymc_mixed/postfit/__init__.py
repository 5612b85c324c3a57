"""Inference after a maximum-likelihood fit, from the result alone: the normal approximation
(``approx``), simulation and the parametric bootstrap (``bootstrap``, GLMMs in ``simulate``),
likelihood-ratio tests (``anova``, ``drop1``), the ML-vs-posterior table (``compare``), profile
likelihood and intervals (``profile``, ``intervals``, ``problems``), influence diagnostics
(``influence``), predictions with a subset of the random effects (``predict``), parameters on
their natural scale, ``coef`` and ``rePCA`` (``params``), refits and formula updates
(``update``).

What needs the estimator (a deviance, its curvature, a refit, its objective) comes with the
result as values (``result.curvature``, ``result.engine``, ``result.response_refitter``);
nothing here imports an estimator, and :mod:`pymc_mixed.postfit._refit` is the one module that
reads the engine.
"""

from .influence import cooks_distance, hatvalues, influence, rstudent
from .intervals import confint
from .params import coef, repca
from .predict import predict
from .profile import Profile, profile
from .simulate import bootstrap_glmm, simulate_glmm
from .update import drop1, refit, update_formula, update_spec

__all__ = ["profile", "Profile", "confint", "hatvalues", "cooks_distance", "rstudent",
           "influence", "coef", "repca", "predict", "simulate_glmm", "bootstrap_glmm",
           "refit", "update_spec", "update_formula", "drop1"]
