"""Estimators: one module per family of methods, each registering itself in :mod:`.base`.

``pls`` (exact ML/REML for LMMs), ``pirls``/``agq``/``glmm`` (Laplace, adaptive Gauss-Hermite
quadrature and ``nAGQ = 0`` for GLMMs); ``optimize`` (BOBYQA with an inspectable record),
``curvature`` (the one Hessian routine), ``start`` (moment starting values).
"""

from . import glmm as _glmm  # noqa: F401  (registers ("glmm", ...))
from . import pls as _pls  # noqa: F401  (registers ("lmm", ...))
from .base import estimator, methods, register

__all__ = ["estimator", "methods", "register"]
