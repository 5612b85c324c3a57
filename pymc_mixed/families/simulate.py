"""Responses drawn from a model's family at given link-scale predictors (bootstrap, simulate)."""

from __future__ import annotations

import numpy as np

__all__ = ["simulate_responses"]


def simulate_responses(spec, eta: np.ndarray, disp, rng) -> np.ndarray:
    """Draw responses given link-scale ``eta`` (..., obs) and dispersion draws (...), on the
    scale of ``spec.y`` (proportions for a binomial response given with weights = trials)."""
    fam = spec.family
    mu = fam.linkinv(eta) if hasattr(fam, "linkinv") else eta
    d = None if disp is None else np.asarray(disp)[..., None]
    if getattr(spec, "trials", None) is not None:
        n = np.asarray(spec.trials, dtype=float)
    else:  # lme4: a proportion response with weights = numbers of trials
        n = np.ones(spec.n) if spec.weights is None else np.asarray(spec.weights, float)
    return fam.simulate(mu, d, n, rng, weights=spec.prior_weights)
