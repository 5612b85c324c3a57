"""Sampling a model's posterior with NUTS (nutpie when installed, else PyMC) into a DataTree,
with the pointwise log-likelihood and, on request, posterior predictive draws."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..datatree.constant_data import constant_data, observed_data
from .predictive import eta_draws, simulate_responses
from .priors import dispersion_name

__all__ = ["sample_model", "evaluate_over_draws", "compile_nutpie"]


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

    t0 = time.perf_counter()
    trace, t1, t2 = _run_sampler(model, sampler, draws, tune, chains, seed_int, progressbar,
                                 kwargs)
    post = trace["posterior"].to_dataset()
    extra = evaluate_over_draws(model, post, log_likelihood=log_likelihood)
    groups: dict[str, Any] = {}
    if log_likelihood:
        groups["log_likelihood"] = xr.Dataset({resp: extra.pop(_LOGLIK)})
    post = post.assign(extra)
    groups["posterior"] = post[[v for v in _posterior_order(model) if v in post]]
    groups["sample_stats"] = trace["sample_stats"].to_dataset()
    groups["observed_data"] = observed_data(spec)
    groups["constant_data"] = constant_data(spec)
    if posterior_predictive:
        groups["posterior_predictive"] = _posterior_predictive(spec, post, seed)
    _warn_divergences(groups["sample_stats"])
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


def _run_sampler(model, sampler, draws, tune, chains, seed_int, progressbar, kwargs):
    """Run nutpie or PyMC's NUTS; returns the trace and the times compilation ended (``t1``)
    and sampling ended (``t2``)."""
    import time

    free = [rv.name for rv in model.free_RVs]
    if sampler == "nutpie":
        import nutpie

        compiled = compile_nutpie(model, var_names=free)
        t1 = time.perf_counter()
        kwargs.setdefault("save_warmup", False)
        kwargs.setdefault("adaptation", NUTPIE_ADAPTATION)
        kwargs.setdefault("target_accept", TARGET_ACCEPT)
        trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed_int,
                              progress_bar=progressbar, **kwargs)
        return trace, t1, time.perf_counter()
    import pymc as pm

    with model:
        trace = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed_int,
                          progressbar=progressbar, nuts_sampler="pymc", var_names=free,
                          compute_convergence_checks=False, **kwargs)
    t2 = time.perf_counter()
    # pm.sample compiles inside; it reports its own sampling time.
    return trace, t2 - float(trace["posterior"].attrs.get("sampling_time", 0.0)), t2


def _posterior_predictive(spec, post, seed):
    """Responses drawn at every posterior draw (``posterior_predictive`` group)."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    eta = eta_draws(spec, post)
    dname = dispersion_name(spec)
    disp = post[dname].values if dname else None
    yrep = simulate_responses(spec, eta, disp, rng)
    return xr.Dataset({spec.response_name: (("chain", "draw", "obs"), yrep)},
                      coords={"chain": post["chain"].values, "draw": post["draw"].values,
                              "obs": np.arange(spec.n)})


def _warn_divergences(stats) -> None:
    n_div = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    if n_div:
        import warnings

        warnings.warn(f"{n_div} divergent transitions after tuning; the posterior may be "
                      f"explored incompletely. Try m.sample(target_accept=0.95) (and more "
                      f"draws)", UserWarning, stacklevel=4)
