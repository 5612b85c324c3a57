"""Full Bayesian inference through the model graph, in files a newcomer can name:

``model``          the ``pm.Model`` (real PyMC likelihood, predictor through ``spec.mean``)
``likelihood``     the family's PyMC distribution for the observed response
``parametrization``  centered or non-centered random effects, chosen from the ML fit
``priors``         :class:`Prior`, the documented defaults, checks on assignment
``sample``         NUTS (nutpie, PyMC, numpyro, blackjax) into a tidy DataTree
``diagnostics``    R-hat, ESS, divergence and E-BFMI warnings
``predictive``     prior / posterior predictive (PyMC's own) and predictions on new data
``nutpie_fast``    nutpie's compilation with faster-compiling callbacks

PyMC, nutpie and ArviZ load on first use."""

from .diagnostics import check_convergence
from . import nonlinear as _nonlinear  # noqa: F401  (registers the nonlinear default priors)
from .model import build_pymc_model, cached_pymc_model
from .nutpie_fast import compile_nutpie
from .parametrization import choose_centering
from .predictive import full_trace, predict, sample_posterior_predictive, sample_prior_predictive
from .priors import Prior, default_priors, dispersion_name, merge_priors
from .sample import evaluate_over_draws, sample_model

__all__ = ["Prior", "default_priors", "merge_priors", "dispersion_name", "build_pymc_model",
           "cached_pymc_model", "sample_model", "evaluate_over_draws", "compile_nutpie",
           "check_convergence", "choose_centering", "full_trace", "predict",
           "sample_prior_predictive", "sample_posterior_predictive"]
