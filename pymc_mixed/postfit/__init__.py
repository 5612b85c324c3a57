"""The analysis after a fit: profile likelihood and intervals, influence diagnostics,
simulation and the parametric bootstrap for GLMMs, predictions, refits and model updates.

Every function here takes a fitted result and reads only its public attributes (``spec``,
``beta``, ``theta``, ``sigma``, ``u``, ``vcov``, ``objective``, ``REML``/``nAGQ``); the
estimators they re-run are reached through :mod:`pymc_mixed.postfit._refit` alone.
"""

from .influence import cooks_distance, hatvalues, influence, rstudent
from .intervals import confint
from .params import coef, repca
from .predict import predict
from .profile import Profile, profile
from .simulate import bootstrap_glmm, simulate_glmm
from .update import drop1, refit, update, update_formula

__all__ = ["profile", "Profile", "confint", "hatvalues", "cooks_distance", "rstudent",
           "influence", "coef", "repca", "predict", "simulate_glmm", "bootstrap_glmm",
           "refit", "update", "update_formula", "drop1"]
