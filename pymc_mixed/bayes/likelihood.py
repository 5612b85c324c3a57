"""The observed variable of the PyMC model as a real PyMC distribution of the family.

``pm.Normal``, ``pm.Binomial`` / ``pm.Bernoulli``, ``pm.Poisson``, ``pm.NegativeBinomial`` and
``pm.Gamma`` carry their own random methods, so ``pm.sample_prior_predictive``,
``pm.sample_posterior_predictive`` and ``pm.model_to_graphviz`` work on the model as on any
PyMC model. The predictor ``eta`` is any PyTensor expression of the parameters (the spec's
mean: linear or nonlinear alike); only its inverse link is applied here.

Cases PyMC's distributions do not express -- binomial prior weights other than 1, or
non-integer trials -- fall back to a ``pm.CustomDist`` with the family's own log density
(:func:`pymc_mixed.graph.pointwise_loglik`) and the family's ``simulate`` as random method,
so predictive sampling still works there.
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_likelihood", "observed_values", "trials_of"]


def trials_of(spec) -> np.ndarray | None:
    """Binomial trials per observation (``cbind`` totals, or lme4's weights of a proportion
    response); None for the other families."""
    if spec.family.name not in ("binomial", "bernoulli"):
        return None
    if getattr(spec, "trials", None) is not None:
        return np.asarray(spec.trials, dtype=float)
    if spec.weights is not None:
        return np.asarray(spec.weights, dtype=float)
    return np.ones(spec.n)


def _binomial_exact(spec) -> bool:
    """Whether ``pm.Binomial`` expresses the binomial log-likelihood of ``spec`` exactly:
    whole numbers of trials and no prior weights besides them."""
    n = trials_of(spec)
    if np.any(np.abs(n - np.round(n)) > 1e-8):
        return False
    return not (getattr(spec, "trials", None) is not None and spec.weights is not None)


def observed_values(spec) -> np.ndarray:
    """The response as the PyMC distribution sees it: successes for the binomial (integers),
    the response itself otherwise."""
    n = trials_of(spec)
    if n is not None and _binomial_exact(spec):
        return np.round(np.asarray(spec.y, dtype=float) * n).astype(np.int64)
    y = np.asarray(spec.y, dtype=float)
    if spec.family.name in ("poisson", "negativebinomial") and np.all(y == np.round(y)):
        return y.astype(np.int64)
    return y


def _weights(spec):
    return None if spec.weights is None else np.asarray(spec.weights, dtype=float)


def add_likelihood(spec, eta, disp, name: str, observed=None, dims=("obs",), priors=None):
    """Create the observed variable ``name`` of ``spec``'s family given the link-scale
    predictor ``eta`` and the dispersion ``disp`` (None when the family has none), inside
    the current model context. ``observed=None`` uses :func:`observed_values`. A nonlinear
    model's error model (with its further parameters, from ``priors``) is in
    :func:`pymc_mixed.bayes.nonlinear.add_error_model_likelihood`."""
    import pymc as pm

    from .nonlinear import add_error_model_likelihood, is_nonlinear

    if is_nonlinear(spec):
        return add_error_model_likelihood(spec, eta, disp, name, priors, observed, dims)

    fam = spec.family
    obs = observed_values(spec) if observed is None else observed
    w = _weights(spec)
    link = getattr(fam, "link", "identity")
    if fam.name == "gaussian":
        mu = fam._link.linkinv_graph(eta)
        sigma = disp if w is None else disp / np.sqrt(w)
        return pm.Normal(name, mu=mu, sigma=sigma, observed=obs, dims=dims)
    if fam.name in ("binomial", "bernoulli") and _binomial_exact(spec):
        n = trials_of(spec).round().astype(np.int64)
        p_kw = {"logit_p": eta} if link == "logit" else {"p": fam._link.linkinv_graph(eta)}
        if np.all(n == 1):
            return pm.Bernoulli(name, **p_kw, observed=obs, dims=dims)
        return pm.Binomial(name, n=n, **p_kw, observed=obs, dims=dims)
    if fam.name == "poisson" and w is None:
        return pm.Poisson(name, mu=fam._link.linkinv_graph(eta), observed=obs, dims=dims)
    if fam.name == "negativebinomial" and w is None:
        return pm.NegativeBinomial(name, mu=fam._link.linkinv_graph(eta), alpha=disp,
                                   observed=obs, dims=dims)
    if fam.name == "gamma" and w is None:
        mu = fam._link.linkinv_graph(eta)  # Var = phi mu^2: shape 1/phi, rate 1/(phi mu)
        return pm.Gamma(name, alpha=1.0 / disp, beta=1.0 / (disp * mu), observed=obs,
                        dims=dims)
    return _custom(spec, eta, disp, name, obs, dims)


class _FamilyLogp:
    """The family's log density through :func:`pymc_mixed.graph.pointwise_loglik`; a class
    rather than a closure so that the model pickles (PyMC's multiprocess sampler)."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, value, eta, *disp):
        from ..graph import pointwise_loglik

        return pointwise_loglik(self.spec, eta, disp[0] if disp else None, y=value)


class _FamilyRandom:
    """The family's ``simulate`` as a CustomDist random method."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, eta, *disp, rng=None, size=None):
        spec = self.spec
        fam = spec.family
        mu = fam.linkinv(np.asarray(eta))
        n = trials_of(spec)
        d = disp[0] if disp else None
        return fam.simulate(mu, d, n, rng, weights=spec.prior_weights)


def _custom(spec, eta, disp, name, obs, dims):
    import pymc as pm

    params = (eta,) if disp is None else (eta, disp)
    return pm.CustomDist(name, *params, logp=_FamilyLogp(spec), random=_FamilyRandom(spec),
                         observed=np.asarray(obs, dtype=float), dims=dims)
