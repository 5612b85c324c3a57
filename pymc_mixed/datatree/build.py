"""Results as ArviZ data: an :class:`xarray.DataTree` with named dimensions and coordinates.

Names are shared by maximum-likelihood fits and posteriors, so the two line up in ArviZ:

* ``beta`` (dim ``coef``), ``sigma`` (Gaussian residual SD), ``theta`` (dim ``theta_par``);
* for every grouping factor ``g``: ``sd_g`` (dim ``g_coef``), ``corr_g`` (dim ``g_corr``: each
  pair of columns once, ``"Days,(Intercept)"``; only where a term on ``g`` has several columns) and the random effects ``b_g``
  (dims ``g``, ``g_coef``), with factor levels and column names as coordinates.

Groups: ``mle`` (point estimates), ``fit_stats``, ``observed_data``, ``constant_data``, and
optionally ``posterior``-shaped draws (made by :mod:`pymc_mixed.postfit.approx`).
"""

from __future__ import annotations

import numpy as np

from ..spec import block_diag, coef_dim, corr_dims, factor_groups
from .constant_data import constant_data, observed_data

__all__ = ["group_parameters", "result_to_datatree", "coef_dim", "corr_dims", "corr_dim",
           "corr_pairs"]


def corr_dim(group: str) -> str:
    """Name of the dimension of a grouping factor's correlations (one entry per pair)."""
    return f"{group}_corr"


def corr_pairs(spec, group: str) -> list[tuple[int, int, str]]:
    """The correlations of ``group`` stored once: ``(i, j, "row,col")`` for every pair of
    columns ``i > j`` of one correlated term (columns counted across the factor's terms, as
    ``sd_g``); terms on one factor, as ``(1 + x || g)`` makes, are independent and add none."""
    info = factor_groups(spec.reterms)[group]
    out, col = [], 0
    for k in info["terms"]:
        t = spec.reterms[k]
        for j in range(t.p):
            for i in range(j + 1, t.p):
                out.append((col + i, col + j, f"{t.cnames[i]},{t.cnames[j]}"))
        col += t.p
    return out


def group_parameters(spec, covs: list[np.ndarray]) -> dict[str, dict]:
    """Merge the per-term covariance matrices of each grouping factor (terms on one factor,
    as ``(1 + x || g)`` makes, form a block-diagonal matrix) into sd and correlation.

    Returns {group: {"cnames": [...], "cov": (k, k), "sd": (k,), "corr": (k, k) or None}}.
    """
    out: dict[str, dict] = {}
    for g, info in factor_groups(spec.reterms).items():
        cov = block_diag([covs[k] for k in info["terms"]])
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd, sd)
        np.fill_diagonal(corr, 1.0)
        out[g] = {"cnames": info["cnames"], "cov": cov, "correlated": info["correlated"],
                  "levels": info["levels"], "sd": sd,
                  "corr": corr if info["correlated"] else None}
    return out


def _point_dataset(result):
    import xarray as xr

    spec = result.spec
    coords = {"coef": spec.xnames, "coef_bis": spec.xnames, "theta_par": spec.theta_names}
    data = {
        "beta": ("coef", np.asarray(result.beta)),
        "theta": ("theta_par", np.asarray(result._theta)),
        "vcov_beta": (("coef", "coef_bis"), np.asarray(result._vcov_beta)),
        "se_beta": ("coef", np.sqrt(np.diag(result._vcov_beta))),
    }
    if result.sigma is not None:
        data["sigma"] = ((), float(result.sigma))
    extra = getattr(result, "extra_parameters", None)
    if extra:
        for name, value in extra().items():
            data[name] = ((), float(value))
    vc = result.varcorr
    groups = group_parameters(spec, vc.covs)
    ranef = result.ranef
    for g, info in groups.items():
        cd = coef_dim(g)
        coords[cd] = info["cnames"]
        coords[g] = info["levels"]
        data[f"sd_{g}"] = (cd, info["sd"])
        pairs = corr_pairs(spec, g)
        if pairs:
            coords[corr_dim(g)] = [lab for _, _, lab in pairs]
            data[f"corr_{g}"] = (corr_dim(g), np.array([info["corr"][i, j]
                                                        for i, j, _ in pairs]))
        data[f"b_{g}"] = ((g, cd), ranef[g].to_numpy())
    return xr.Dataset(data, coords=coords)


def _fit_stats(result):
    import xarray as xr

    o = result.optsum
    stats = {
        "objective": result.objective,
        "loglik": result.loglik,
        "aic": result.aic,
        "bic": result.bic,
        "nobs": result.nobs,
        "dof": result.dof,
        "feval": o.feval,
        "converged": bool(result.converged),
        "singular": bool(result.issingular()),
        "fit_seconds": o.seconds,
    }
    return xr.Dataset({k: ((), v) for k, v in stats.items()},
                      attrs={"method": result.method, "optimizer": o.optimizer,
                             "returnvalue": o.returnvalue})


def result_to_datatree(result, posterior=None):
    """Build the DataTree of a maximum-likelihood fit; ``posterior`` (a Dataset of draws, e.g.
    from :func:`pymc_mixed.postfit.approx.normal_approximation`, which
    ``result.to_datatree(draws=...)`` adds) becomes the ``posterior`` group."""
    import xarray as xr

    groups = {
        "mle": _point_dataset(result),
        "fit_stats": _fit_stats(result),
        "observed_data": observed_data(result.spec),
        "constant_data": constant_data(result.spec),
    }
    if posterior is not None:
        groups["posterior"] = posterior
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update({
        "formula": result.spec.formula,
        "family": result.spec.family.name,
        "link": result.spec.family.link,
        "method": result.method,
        "engine": "pymc_mixed",
        "n_dropped": result.spec.n_dropped,
    })
    return tree
