"""Full Bayesian inference through the model graph: the non-centered ``pm.Model``
(``model``), its priors (``priors``), NUTS sampling into a DataTree (``sample``) and posterior
predictive draws (``predictive``). PyMC, nutpie and ArviZ load on first use."""

from .model import build_pymc_model, cached_pymc_model
from .priors import Prior, default_priors, dispersion_name, merge_priors
from .sample import compile_nutpie, evaluate_over_draws, sample_model

__all__ = ["Prior", "default_priors", "merge_priors", "dispersion_name", "build_pymc_model",
           "cached_pymc_model", "sample_model", "evaluate_over_draws", "compile_nutpie"]
