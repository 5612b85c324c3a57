"""Full Bayesian inference: the model graph as a ``pm.Model``, sampled with NUTS.

The PyMC model is built from the same :class:`~pymc_mixed.spec.ModelSpec` and the same graph
steps (:mod:`pymc_mixed.graph`) as the maximum-likelihood estimators, non-centered:

free variables
    ``beta`` (dim ``coef``); the dispersion (``sigma`` for a Gaussian response, the
    family's ``dispersion_name`` otherwise); per grouping factor ``g`` the standard
    deviations ``sd_g`` (dim ``g_coef``), for a correlated term such as ``(1 + Days | g)``
    its LKJ correlation through the canonical partial correlations ``cpc_g`` (dim ``g_cpc``,
    see :func:`_lkj`), and the spherical random effects ``u_g ~ N(0, I)`` (dims ``g_coef``,
    ``g``: the blocks of the spherical ``u`` of :mod:`pymc_mixed.graph`, one row per column
    of the term).
deterministics
    ``b_g = u_g' (diag(sd_g) L_g)'`` with ``L_g`` the Cholesky factor of the correlation
    (dims ``g``, ``g_coef``; factor levels as coordinates), ``corr_g`` (dims ``g_coef``,
    ``g_coef_bis``) and ``theta`` (dim ``theta_par``: lme4's relative Cholesky factor,
    ``chol(cov_g) / sigma`` for a linear mixed model, in lme4's order), so a posterior lines
    up with the ``mle`` group of a maximum-likelihood fit (:mod:`pymc_mixed.datatree`).
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
``sigma``       ``Exponential(1 / s)`` (mean ``sd(y)``); other dispersions (gamma ``phi``,
                negative-binomial size ``k``) ``Exponential(1)`` as rstanarm.
==============  =========================================================================

Replace any of them with ``priors={"sigma": ..., "sd_Subject": ..., "beta": ...}`` where a
value is a :class:`Prior` (``Prior("HalfNormal", sigma=10)``), an unnamed PyMC distribution
(``pm.HalfNormal.dist(sigma=10)``) or a callable ``f(name, dims=...)`` creating the variable
inside the model context.

PyMC, nutpie and ArviZ are imported only inside these functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .datatree import coef_dim, corr_dims

__all__ = ["Prior", "default_priors", "merge_priors", "build_pymc_model", "sample_model",
           "evaluate_over_draws"]


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

def dispersion_name(spec) -> str | None:
    """The family's dispersion parameter as named in results and draws (None if it has none)."""
    fam = spec.family
    if not getattr(fam, "has_dispersion", False):
        return None
    return getattr(fam, "dispersion_name", None) or "sigma"


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


def _coords(spec) -> dict[str, list]:
    coords: dict[str, list] = {
        "coef": list(spec.xnames),
        "theta_par": list(spec.theta_names),
        "obs": list(range(spec.n)),
    }
    for g, info in _groups(spec).items():
        coords[g] = [str(v) for v in info["levels"]]
        coords[coef_dim(g)] = info["cnames"]
        if info["correlated"]:
            coords[corr_dims(g)[1]] = info["cnames"]
        n_corr = 0
        for k in info["terms"]:
            t = spec.reterms[k]
            if t.p > 1:
                n_corr += 1
                key = g if n_corr == 1 else f"{g}_{n_corr}"
                coords[f"{key}_cpc"] = [f"{t.cnames[i]},{t.cnames[j]}"
                                        for j in range(t.p) for i in range(j + 1, t.p)]
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


def cached_pymc_model(mm):
    """``mm.pymc_model``: built on first use, rebuilt when ``mm.priors`` changed (by
    assignment or in place)."""
    key = {k: id(v) for k, v in mm.priors.items()}
    cache = getattr(mm, "_pymc_model_cache", None)
    if cache is None or cache[0] != key:
        cache = (key, build_pymc_model(mm.spec, mm.priors))
        mm._pymc_model_cache = cache
    return cache[1]


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


def _cpc_to_chol(z, n: int):
    """Cholesky factor of a correlation matrix from its canonical partial correlations ``z``
    (in (-1, 1), column by column below the diagonal):
    ``L[i, j] = z_ij sqrt(1 - sum_{k<j} L[i, k]^2)``, ``L[i, i] = sqrt(1 - sum_{k<i} L[i, k]^2)``.

    Written with scalar operations because ``n`` is small: a handful of elementwise ops compile
    in a fraction of the time of a generic triangular transform. Returns nested lists of
    scalar expressions (rows first); :func:`_stack` makes the matrix.
    """
    import pytensor.tensor as pt

    zero, one = pt.constant(0.0), pt.constant(1.0)
    idx = {}
    for j in range(n):
        for i in range(j + 1, n):
            idx[i, j] = len(idx)
    rows = [[one] + [zero] * (n - 1)]
    for i in range(1, n):
        row, rest = [], one
        for j in range(i):
            lij = z[idx[i, j]] * (pt.sqrt(rest) if j else one)
            row.append(lij)
            rest = rest - lij**2
        row.append(pt.sqrt(rest))
        row += [zero] * (n - 1 - i)
        rows.append(row)
    return rows


def _rows(C, n: int) -> list:
    """A matrix as nested lists of its scalar entries (rows first)."""
    if isinstance(C, (list, tuple)):
        return [list(r) for r in C]
    return [[C[i, j] for j in range(n)] for i in range(n)]


def _stack(rows):
    import pytensor.tensor as pt

    return pt.stack([pt.stack(r) for r in rows])


def _lkj(prior, group: str, n: int):
    """The Cholesky factor of an LKJ-distributed ``n x n`` correlation matrix.

    An ``LKJCorr(eta)`` prior is sampled through its canonical partial correlations, which are
    independent: ``(z_ij + 1) / 2 ~ Beta(b_j, b_j)`` with ``b_j = eta + (n - 2 - j) / 2`` for
    column ``j`` (Lewandowski, Kurowicka and Joe 2009, sec. 3.2) -- the free variable
    ``cpc_<group>`` holds ``(z + 1) / 2``. Any other prior is a callable ``f(name, n=n)``
    returning the Cholesky factor itself.
    """
    import pymc as pm

    if isinstance(prior, Prior) and prior.dist == "LKJCorr":
        eta = float(prior.params.get("eta", 1.0))
        if eta <= 0:
            raise ValueError(f"LKJCorr eta must be positive, got {eta}")
        b = np.array([eta + (n - 2 - j) / 2.0 for j in range(n) for _ in range(j + 1, n)])
        w = pm.Beta(f"cpc_{group}", alpha=b, beta=b, dims=(f"{group}_cpc",))
        return _cpc_to_chol(2.0 * w - 1.0, n)
    if isinstance(prior, Prior) or not callable(prior):
        raise ValueError(f"the correlation prior of {group!r} must be Prior('LKJCorr', eta=...) "
                         f"or a callable f(name, n=n) returning a Cholesky factor; got {prior}")
    return prior(f"chol_corr_{group}", n=n)


# -- the model ---------------------------------------------------------------------------------

class _FamilyLogp:
    """The observed variable's log density: the family's ``logp_graph`` through
    :func:`pymc_mixed.graph.pointwise_loglik`. A module-level class rather than a closure so
    that the model pickles (PyMC's multiprocess sampler needs it)."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, value, eta, *disp):
        from .graph import pointwise_loglik

        return pointwise_loglik(self.spec, eta, disp[0] if disp else None, y=value)


_CHECK_BOUNDS = False  # parameters of the default priors are valid by construction; the
# bound checks PyMC would add to every log density are graph nodes to compile for nothing


def build_pymc_model(spec, priors: dict | None = None):
    """The non-centered ``pm.Model`` of ``spec`` (see the module docstring for its variables).

    ``priors`` override :func:`default_priors` by name. The pointwise log-likelihood
    expression (in terms of the model's random variables) is kept on the model as
    ``model.pmm_pointwise_loglik`` (not a Deterministic, so that samplers do not store an
    n-vector per draw); :func:`sample_model` evaluates it after sampling.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from . import graph

    priors = dict(priors or {})
    _check_priors(spec, priors)
    pri = {**default_priors(spec), **priors}
    groups = _groups(spec)
    resp = spec.response_name
    disp_name = dispersion_name(spec)

    with pm.Model(coords=_coords(spec), check_bounds=_CHECK_BOUNDS) as model:
        beta = (_make_var(pri["beta"], "beta", ("coef",), (spec.p,)) if spec.p
                else pt.zeros((0,)))
        disp = _make_var(pri[disp_name], disp_name, None, ()) if disp_name else None
        if disp is not None and disp_name != "sigma" and \
                getattr(spec.family, "dispersion_kind", None) == "scale":
            # as the ML result: sigma = sqrt(phi) next to the dispersion phi (gamma family)
            pm.Deterministic("sigma", pt.sqrt(spec.family.phi(disp)))

        factors: list = [None] * len(spec.reterms)
        u_blocks: list = [None] * len(spec.reterms)
        b_groups = {}
        for g, info in groups.items():
            ncol = len(info["cnames"])
            sd = _make_var(pri[f"sd_{g}"], f"sd_{g}", (coef_dim(g),), (ncol,))
            # stored (columns, levels): each column's effects contiguous, taken as rows below
            u_g = pm.Normal(f"u_{g}", 0.0, 1.0, dims=(coef_dim(g), g))
            corr_blocks = []
            col = 0
            n_corr = 0
            for k in info["terms"]:
                t = spec.reterms[k]
                u_blocks[k] = [u_g[col + j] for j in range(t.p)]
                if t.p > 1:
                    n_corr += 1
                    C = _rows(_lkj(pri[f"corr_{g}"], g if n_corr == 1 else f"{g}_{n_corr}",
                                   t.p), t.p)
                    factors[k] = [[sd[col + i] * C[i][j] for j in range(t.p)]
                                  for i in range(t.p)]
                    corr_blocks.append(_stack([[sum(C[i][m] * C[j][m] for m in range(t.p))
                                                for j in range(t.p)] for i in range(t.p)]))
                else:
                    factors[k] = sd[col]
                    corr_blocks.append(pt.ones((1, 1)))
                col += t.p
            if info["correlated"]:
                corr = (corr_blocks[0] if len(corr_blocks) == 1
                        else pt.linalg.block_diag(*corr_blocks))
                pm.Deterministic(f"corr_{g}", corr, dims=corr_dims(g))
            b_groups[g] = info["terms"]

        b = graph.scale_ranef(spec, u_blocks, factors, as_columns=True)
        for g, terms in b_groups.items():
            pm.Deterministic(f"b_{g}", pt.stack([c for k in terms for c in b[k]], axis=1),
                             dims=(g, coef_dim(g)))

        # theta: lme4's relative factor, lower triangles column by column, terms in spec order.
        scale = disp if graph.theta_is_relative(spec) else 1.0
        parts = []
        for t, F in zip(spec.reterms, factors):
            if t.p == 1:
                parts.append((F / scale)[None])
            else:
                rows, cols = t.tril_index
                parts.append(pt.stack([F[i][j] for i, j in zip(rows, cols)]) / scale)
        pm.Deterministic("theta", pt.concatenate(parts) if len(parts) > 1 else parts[0],
                         dims=("theta_par",))

        eta = graph.linear_predictor(spec, beta, b)
        params = (eta,) if disp is None else (eta, disp)
        pm.CustomDist(resp, *params, logp=_FamilyLogp(spec),
                      observed=np.asarray(spec.y, dtype=float), dims=("obs",))
    model.pmm_pointwise_loglik = (resp, graph.pointwise_loglik(spec, eta, disp))
    model.pmm_spec = spec
    return model


# -- sampling ----------------------------------------------------------------------------------

_LOGLIK = "__pointwise_loglik__"


def _posterior_order(model) -> list[str]:
    """Posterior variables in model order: free variables, then Deterministics."""
    return [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]


def evaluate_over_draws(model, post, log_likelihood: bool = True,
                        chunk_elements: int = 20_000_000) -> dict:
    """Every Deterministic of ``model`` and (``log_likelihood``) its pointwise
    log-likelihood, for all draws of ``post`` (a Dataset of the free variables with dims
    (chain, draw, ...)); the log-likelihood is returned under the key ``_LOGLIK``.

    One vectorized graph evaluated with PyTensor's Python linker and no rewrites: building
    and running it takes milliseconds, where compiling the same outputs into the sampler
    (numba) costs a second or more and stores them at every draw. Draws are processed in
    chunks of about ``chunk_elements / n`` to bound the temporaries of large data sets.
    """
    import pytensor
    import pytensor.tensor as pt
    import xarray as xr
    from pytensor.compile.mode import Mode
    from pytensor.graph.replace import vectorize_graph

    rvs = list(model.free_RVs)
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    batched = {rv: pt.tensor(name=rv.name, dtype=rv.dtype,
                             shape=(None,) + tuple(rv.type.shape)) for rv in rvs}
    dets = list(model.deterministics)
    names = [d.name for d in dets]
    outs = list(dets)
    if log_likelihood:
        _, ll = model.pmm_pointwise_loglik
        outs.append(ll)
        names.append(_LOGLIK)
    if not outs:
        return {}
    vouts = vectorize_graph(outs, replace=batched)
    fn = pytensor.function(list(batched.values()), vouts,
                           mode=Mode(linker="py", optimizer=None), on_unused_input="ignore")
    args = [np.asarray(post[rv.name].values, dtype=rv.dtype).reshape((nc * nd,)
                                                                      + post[rv.name].shape[2:])
            for rv in rvs]
    n = max(1, int(model.pmm_spec.n))
    step = max(1, int(chunk_elements // n))
    parts = [fn(*[a[i:i + step] for a in args]) for i in range(0, nc * nd, step)]
    values = [np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(len(outs))]
    out = {}
    coords = {"chain": post["chain"].values, "draw": post["draw"].values}
    for name, val in zip(names, values):
        dims = ("obs",) if name == _LOGLIK else tuple(model.named_vars_to_dims.get(name, ()))
        val = val.reshape((nc, nd) + val.shape[1:])
        c = dict(coords)
        for d in dims:
            if d in model.coords and model.coords[d] is not None:
                c[d] = list(model.coords[d])
        out[name] = xr.DataArray(val, dims=("chain", "draw", *dims), coords=c)
    return out


def _loop_copy_wrappers(ncp):
    """nutpie's C callbacks with the result copied by a loop instead of ``out[...] = grad``.

    nutpie wraps the model's numba functions in C callbacks that are compiled anew for every
    model (they cannot be cached). Their slice assignments pull in numba's generic
    fancy-indexing setitem, whose compilation takes ~2.5 of the ~4 s nutpie spends on a small
    model; an element loop compiles in milliseconds and does the same thing. Return codes
    match nutpie's (3: non-finite gradient, 4: non-finite log density, 1/-2: error).
    """
    import numba

    def make_logp(n_dim, logp_fn, user_data, shared_keys, shared_data):
        extract = ncp.make_extraction_fn(logp_fn, shared_data, shared_keys, user_data.dtype)
        c_sig = numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double), numba.types.voidptr)

        def logp_numba(dim, x_, out_, logp_, user_data_):
            if dim != n_dim:
                return -1
            try:
                x = numba.carray(x_, (n_dim,))
                logp_val, grad = extract(x, user_data_)
                logp_[0] = logp_val
                finite = True
                for i in range(n_dim):
                    out_[i] = grad[i]
                    finite = finite and np.isfinite(grad[i])
                if not finite:
                    return 3
                if not np.isfinite(logp_val):
                    return 4
            except Exception:  # noqa: BLE001
                return 1
            return 0

        return logp_numba, c_sig

    def make_expand(n_dim, n_expanded, expand_fn, user_data, shared_var_keys, shared_data):
        extract = ncp.make_extraction_fn(expand_fn, shared_data, shared_var_keys,
                                         user_data.dtype)
        c_sig = numba.types.int64(numba.types.uint64, numba.types.uint64,
                                  numba.types.CPointer(numba.types.double),
                                  numba.types.CPointer(numba.types.double), numba.types.voidptr)

        def expand_numba(dim, expanded, x_, out_, user_data_):
            if dim != n_dim or expanded != n_expanded:
                return -1
            try:
                x = numba.carray(x_, (n_dim,))
                (values,) = extract(x, user_data_)
                for i in range(n_expanded):
                    out_[i] = values[i]
            except Exception:  # noqa: BLE001
                return -2
            return 0

        return expand_numba, c_sig

    return make_logp, make_expand


def compile_nutpie(model, var_names=None):
    """``nutpie.compile_pymc_model`` with faster-compiling C callbacks (see
    :func:`_loop_copy_wrappers`); falls back to nutpie's own when its internals differ."""
    import nutpie

    try:
        import nutpie.compile_pymc as ncp

        originals = (ncp._make_c_logp_func, ncp._make_c_expand_func)
        ncp.make_extraction_fn  # noqa: B018  (the helper the replacements need)
    except (ImportError, AttributeError):
        return nutpie.compile_pymc_model(model, var_names=var_names)
    ncp._make_c_logp_func, ncp._make_c_expand_func = _loop_copy_wrappers(ncp)
    try:
        return nutpie.compile_pymc_model(model, var_names=var_names)
    finally:
        ncp._make_c_logp_func, ncp._make_c_expand_func = originals


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
    shape = (post.sizes["chain"], post.sizes["draw"])
    beta = post["beta"].values if spec.p else np.zeros(shape + (0,))
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
    """Draw responses given link-scale ``eta`` (chain, draw, obs) and dispersion draws
    (chain, draw), in NumPy, on the scale of ``spec.y`` (proportions for the binomial)."""
    fam = spec.family
    mu = fam.linkinv(eta) if hasattr(fam, "linkinv") else eta
    name = fam.name
    w = spec.prior_weights
    d = None if disp is None else np.asarray(disp)[..., None]
    if name == "gaussian":
        return rng.normal(mu, d / np.sqrt(w))
    if name in ("binomial", "bernoulli"):
        if getattr(spec, "trials", None) is not None:
            n = np.asarray(spec.trials, dtype=float)
        else:  # lme4: a proportion response with weights = numbers of trials
            n = np.ones(spec.n) if spec.weights is None else np.asarray(spec.weights, float)
        k = rng.binomial(np.round(n).astype(np.int64), np.clip(mu, 0.0, 1.0))
        return np.where(n > 0, k / np.where(n > 0, n, 1.0), 0.0)
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "negativebinomial" or getattr(fam, "dispersion_kind", None) == "shape":
        return rng.negative_binomial(d, d / (d + mu)).astype(float)  # NB2, size k
    if name == "gamma":
        return rng.gamma(1.0 / d, mu * d)  # Var = phi mu^2
    raise NotImplementedError(f"posterior predictive draws for the {name!r} family")


# nutpie defaults (overridable through sample()'s keyword arguments; PyMC's sampler keeps its
# own). nutpie's default mass-matrix adaptation, estimated from gradients, underestimates the
# scale of fixed effects strongly correlated with the effects of a factor with few,
# well-informed levels (penicillin's 6 samples: R-hat up to 1.05 and divergences with
# 4 x 1000 draws); the Stan/PyMC-style adaptation from the variance of the draws is robust
# there and, with a slightly higher target acceptance, as fast or faster in ESS per second
# on sleepstudy and cbpp.
NUTPIE_ADAPTATION = "draw_diag"
TARGET_ACCEPT = 0.85


def sample_model(spec, model, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 seed=None, sampler: str = "auto", posterior_predictive: bool = False,
                 progressbar: bool = True, log_likelihood: bool = True, **kwargs):
    """Sample ``model`` (built by :func:`build_pymc_model` for ``spec``) with NUTS.

    ``sampler``: ``"nutpie"``, ``"pymc"`` or ``"auto"`` (nutpie when installed). Extra
    keyword arguments go to ``nutpie.sample`` or ``pm.sample``; nutpie's defaults here are
    ``target_accept=0.85`` and ``adaptation="draw_diag"`` (see ``NUTPIE_ADAPTATION``);
    PyMC's sampler keeps its own. Models whose factors have few, well-informed levels (penicillin)
    may need ``target_accept=0.95`` and more draws to mix without divergences.
    Divergent transitions are reported in a warning.
    Returns an :class:`xarray.DataTree` with ``posterior``, ``sample_stats``,
    ``log_likelihood`` (pointwise, ``n`` values per draw; ``log_likelihood=False`` skips it),
    ``observed_data``, ``constant_data`` and, on request, ``posterior_predictive``; the
    model and sampler timings are in the root's attrs.
    """
    import time

    import xarray as xr

    if sampler == "auto":
        sampler = "nutpie" if _have_nutpie() else "pymc"
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'auto', 'nutpie' or 'pymc', got {sampler!r}")
    resp = spec.response_name
    seed_int = int(np.random.SeedSequence(seed).generate_state(1)[0])

    free = [rv.name for rv in model.free_RVs]
    t0 = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        compiled = compile_nutpie(model, var_names=free)
        t1 = time.perf_counter()
        kwargs.setdefault("save_warmup", False)
        kwargs.setdefault("adaptation", NUTPIE_ADAPTATION)
        kwargs.setdefault("target_accept", TARGET_ACCEPT)
        trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed_int,
                              progress_bar=progressbar, **kwargs)
        t2 = time.perf_counter()
    else:
        import pymc as pm

        with model:
            trace = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed_int,
                              progressbar=progressbar, nuts_sampler="pymc", var_names=free,
                              compute_convergence_checks=False, **kwargs)
        t2 = time.perf_counter()
        # pm.sample compiles inside; it reports its own sampling time.
        t1 = t2 - float(trace["posterior"].attrs.get("sampling_time", 0.0))

    post = trace["posterior"].to_dataset()
    extra = evaluate_over_draws(model, post, log_likelihood=log_likelihood)
    groups: dict[str, Any] = {}
    if log_likelihood:
        groups["log_likelihood"] = xr.Dataset({resp: extra.pop(_LOGLIK)})
    post = post.assign(extra)
    groups["posterior"] = post[[v for v in _posterior_order(model) if v in post]]
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
    n_div = int(np.asarray(groups["sample_stats"]["diverging"]).sum()) \
        if "diverging" in groups["sample_stats"] else 0
    if n_div:
        import warnings

        warnings.warn(f"{n_div} divergent transitions after tuning; the posterior may be "
                      f"explored incompletely. Try m.sample(target_accept=0.95) (and more "
                      f"draws)", UserWarning, stacklevel=3)
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
        "postprocess_seconds": time.perf_counter() - t2,
        "draws": draws,
        "tune": tune,
        "chains": chains,
    })
    return tree
