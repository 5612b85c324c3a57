"""Sampling a model's posterior with NUTS into a DataTree: nutpie (default when installed), PyMC's
own sampler, or the JAX samplers (numpyro, blackjax; the ``jax`` extra, for GPUs).

The tree holds a tidy ``posterior`` (interpretable parameters and the random effects ``b_g``),
the sampler's latents (``u_g``, ``cpc_g``) in ``latent_posterior``, ``sample_stats``, the
pointwise ``log_likelihood``, ``observed_data`` and ``constant_data``; convergence is checked
after every run (:mod:`.diagnostics`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..datatree.constant_data import constant_data, observed_data
from .diagnostics import check_convergence

__all__ = ["sample_model", "evaluate_over_draws"]


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


def _have_nutpie() -> bool:
    from importlib.util import find_spec

    return find_spec("nutpie") is not None


# nutpie defaults (overridable through sample()'s keyword arguments; PyMC's sampler keeps its
# own). nutpie's default mass-matrix adaptation, estimated from gradients, underestimates the
# scale of fixed effects strongly correlated with the effects of a factor with few,
# well-informed levels (penicillin's 6 samples); the Stan/PyMC-style adaptation from the
# variance of the draws is robust there.
NUTPIE_ADAPTATION = "draw_diag"
TARGET_ACCEPT = 0.9
SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")


def sample_model(spec, model, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
                 seed=None, sampler: str = "auto", progressbar: bool = True,
                 log_likelihood: bool = True, check: bool = True, **kwargs):
    """Sample ``model`` (built by :func:`build_pymc_model` for ``spec``) with NUTS.

    ``sampler``: ``"nutpie"``, ``"pymc"``, ``"numpyro"``, ``"blackjax"`` (JAX; ``pip install
    pymc_mixed[jax]``) or ``"auto"`` (nutpie when installed). Extra keyword arguments go to
    ``nutpie.sample`` or ``pm.sample``; the defaults here are ``target_accept=0.9`` for every
    sampler and, for nutpie, ``adaptation="draw_diag"`` (``NUTPIE_ADAPTATION``).
    ``check`` warns about R-hat, ESS, divergences and E-BFMI (:mod:`.diagnostics`).
    Returns an :class:`xarray.DataTree` (module docstring); timings are in the root's attrs
    and the convergence figures in ``attrs["diagnostics"]``.
    """
    import time

    import xarray as xr

    if sampler == "auto":
        sampler = "nutpie" if _have_nutpie() else "pymc"
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be 'auto' or one of {', '.join(SAMPLERS)}, "
                         f"got {sampler!r}")
    seed_int = int(np.random.SeedSequence(seed).generate_state(1)[0])
    kwargs.setdefault("target_accept", TARGET_ACCEPT)

    t0 = time.perf_counter()
    trace, t1, t2 = _run_sampler(model, sampler, draws, tune, chains, seed_int, progressbar,
                                 kwargs)
    post = trace["posterior"].to_dataset()
    extra = evaluate_over_draws(model, post, log_likelihood=log_likelihood)
    groups: dict[str, Any] = {}
    if log_likelihood:
        groups["log_likelihood"] = xr.Dataset({spec.response_name: extra.pop(_LOGLIK)})
    post = post.assign(extra)
    latents = [v for v in getattr(model, "pmm_latents", []) if v in post]
    groups["posterior"] = post[[v for v in _posterior_order(model)
                                if v in post and v not in latents]]
    if latents:
        groups["latent_posterior"] = post[latents]
    groups["sample_stats"] = trace["sample_stats"].to_dataset()
    groups["observed_data"] = observed_data(spec)
    groups["constant_data"] = constant_data(spec)
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update({
        "formula": spec.formula, "family": spec.family.name,
        "link": getattr(spec.family, "link", "identity"), "engine": "pymc_mixed",
        "method": "NUTS", "sampler": sampler,
        "compile_seconds": t1 - t0, "sampling_seconds": t2 - t1,
        "postprocess_seconds": time.perf_counter() - t2,
        "draws": draws, "tune": tune, "chains": chains,
        "centered": ",".join(g for g, c in getattr(model, "pmm_centered", {}).items() if c),
    })
    if check:
        tree.attrs["diagnostics"] = str(check_convergence(tree, stacklevel=4))
    return tree


def _run_sampler(model, sampler, draws, tune, chains, seed_int, progressbar, kwargs):
    """Run the sampler; returns the trace and the times compilation ended (``t1``) and
    sampling ended (``t2``). A "compiling" line comes first: the first compilation on an
    empty cache takes seconds with nothing else on screen."""
    import sys
    import time

    free = [rv.name for rv in model.free_RVs]
    if progressbar:
        print(f"pymc_mixed: compiling the model for {sampler} ...", file=sys.stderr, flush=True)
    if sampler == "nutpie":
        import nutpie

        from .nutpie_fast import compile_nutpie

        compiled = compile_nutpie(model, var_names=free)
        t1 = time.perf_counter()
        kwargs.setdefault("save_warmup", False)
        kwargs.setdefault("adaptation", NUTPIE_ADAPTATION)
        trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed_int,
                              progress_bar=progressbar, **kwargs)
        return trace, t1, time.perf_counter()
    import pymc as pm

    extra = {} if sampler == "pymc" else {"nuts_sampler": sampler}
    with model:
        trace = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed_int,
                          progressbar=progressbar, nuts_sampler=extra.get("nuts_sampler",
                                                                          "pymc"),
                          var_names=free, compute_convergence_checks=False, **kwargs)
    t2 = time.perf_counter()
    # pm.sample compiles inside; it reports its own sampling time.
    return trace, t2 - float(trace["posterior"].attrs.get("sampling_time", 0.0)), t2
