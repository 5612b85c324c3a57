"""Nonlinear mixed-effects models: ``phi = A beta + B b``, ``y = f(phi, x) + e``."""

from .error_models import ErrorModel, get_error_model
from .kernel import ModelFunctionError, NonlinearKernel
from .mean import NonlinearMean
from .model import NonlinearMixedModel
from .result import NonlinearResult
from .spec import NonlinearSpec, build_nonlinear_spec

__all__ = ["ErrorModel", "get_error_model", "ModelFunctionError", "NonlinearKernel",
           "NonlinearMean", "NonlinearMixedModel", "NonlinearResult", "NonlinearSpec", "build_nonlinear_spec"]
