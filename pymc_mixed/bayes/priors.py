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
inside the model context. One fixed effect's prior is set by ``"beta[Days]"`` (the column name
as in ``fixef``); the other coefficients keep theirs. :class:`Prior` objects are checked when
they are made (a PyMC distribution, positive scale parameters) and when assigned (their length
matches the coefficients or columns; standard deviations and dispersions get a distribution
on the positive reals).
"""

from __future__ import annotations

import numpy as np

from ..spec import factor_groups

__all__ = ["Prior", "default_priors", "merge_priors", "dispersion_name", "make_beta"]


class Prior:
    """A PyMC distribution by name with fixed parameters: ``Prior("Normal", mu=0, sigma=10)``.

    Calling it as ``prior(name, dims=..., shape=...)`` inside a model context creates the
    variable. Array parameters broadcast over the variable's dims.
    """

    def __init__(self, dist: str, **params):
        import pymc as pm

        cls = getattr(pm, str(dist), None)
        if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)):
            raise ValueError(f"Prior: {dist!r} is not a PyMC distribution (e.g. 'Normal', "
                             f"'HalfNormal', 'Exponential', 'StudentT', 'LKJCorr')")
        for k, v in params.items():
            a = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"Prior {dist}: parameter {k}={v!r} is not finite")
            if k in _POSITIVE_PARAMS and np.any(a <= 0):
                raise ValueError(f"Prior {dist}: parameter {k} must be positive, got {v!r}")
        self.dist = dist
        self.params = params

    @property
    def size(self) -> int | None:
        """Length of the vector parameters (None when all are scalars)."""
        sizes = {np.asarray(v).size for v in self.params.values() if np.ndim(v) > 0}
        return max(sizes) if sizes else None

    def take(self, j: int) -> "Prior":
        """The prior of element ``j`` of a vector variable."""
        return Prior(self.dist, **{k: (np.asarray(v).ravel()[j] if np.ndim(v) else v)
                                   for k, v in self.params.items()})

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


# parameters that must be positive, whatever the distribution
_POSITIVE_PARAMS = {"sigma", "tau", "lam", "nu", "eta", "alpha", "beta", "b", "scale"}
# distributions on the positive reals, for standard deviations and dispersions
_POSITIVE_DISTS = {"HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential", "Gamma",
                   "InverseGamma", "LogNormal", "Weibull", "HalfFlat", "ChiSquared", "Lognormal"}


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


KIND_DEFAULTS: dict = {}  # model kind -> default_priors of that kind (nonlinear models)


def default_priors(spec) -> dict[str, Prior]:
    """The documented weakly informative, scale-aware defaults (module docstring); a
    nonlinear model's are :func:`pymc_mixed.bayes.nonlinear.nonlinear_default_priors`
    (registered in ``KIND_DEFAULTS`` by that module, which imports this one)."""
    kind_defaults = KIND_DEFAULTS.get(getattr(spec, "kind", None))
    if kind_defaults is not None and hasattr(spec, "error_model"):
        return kind_defaults(spec)
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
    """Defaults overridden by ``priors`` (unknown names raise a KeyError listing the known;
    a :class:`Prior` of the wrong length or support raises a ValueError naming it)."""
    priors = dict(priors or {})
    _check_priors(spec, priors)
    return {**default_priors(spec), **priors}


def _sizes(spec) -> dict[str, int]:
    out = {"beta": spec.p}
    for g, info in factor_groups(spec.reterms).items():
        out[f"sd_{g}"] = len(info["cnames"])
    return out


def _check_priors(spec, priors: dict) -> None:
    known = set(default_priors(spec)) | {f"beta[{c}]" for c in spec.xnames}
    unknown = set(priors) - known
    if unknown:
        raise KeyError(f"no parameter named {', '.join(sorted(map(repr, unknown)))} to set a "
                       f"prior on; parameters: {', '.join(sorted(known - {f'beta[{c}]' for c in spec.xnames}))} "
                       f"and one coefficient as 'beta[name]' with name one of "
                       f"{', '.join(spec.xnames)}")
    sizes = _sizes(spec)
    disp = dispersion_name(spec)
    for name, pr in priors.items():
        if not isinstance(pr, Prior):
            continue
        if name.startswith("corr_"):
            if pr.dist != "LKJCorr":
                raise ValueError(f"prior {name!r}: correlations take Prior('LKJCorr', eta=...), "
                                 f"got {pr!r}")
            continue
        if pr.size is not None and pr.size != sizes.get(name, 1):
            raise ValueError(f"prior {name!r}: {pr!r} has {pr.size} values where the parameter "
                             f"has {sizes.get(name, 1)}")
        if (name.startswith(("sd_", "sigma")) or name == disp) and pr.dist not in _POSITIVE_DISTS:
            raise ValueError(f"prior {name!r}: {pr.dist} is not a distribution on the positive "
                             f"reals; use one of {', '.join(sorted(_POSITIVE_DISTS))}")


def _centered_beta(spec, prior: "Prior"):
    """The default prior sampled at the centre of the data, as rstanarm and bambi do.

    With an intercept and uncentered predictors (grouseticks' HEIGHT, around 460) the
    intercept and the slopes are almost collinear a posteriori and NUTS stalls. The free
    variable ``beta_c`` holds the intercept at the predictors' means, ``alpha = beta_0 +
    sum_j mean_j beta_j``, with the documented ``Normal(m, 2.5 s)``, and the slopes with
    their own priors; ``beta_0 = alpha - sum_j mean_j beta_j``. The implied marginal prior of
    ``beta_0`` is the documented widened ``Normal(m, 2.5 s sqrt(1 + sum (mean_j/sd_j)^2))``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    X = np.asarray(spec.X, dtype=float)
    is_icpt = np.all(X == 1.0, axis=0)
    mean = np.where(is_icpt, 0.0, X.mean(axis=0))
    if is_icpt.sum() != 1 or not np.any(mean != 0):
        return prior("beta", dims=("coef",))
    k = int(np.flatnonzero(is_icpt)[0])
    sd = np.broadcast_to(np.asarray(prior.params["sigma"], dtype=float), (spec.p,)).copy()
    sd[k] = sd[k] / np.sqrt(1.0 + np.sum((mean / _col_sd(X)) ** 2))  # back to 2.5 s
    mu = np.broadcast_to(np.asarray(prior.params["mu"], dtype=float), (spec.p,))
    beta_c = pm.Normal("beta_c", mu=mu, sigma=sd, dims=("coef",))
    shift = pt.sum(beta_c * mean)  # the intercept entry of mean is 0
    return pm.Deterministic("beta", pt.set_subtensor(beta_c[k], beta_c[k] - shift),
                            dims=("coef",))


def make_beta(spec, priors: dict):
    """``beta`` (dim ``coef``) from ``priors["beta"]`` and any ``"beta[name]"`` overrides.

    Without overrides (or when every coefficient's prior is a :class:`Prior` of one
    distribution) ``beta`` is one vector variable; otherwise each coefficient is its own
    variable ``beta_<name>`` and ``beta`` their Deterministic stack.
    """
    import pymc as pm
    import pytensor.tensor as pt

    base = priors["beta"]
    own = {c: priors[f"beta[{c}]"] for c in spec.xnames if f"beta[{c}]" in priors}
    # centring is a reparametrization of X beta: only for the linear (formula) mean
    if not own and isinstance(base, Prior) and getattr(spec.mean, "linear", False) and \
            base == default_priors(spec)["beta"]:
        return _centered_beta(spec, base)
    if not own:
        return _make_var(base, "beta", ("coef",), (spec.p,))
    per = [own.get(c) for c in spec.xnames]
    if isinstance(base, Prior):
        per = [p if p is not None else base.take(j) for j, p in enumerate(per)]
    if all(isinstance(p, Prior) for p in per) and len({(p.dist, tuple(p.params))
                                                        for p in per}) == 1:
        params = {k: np.array([float(np.asarray(p.params[k])) for p in per])
                  for k in per[0].params}
        return Prior(per[0].dist, **params)("beta", dims=("coef",))
    if any(p is None for p in per):
        raise ValueError("a 'beta[name]' prior next to a 'beta' prior that is not a Prior: "
                         "give every coefficient its prior as 'beta[name]'")
    parts = [_make_var(p, f"beta_{c}", None, ()) for c, p in zip(spec.xnames, per)]
    return pm.Deterministic("beta", pt.stack(parts), dims=("coef",))


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
