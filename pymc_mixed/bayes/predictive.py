"""Prior and posterior predictive draws through PyMC, and predictions on new data.

``sample_prior_predictive`` and ``sample_posterior_predictive`` are PyMC's own, run on the
model (its likelihood is a real PyMC distribution, :mod:`.likelihood`); the posterior is
handed over with its latents (``latent_posterior``), without which PyMC would redraw the random
effects from their prior. ``predict`` evaluates the mean on new data for every posterior draw:
known levels take their posterior random effects, new levels draws from the population
distribution ``N(0, Sigma_g)`` of the same draw (the posterior predictive of an unseen group).
"""

from __future__ import annotations

import numpy as np

from ..spec import factor_groups

__all__ = ["sample_prior_predictive", "sample_posterior_predictive", "predict",
           "full_trace"]


def full_trace(post):
    """The posterior with its latents: what PyMC needs to condition on every free variable
    (``pm.sample_posterior_predictive(full_trace(post), model=m.pymc_model)``)."""
    ds = post["posterior"].to_dataset()
    if "latent_posterior" in post.children:
        ds = ds.merge(post["latent_posterior"].to_dataset())
    return ds


def sample_prior_predictive(model, draws: int = 500, seed=None):
    """PyMC's prior predictive of ``model``: a DataTree with ``prior`` (without the
    latents), ``prior_predictive`` and ``observed_data``."""
    import pymc as pm
    import xarray as xr

    with model:
        idata = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    latents = set(getattr(model, "pmm_latents", []))
    prior = idata["prior"].to_dataset()
    groups = {"prior": prior[[v for v in prior.data_vars if v not in latents]],
              "prior_predictive": idata["prior_predictive"].to_dataset()}
    if "observed_data" in idata.children:
        groups["observed_data"] = idata["observed_data"].to_dataset()
    return xr.DataTree.from_dict(groups)


def sample_posterior_predictive(model, post, seed=None, extend: bool = True):
    """PyMC's posterior predictive of the observed response at every draw of ``post``;
    added to ``post`` as ``posterior_predictive`` (``extend``) and returned."""
    import pymc as pm

    resp = model.pmm_spec.response_name
    with model:
        idata = pm.sample_posterior_predictive(full_trace(post), var_names=[resp],
                                               random_seed=seed, progressbar=False)
    pp = idata["posterior_predictive"].to_dataset()
    if extend:
        post["posterior_predictive"] = pp
    return pp


def _new_level_draws(sd, chol_corr, n_new: int, rng) -> np.ndarray:
    """``b ~ N(0, diag(sd) R diag(sd))`` for ``n_new`` unseen levels at every draw:
    (S, n_new, k) from ``sd`` (S, k) and the Cholesky factors of ``R`` (S, k, k)."""
    z = rng.standard_normal((sd.shape[0], n_new, sd.shape[1]))
    return np.einsum("sij,slj->sli", sd[:, :, None] * chol_corr, z)


def _chol_corr(spec, g: str, post, S: int, k: int) -> np.ndarray:
    from ..datatree.build import corr_pairs

    R = np.broadcast_to(np.eye(k), (S, k, k)).copy()
    pairs = corr_pairs(spec, g)
    if pairs:
        c = post[f"corr_{g}"].values.reshape(S, len(pairs))
        for m, (i, j, _) in enumerate(pairs):
            R[:, i, j] = R[:, j, i] = c[:, m]
    return np.linalg.cholesky(R)


def _ranef_part(spec, post, newdata, rng, S: int) -> np.ndarray:
    """``Z b`` on ``newdata`` for every draw (S, n_new)."""
    from ..formula.factors import level_index

    out = np.zeros((S, len(newdata)))
    for g, info in factor_groups(spec.reterms).items():
        b = post[f"b_{g}"].values.reshape((S,) + post[f"b_{g}"].shape[2:])  # (S, L, k)
        t0 = spec.reterms[info["terms"][0]]
        idx = level_index(t0, newdata)
        new = idx < 0
        if new.any():  # one draw per unseen level, shared by the factor's terms
            keys, inv = np.unique(_row_keys(newdata, t0.group)[new], return_inverse=True)
            sd = post[f"sd_{g}"].values.reshape(S, -1)
            bn = _new_level_draws(sd, _chol_corr(spec, g, post, S, sd.shape[1]), len(keys),
                                  rng)
            b = np.concatenate([b, bn], axis=1)
            idx = idx.copy()
            idx[new] = b.shape[1] - len(keys) + inv
        col = 0
        for k in info["terms"]:
            t = spec.reterms[k]
            z = t.design.on(newdata)
            out += np.einsum("snj,nj->sn", b[:, idx, col:col + t.p], z)
            col += t.p
    return out


def _row_keys(data, group: str) -> np.ndarray:
    from ..formula.factors import group_labels

    return group_labels(data, group)


def predict(spec, post, newdata, kind: str = "mean", seed=None, offset=None, trials=None):
    """Posterior predictions on ``newdata`` as ArviZ's ``predictions`` group.

    ``kind="mean"``: the mean response ``mu`` (inverse link of the predictor) at every draw;
    ``kind="response"``: a response drawn from the family at every draw (successes out of
    ``trials`` for the binomial; ``trials`` default to 1). Levels of a grouping factor not
    in the fit get random effects drawn from ``N(0, Sigma_g)`` of each draw. Returns an
    :class:`xarray.DataTree` with ``predictions`` and ``predictions_constant_data``.
    """
    import xarray as xr

    from .likelihood import trials_of
    from .priors import dispersion_name

    if kind not in ("mean", "response"):
        raise ValueError(f"kind must be 'mean' or 'response', got {kind!r}")
    if not getattr(spec.mean, "linear", False):
        raise NotImplementedError("predict on new data needs a formula (linear) mean")
    p = post["posterior"]
    nc, nd = p.sizes["chain"], p.sizes["draw"]
    S = nc * nd
    rng = np.random.default_rng(seed)
    X = spec.X_on(newdata)
    beta = p["beta"].values.reshape(S, -1)
    eta = beta @ X.T + spec.offset_on(newdata, offset) + _ranef_part(spec, p, newdata, rng, S)
    fam = spec.family
    mu = fam.linkinv(eta)
    n_new = len(newdata)
    if kind == "mean":
        name, vals = "mu", mu
    else:
        d = dispersion_name(spec)
        disp = None if d is None else p[d].values.reshape(S, 1)
        n = None
        if trials_of(spec) is not None:
            n = np.ones(n_new) if trials is None else np.asarray(trials, dtype=float)
        vals = fam.simulate(mu, disp, n, rng)
        if n is not None:
            vals = np.round(vals * n)
        name = spec.response_name
    coords = {"chain": p["chain"].values, "draw": p["draw"].values,
              "obs": np.arange(n_new)}
    pred = xr.Dataset({name: (("chain", "draw", "obs"), vals.reshape(nc, nd, n_new))},
                      coords=coords)
    const = xr.Dataset({"X": (("obs", "coef"), X)},
                       coords={"obs": np.arange(n_new), "coef": list(spec.xnames)})
    return xr.DataTree.from_dict({"predictions": pred, "predictions_constant_data": const})
