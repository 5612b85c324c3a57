"""Fitted models: one declared result type per model kind, filled by its estimator.

``base`` holds :class:`MixedModelResult` (estimates, random effects, fit statistics, summary,
predictions) and :class:`Curvature` (what post-fit inference needs, handed over by the
estimator); ``engine`` :class:`FitEngine` (the estimator's callables for refits and
profiles); ``lmm`` and ``glmm`` the kind-specific parts; ``varcorr`` the variance components.
Nothing here imports an estimator.
"""

from .base import Curvature, MixedModelResult
from .engine import FitEngine
from .glmm import GLMMResult
from .lmm import LMMResult
from .varcorr import VarCorr

__all__ = ["MixedModelResult", "LMMResult", "GLMMResult", "Curvature", "FitEngine", "VarCorr"]
