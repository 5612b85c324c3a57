"""Priors of the PyMC model: :class:`Prior` and the documented defaults.

Default priors (:func:`default_priors`) are weakly informative and scale-aware. With
``s = sd(y)`` for a Gaussian response and ``s = 1`` (the link scale) otherwise:

==============  =========================================================================
``beta``        slope ``j``: ``Normal(0, 2.5 s / sd(x_j))``; intercept: ``Normal(m, 2.5 s
                sqrt(1 + sum_j (mean(x_j) / sd(x_j))^2))`` with ``m`` the link of the mean
                response -- the implied prior of the intercept at the centre of the data is
                ``Normal(m, 2.5 s)`` as in rstanarm, widened for uncentered predictors.
``sd_g``        ``HalfNormal(s / sd(z_j))`` per column (``s`` for the intercept column).
``corr_g``      ``LKJCorr(eta=2)``: mildly favours small correlations, excludes +-1.
``sigma``       ``Exponential(1 / s)`` (mean ``sd(y)``); other dispersions (gamma ``phi``,
                negative-binomial size ``k``) ``Exponential(1)`` as rstanarm.
==============  =========================================================================

Replace any of them with ``priors={"sigma": ..., "sd_Subject": ..., "beta": ...}`` where a
value is a :class:`Prior` (``Prior("HalfNormal", sigma=10)``), an unnamed PyMC distribution
(``pm.HalfNormal.dist(sigma=10)``) or a callable ``f(name, dims=...)`` creating the variable
inside the model context.
"""

from __future__ import annotations

import numpy as np

from ..spec import factor_groups

__all__ = ["Prior", "default_priors", "merge_priors", "dispersion_name"]


class Prior:
    """A PyMC distribution by name with fixed parameters: ``Prior("Normal", mu=0, sigma=10)``.

    Calling it as ``prior(name, dims=..., shape=...)`` inside a model context creates the
    variable. Array parameters broadcast over the variable's dims.
    """

    def __init__(self, dist: str, **params):
        self.dist = dist
        self.params = params

    def __call__(self, name: str, dims=None, shape=None, **kwargs):
        import pymc as pm

        return getattr(pm, self.dist)(name, **self.params, dims=dims, shape=shape, **kwargs)

    def __repr__(self) -> str:
        def fmt(v):
            v = np.asarray(v)
            if v.ndim == 0:
                return f"{float(v):.4g}"
            return "[" + ", ".join(f"{x:.4g}" for x in v.ravel()) + "]"

        args = ", ".join(f"{k}={fmt(v)}" for k, v in self.params.items())
        return f"{self.dist}({args})"

    def __eq__(self, other) -> bool:
        return (isinstance(other, Prior) and self.dist == other.dist
                and self.params.keys() == other.params.keys()
                and all(np.array_equal(np.asarray(self.params[k]), np.asarray(other.params[k]))
                        for k in self.params))


def dispersion_name(spec) -> str | None:
    """The family's dispersion parameter as named in results and draws (None if it has none)."""
    fam = spec.family
    if not getattr(fam, "has_dispersion", False):
        return None
    return getattr(fam, "dispersion_name", None) or "sigma"


def _link_of_mean(spec) -> float:
    ybar = float(np.average(spec.y, weights=spec.prior_weights))
    link = getattr(spec.family, "link", "identity")
    if link == "identity":
        return ybar
    if link == "logit" and 0 < ybar < 1:
        return float(np.log(ybar / (1 - ybar)))
    if link == "log" and ybar > 0:
        return float(np.log(ybar))
    return 0.0


def _scale(spec) -> float:
    if spec.family.name == "gaussian":
        s = float(np.std(spec.y, ddof=1)) if spec.n > 1 else 1.0
        return s if s > 0 else 1.0
    return 1.0


def _col_sd(z: np.ndarray) -> np.ndarray:
    sd = z.std(axis=0)
    return np.where(sd > 0, sd, 1.0)


def default_priors(spec) -> dict[str, Prior]:
    """The documented weakly informative, scale-aware defaults (module docstring)."""
    s = _scale(spec)
    priors: dict[str, Prior] = {}
    X = np.asarray(spec.X, dtype=float)
    if spec.p:
        is_icpt = np.all(X == 1.0, axis=0)
        sd = _col_sd(X)
        mean = X.mean(axis=0)
        mu = np.zeros(spec.p)
        sigma = 2.5 * s / sd
        slopes = ~is_icpt
        widen = np.sqrt(1.0 + np.sum((mean[slopes] / sd[slopes]) ** 2))
        mu[is_icpt] = _link_of_mean(spec)
        sigma[is_icpt] = 2.5 * s * widen
        priors["beta"] = Prior("Normal", mu=mu, sigma=sigma)
    for g, info in factor_groups(spec.reterms).items():
        z = np.concatenate([spec.reterms[k].z for k in info["terms"]], axis=1)
        priors[f"sd_{g}"] = Prior("HalfNormal", sigma=s / _col_sd(z))
        if info["correlated"]:
            priors[f"corr_{g}"] = Prior("LKJCorr", eta=2.0)
    disp = dispersion_name(spec)
    if disp is not None:
        # Gaussian sigma: mean sd(y); gamma phi (squared CV) and negative-binomial size k:
        # Exponential(1), rstanarm's default for the reciprocal dispersion.
        lam = 1.0 / s if spec.family.name == "gaussian" else 1.0
        priors[disp] = Prior("Exponential", lam=lam)
    return priors


def merge_priors(spec, priors: dict | None) -> dict:
    """Defaults overridden by ``priors`` (unknown names raise a KeyError listing the known)."""
    priors = dict(priors or {})
    _check_priors(spec, priors)
    return {**default_priors(spec), **priors}


def _check_priors(spec, priors: dict) -> None:
    known = set(default_priors(spec))
    unknown = set(priors) - known
    if unknown:
        raise KeyError(f"no parameter named {', '.join(sorted(map(repr, unknown)))} to set a "
                       f"prior on; parameters: {', '.join(sorted(known))}")


def _make_var(prior, name: str, dims, shape):
    """Create ``name`` from a Prior, an unnamed ``pm.X.dist(...)`` or a callable."""
    import pymc as pm
    from pytensor.tensor.variable import TensorVariable

    if isinstance(prior, Prior) or (callable(prior) and not isinstance(prior, TensorVariable)):
        return prior(name, dims=dims) if dims is not None else prior(name, shape=shape)
    if isinstance(prior, TensorVariable):
        from pymc.distributions.shape_utils import change_dist_size

        want = tuple(shape or ())
        if prior.ndim < len(want):
            prior = change_dist_size(prior, want)
        return pm.modelcontext(None).register_rv(prior, name, dims=dims)
    raise TypeError(f"prior for {name!r} must be a Prior, a PyMC distribution (.dist) or a "
                    f"callable, got {type(prior).__name__}")
