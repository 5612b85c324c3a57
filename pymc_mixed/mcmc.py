"""Full Bayesian inference: the model graph as a ``pm.Model``, sampled with NUTS.

The PyMC model is built from the same :class:`~pymc_mixed.spec.ModelSpec` and the same graph
steps (:mod:`pymc_mixed.graph`) as the maximum-likelihood estimators, non-centered:

free variables
    ``beta`` (dim ``coef``); per grouping factor ``g`` the standard deviations ``sd_g``
    (dim ``g_coef``) and, for a correlated term such as ``(1 + Days | g)``, the Cholesky
    factor of its correlation matrix ``chol_corr_g`` (LKJ prior); the dispersion ``sigma``
    (Gaussian); the spherical random effects ``u ~ N(0, I)`` (dim ``ranef``).
deterministics
    ``b_g = u_g (diag(sd_g) chol_corr_g)'`` (dims ``g``, ``g_coef``; factor levels as
    coordinates), ``corr_g`` (dims ``g_coef``, ``g_coef_bis``) and ``theta`` (dim
    ``theta_par``: lme4's relative Cholesky factor, ``chol(cov_g) / sigma`` for a Gaussian
    response, in lme4's order), so a posterior lines up with the ``mle`` group of a
    maximum-likelihood fit (:mod:`pymc_mixed.datatree`).
likelihood
    the observed response (named after the response column, dim ``obs``) with the family's
    own log density (``family.logp_graph``), so any family the graph knows can be sampled.

Default priors (:func:`default_priors`) are weakly informative and scale-aware. With
``s = sd(y)`` for a Gaussian response and ``s = 1`` (the link scale) otherwise:

==============  =========================================================================
``beta``        slope ``j``: ``Normal(0, 2.5 s / sd(x_j))``; intercept: ``Normal(m, 2.5 s
                sqrt(1 + sum_j (mean(x_j) / sd(x_j))^2))`` with ``m`` the link of the mean
                response -- the implied prior of the intercept at the centre of the data is
                ``Normal(m, 2.5 s)`` as in rstanarm, widened for uncentered predictors.
``sd_g``        ``HalfNormal(s / sd(z_j))`` per column (``s`` for the intercept column).
``corr_g``      ``LKJCorr(eta=2)``: mildly favours small correlations, excludes +-1.
``sigma``       ``Exponential(1 / s)`` (mean ``sd(y)``).
==============  =========================================================================

Replace any of them with ``priors={"sigma": ..., "sd_Subject": ..., "beta": ...}`` where a
value is a :class:`Prior` (``Prior("HalfNormal", sigma=10)``), an unnamed PyMC distribution
(``pm.HalfNormal.dist(sigma=10)``) or a callable ``f(name, dims=...)`` creating the variable
inside the model context.

PyMC, nutpie and ArviZ are imported only inside these functions.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .datatree import coef_dim, corr_dims

__all__ = ["Prior", "default_priors", "build_pymc_model", "sample_model", "response_name"]


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


# -- names and groups ------------------------------------------------------------------------

def response_name(spec) -> str:
    """A variable name for the response: the column name when it is one, else ``"y"``."""
    name = str(spec.response)
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) else "y"


def dispersion_name(spec) -> str | None:
    fam = spec.family
    if not getattr(fam, "has_dispersion", False):
        return None
    return getattr(fam, "dispersion_name", "sigma")


def _groups(spec) -> dict[str, dict]:
    """Terms by grouping factor, in spec order: {g: {"terms": [k...], "cnames", "levels",
    "correlated"}} (terms on one factor merge their columns, as in datatree)."""
    out: dict[str, dict] = {}
    for k, t in enumerate(spec.reterms):
        g = out.setdefault(t.group, {"terms": [], "cnames": [], "levels": list(t.levels),
                                     "correlated": False})
        g["terms"].append(k)
        g["cnames"] += list(t.cnames)
        g["correlated"] = g["correlated"] or t.p > 1
    return out


def _u_labels(spec) -> list[str]:
    labels = []
    for t in spec.reterms:
        for lev in t.levels:
            for c in t.cnames:
                labels.append(f"{t.group}[{lev}].{c}")
    return labels


def _coords(spec) -> dict[str, list]:
    coords: dict[str, list] = {
        "coef": list(spec.xnames),
        "theta_par": list(spec.theta_names),
        "obs": list(range(spec.n)),
        "ranef": _u_labels(spec),
    }
    for g, info in _groups(spec).items():
        coords[g] = [str(v) for v in info["levels"]]
        coords[coef_dim(g)] = info["cnames"]
        if info["correlated"]:
            coords[corr_dims(g)[1]] = info["cnames"]
    return coords


# -- priors ------------------------------------------------------------------------------------

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
    for g, info in _groups(spec).items():
        z = np.concatenate([spec.reterms[k].z for k in info["terms"]], axis=1)
        priors[f"sd_{g}"] = Prior("HalfNormal", sigma=s / _col_sd(z))
        if info["correlated"]:
            priors[f"corr_{g}"] = Prior("LKJCorr", eta=2.0)
    disp = dispersion_name(spec)
    if disp is not None:
        priors[disp] = Prior("Exponential", lam=1.0 / s)
    return priors


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


def _lkj(prior, name: str, n: int):
    import pymc as pm
    from pytensor.tensor.variable import TensorVariable

    if isinstance(prior, Prior):
        if prior.dist != "LKJCorr":
            raise ValueError(f"the correlation prior {name!r} must be an LKJCorr, got {prior}")
        return pm.LKJCorr(name, n=n, **prior.params)
    if isinstance(prior, TensorVariable):
        return pm.modelcontext(None).register_rv(prior, name)
    return prior(name, n=n)


# -- the model ---------------------------------------------------------------------------------

def build_pymc_model(spec, priors: dict | None = None, *, pointwise_loglik: bool = True):
    """The non-centered ``pm.Model`` of ``spec`` (see the module docstring for its variables).

    ``priors`` override :func:`default_priors` by name. With ``pointwise_loglik`` the
    per-observation log-likelihood is kept as the Deterministic ``log_likelihood__<resp>``
    (moved to the ``log_likelihood`` group by :func:`sample_model`), computed alongside the
    other Deterministics so that no separate function needs compiling after sampling.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from . import graph

    priors = dict(priors or {})
    _check_priors(spec, priors)
    pri = {**default_priors(spec), **priors}
    groups = _groups(spec)
    resp = response_name(spec)
    disp_name = dispersion_name(spec)

    with pm.Model(coords=_coords(spec)) as model:
        beta = (_make_var(pri["beta"], "beta", ("coef",), (spec.p,)) if spec.p
                else pt.zeros((0,)))
        disp = _make_var(pri[disp_name], disp_name, None, ()) if disp_name else None

        factors: list = [None] * len(spec.reterms)
        for g, info in groups.items():
            ncol = len(info["cnames"])
            sd = _make_var(pri[f"sd_{g}"], f"sd_{g}", (coef_dim(g),), (ncol,))
            corr_blocks = []
            col = 0
            n_corr = 0
            for k in info["terms"]:
                t = spec.reterms[k]
                sd_k = sd[col:col + t.p]
                if t.p > 1:
                    n_corr += 1
                    cname = f"chol_corr_{g}" if n_corr == 1 else f"chol_corr_{g}_{n_corr}"
                    C = _lkj(pri[f"corr_{g}"], cname, t.p)
                    factors[k] = sd_k[:, None] * C
                    corr_blocks.append(C @ C.T)
                else:
                    factors[k] = sd_k.reshape((1, 1))
                    corr_blocks.append(pt.ones((1, 1)))
                col += t.p
            if info["correlated"]:
                corr = (corr_blocks[0] if len(corr_blocks) == 1
                        else pt.linalg.block_diag(*corr_blocks))
                pm.Deterministic(f"corr_{g}", corr, dims=corr_dims(g))

        u = pm.Normal("u", 0.0, 1.0, dims=("ranef",))
        b = graph.random_effects(spec, u, factors)
        for g, info in groups.items():
            bg = (b[info["terms"][0]] if len(info["terms"]) == 1
                  else pt.concatenate([b[k] for k in info["terms"]], axis=1))
            pm.Deterministic(f"b_{g}", bg, dims=(g, coef_dim(g)))

        # theta: lme4's relative factor, lower triangles column by column, terms in spec order.
        scale = disp if graph.theta_is_relative(spec) else 1.0
        parts = []
        for t, F in zip(spec.reterms, factors):
            rows, cols = t.tril_index
            parts.append(F[rows, cols] / scale)
        pm.Deterministic("theta", pt.concatenate(parts) if len(parts) > 1 else parts[0],
                         dims=("theta_par",))

        eta = graph.linear_predictor(spec, beta, b)
        weights = graph.family_weights(spec)
        family = spec.family

        def logp(value, eta, *disp_args):
            return family.logp_graph(value, eta, disp_args[0] if disp_args else None, weights)

        params = (eta,) if disp is None else (eta, disp)
        pm.CustomDist(resp, *params, logp=logp, observed=np.asarray(spec.y, dtype=float),
                      dims=("obs",))
        if pointwise_loglik:
            pm.Deterministic(_LL_PREFIX + resp, graph.pointwise_loglik(spec, eta, disp),
                             dims=("obs",))
    return model


_LL_PREFIX = "log_likelihood__"


# -- sampling ----------------------------------------------------------------------------------

def _have_nutpie() -> bool:
    from importlib.util import find_spec

    return find_spec("nutpie") is not None


def _constant_data(spec):
    import xarray as xr

    obs = np.arange(spec.n)
    const: dict[str, Any] = {"X": (("obs", "coef"), np.asarray(spec.X, dtype=float))}
    for g, info in _groups(spec).items():
        t = spec.reterms[info["terms"][0]]
        const[f"group_{g}"] = ("obs", np.asarray(t.levels, dtype=object)[t.refs].astype(str))
    if spec.weights is not None:
        const["weights"] = ("obs", np.asarray(spec.weights, dtype=float))
    if spec.offset is not None:
        const["offset"] = ("obs", np.asarray(spec.offset, dtype=float))
    if getattr(spec, "trials", None) is not None:
        const["trials"] = ("obs", np.asarray(spec.trials, dtype=float))
    return xr.Dataset(const, coords={"obs": obs, "coef": list(spec.xnames)})


def _eta_draws(spec, post) -> np.ndarray:
    """``eta`` for every draw, (chain, draw, obs), from beta and b_g in NumPy."""
    beta = post["beta"].values if spec.p else np.zeros(post["u"].shape[:2] + (0,))
    eta = np.einsum("cdp,np->cdn", beta, np.asarray(spec.X, dtype=float))
    eta = eta + spec.offset_or_zero
    for g, info in _groups(spec).items():
        bg = post[f"b_{g}"].values  # (chain, draw, levels, ncol)
        col = 0
        for k in info["terms"]:
            t = spec.reterms[k]
            bk = bg[:, :, t.refs, col:col + t.p]
            eta = eta + np.einsum("cdnp,np->cdn", bk, t.z)
            col += t.p
    return eta


def _simulate(spec, eta: np.ndarray, disp, rng) -> np.ndarray:
    """Draw responses given link-scale ``eta`` (and dispersion draws), in NumPy."""
    fam = spec.family
    if hasattr(fam, "simulate"):
        return fam.simulate(eta, disp, graph_weights(spec), rng)
    name, link = fam.name, getattr(fam, "link", "identity")
    inv = {"identity": lambda x: x, "log": np.exp,
           "logit": lambda x: 1.0 / (1.0 + np.exp(-x))}.get(link)
    if inv is None:
        raise NotImplementedError(f"posterior predictive draws for the {link!r} link")
    mu = inv(eta)
    w = spec.prior_weights
    if name == "gaussian":
        return rng.normal(mu, disp[..., None] / np.sqrt(w))
    if name == "binomial":
        n = np.ones(spec.n) if spec.trials is None else np.asarray(spec.trials, dtype=float)
        k = rng.binomial(n.astype(np.int64), np.clip(mu, 0, 1))
        return np.where(n > 0, k / np.where(n > 0, n, 1), 0.0)
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    raise NotImplementedError(f"posterior predictive draws for the {name!r} family")


def graph_weights(spec):
    from .graph import family_weights

    return family_weights(spec)


def sample_model(spec, model, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 seed=None, sampler: str = "auto", posterior_predictive: bool = False,
                 progressbar: bool = True, **kwargs):
    """Sample ``model`` (built by :func:`build_pymc_model` for ``spec``) with NUTS.

    ``sampler``: ``"nutpie"``, ``"pymc"`` or ``"auto"`` (nutpie when installed). Extra
    keyword arguments go to ``nutpie.sample`` or ``pm.sample`` (e.g. ``target_accept``).
    Returns an :class:`xarray.DataTree` with ``posterior``, ``sample_stats``,
    ``log_likelihood``, ``observed_data``, ``constant_data`` and, on request,
    ``posterior_predictive``; the model and sampler timings are in the root's attrs.
    """
    import time

    import xarray as xr

    if sampler == "auto":
        sampler = "nutpie" if _have_nutpie() else "pymc"
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'auto', 'nutpie' or 'pymc', got {sampler!r}")
    resp = response_name(spec)
    seed_int = None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0])

    t0 = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        t1 = time.perf_counter()
        kwargs.setdefault("save_warmup", False)
        trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed_int,
                              progress_bar=progressbar, **kwargs)
    else:
        import pymc as pm

        t1 = t0  # PyMC compiles inside pm.sample
        with model:
            trace = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed_int,
                              progressbar=progressbar, nuts_sampler="pymc",
                              compute_convergence_checks=False,
                              idata_kwargs={"log_likelihood": False}, **kwargs)
    t2 = time.perf_counter()

    post = trace["posterior"].to_dataset()
    ll_name = _LL_PREFIX + resp
    groups: dict[str, Any] = {}
    if ll_name in post:
        groups["log_likelihood"] = xr.Dataset({resp: post[ll_name]})
        post = post.drop_vars(ll_name)
    groups["posterior"] = post
    groups["sample_stats"] = trace["sample_stats"].to_dataset()
    groups["observed_data"] = xr.Dataset({resp: ("obs", np.asarray(spec.y, dtype=float))},
                                         coords={"obs": np.arange(spec.n)})
    groups["constant_data"] = _constant_data(spec)
    if posterior_predictive:
        rng = np.random.default_rng(seed)
        eta = _eta_draws(spec, post)
        dname = dispersion_name(spec)
        disp = post[dname].values if dname else None
        yrep = _simulate(spec, eta, disp, rng)
        groups["posterior_predictive"] = xr.Dataset(
            {resp: (("chain", "draw", "obs"), yrep)},
            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                    "obs": np.arange(spec.n)})
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update({
        "formula": spec.formula,
        "family": spec.family.name,
        "link": getattr(spec.family, "link", "identity"),
        "engine": "pymc_mixed",
        "method": "NUTS",
        "sampler": sampler,
        "compile_seconds": t1 - t0,
        "sampling_seconds": t2 - t1,
        "draws": draws,
        "tune": tune,
        "chains": chains,
    })
    return tree
