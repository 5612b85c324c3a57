"""Posterior predictive draws in NumPy: the mean of every draw through ``spec.mean`` and
responses drawn by the family (``family.simulate``)."""

from __future__ import annotations

import numpy as np

from ..spec import factor_groups

__all__ = ["eta_draws", "simulate_responses"]


def eta_draws(spec, post) -> np.ndarray:
    """The link-scale predictor for every draw, (chain, draw, obs), from ``beta`` and the
    ``b_g`` of a posterior (``spec.mean.predict_numpy`` with leading draw dimensions)."""
    shape = (post.sizes["chain"], post.sizes["draw"])
    beta = post["beta"].values if spec.p else np.zeros(shape + (0,))
    blocks: list = [None] * len(spec.reterms)
    for g, info in factor_groups(spec.reterms).items():
        bg = post[f"b_{g}"].values  # (chain, draw, levels, ncol): the factor's terms in turn
        col = 0
        for k in info["terms"]:
            p = spec.reterms[k].p
            blocks[k] = bg[..., col:col + p]
            col += p
    return spec.mean.predict_numpy(spec, beta, blocks)


def simulate_responses(spec, eta: np.ndarray, disp, rng) -> np.ndarray:
    """Draw responses given link-scale ``eta`` (chain, draw, obs) and dispersion draws
    (chain, draw), on the scale of ``spec.y`` (proportions for the binomial)."""
    fam = spec.family
    mu = fam.linkinv(eta) if hasattr(fam, "linkinv") else eta
    d = None if disp is None else np.asarray(disp)[..., None]
    if getattr(spec, "trials", None) is not None:
        n = np.asarray(spec.trials, dtype=float)
    else:  # lme4: a proportion response with weights = numbers of trials
        n = np.ones(spec.n) if spec.weights is None else np.asarray(spec.weights, float)
    return fam.simulate(mu, d, n, rng, weights=spec.prior_weights)
