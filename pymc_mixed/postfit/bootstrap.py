"""Simulation from a fitted mixed model and the parametric bootstrap.

GLMMs are simulated and refitted by :mod:`pymc_mixed.postfit.simulate`. For an LMM a bootstrap refit changes only the response, so the blocked system's structure (and every
cross-product but those with ``y``) is reused: each replicate costs a few dozen evaluations
started at the original estimate (as MixedModels.jl's ``parametricbootstrap``). The refit is
the estimator's, handed to the result as ``result.response_refitter``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["simulate", "parametric_bootstrap", "BootstrapResult"]


def simulate(result, nsim: int = 1, seed=None, beta=None, theta=None, sigma=None) -> np.ndarray:
    """Draw ``nsim`` new response vectors from a fitted LMM or GLMM (new random effects and
    noise; every GLMM family, with its offset and trials: see
    :func:`pymc_mixed.postfit.simulate.simulate_glmm`).

    Parameters default to the estimates; pass ``beta``, ``theta``, ``sigma`` to simulate from
    other values (for a GLMM ``sigma`` is the family's dispersion). Returns an array of shape
    (nsim, n); observations of prior weight zero (left out of the fit) are NaN.
    """
    spec = result.spec
    if spec.kind != "lmm":
        from .simulate import simulate_glmm

        disp = {} if sigma is None else {"dispersion": float(sigma)}
        return simulate_glmm(result, nsim=nsim, seed=seed, beta=beta, theta=theta, **disp)
    rng = np.random.default_rng(seed)
    beta = result.beta if beta is None else np.asarray(beta, dtype=float)
    theta = result._theta if theta is None else np.asarray(theta, dtype=float)
    sigma = result.sigma if sigma is None else float(sigma)
    w = spec.prior_weights
    # rows of weight zero are not part of the model (docs/bad_input.md): NaN, not inf
    noise_sd = np.where(w > 0, 1.0 / np.sqrt(np.where(w > 0, w, 1.0)), np.nan)
    mean = spec.mean.predict_numpy(spec, beta, None)
    out = np.empty((nsim, spec.n))
    for i in range(nsim):
        # b = sigma * Lambda_theta u: theta is relative to the residual scale in an LMM
        u = rng.standard_normal(spec.q)
        eta = mean + sigma * spec.Zb(spec.b_blocks(theta, u))
        out[i] = eta + sigma * rng.standard_normal(spec.n) * noise_sd
    return out


@dataclass
class BootstrapResult:
    """Replicates of a parametric bootstrap: one row per replicate."""

    replicates: pd.DataFrame
    estimate: pd.Series

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals for every parameter."""
        a = (1 - level) / 2
        q = self.replicates.quantile([a, 1 - a]).T
        q.columns = [f"{100 * a:.1f} %", f"{100 * (1 - a):.1f} %"]
        return q

    def __repr__(self) -> str:
        return (f"BootstrapResult({len(self.replicates)} replicates)\n"
                f"{self.confint().to_string(float_format=lambda v: f'{v:.4g}')}")


def parametric_bootstrap(result, n: int = 1000, seed=None, progressbar: bool = True):
    """Refit the model to ``n`` responses simulated from it; returns a :class:`BootstrapResult`
    with one column per parameter in the model's layout (:class:`~pymc_mixed.spec.ParamLayout`):
    each theta element, each fixed effect, ``sigma`` (LMM) or the GLMM's dispersion. GLMM
    refits are warm-started at the estimates on one objective whose response alone is swapped
    (:func:`pymc_mixed.postfit.simulate.bootstrap_glmm`)."""
    from ..errors import ConvergenceWarning

    spec = result.spec
    layout = spec.layout
    if spec.kind == "glmm":
        from .simulate import bootstrap_glmm

        rows, names = bootstrap_glmm(result, n=n, seed=seed, progressbar=progressbar)
        est = layout.pack(result.theta_hat, result.beta, result.dispersion)
        return BootstrapResult(replicates=pd.DataFrame(rows, columns=names),
                               estimate=pd.Series(est, index=names))
    if getattr(result, "response_refitter", None) is None:
        raise NotImplementedError("parametric_bootstrap() is available for linear and "
                                  "generalized linear mixed models")
    refit = result.response_refitter()
    ys = simulate(result, nsim=n, seed=seed)
    step = np.maximum(0.1 * np.abs(result._theta), 0.02)
    rows = np.empty((n, layout.size))
    iterator = range(n)
    if progressbar:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="bootstrap", unit="fit")
    with refit.threads(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in iterator:
            theta, beta, sigma = refit(ys[i], result._theta, step)
            rows[i] = layout.pack(theta, beta, sigma)
    est = pd.Series(layout.pack(result._theta, result.beta, result.sigma), index=layout.names)
    return BootstrapResult(replicates=pd.DataFrame(rows, columns=layout.names), estimate=est)
