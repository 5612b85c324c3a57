"""pymc_mixed: mixed-effects models on PyMC and PyTensor.

Exact ML/REML for linear mixed models, Laplace and adaptive Gauss-Hermite quadrature for
generalized ones, and NUTS through the same model graph, with results as ArviZ DataTrees.

Heavy dependencies (PyMC, ArviZ, PyTensor) are imported only on the paths that use them, so
``import pymc_mixed`` and a maximum-likelihood fit stay fast.
"""

from . import datasets
from .postfit.anova import anova
from .postfit.bootstrap import parametric_bootstrap, simulate
from .errors import ConvergenceWarning, SingularFitWarning
from .formula import FormulaError
from .model import MixedModel
from .matlab import nlmefit, nlmefitsa
from .nonlinear.model import NonlinearMixedModel
from .postfit import drop1

__version__ = "0.1.0"

__all__ = ["MixedModel", "NonlinearMixedModel", "nlmefit", "nlmefitsa", "FormulaError",
           "ConvergenceWarning", "SingularFitWarning", "anova", "datasets", "drop1",
           "parametric_bootstrap", "simulate",
           "compare", "plot_compare", "plot_ranef", "__version__"]

# ML-vs-posterior comparison and plots import pandas/scipy/matplotlib/arviz-plots paths:
# loaded on first use.
_LAZY = {"compare": ("postfit.compare", "compare"), "plot_compare": ("plots", "plot_compare"),
         "plot_ranef": ("plots", "plot_ranef")}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        value = getattr(import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
