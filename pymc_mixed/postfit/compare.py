"""Maximum likelihood and posteriors side by side, parameters aligned by name.

``compare({"ML": ml_result, "NUTS": posterior})`` gives one table: for each parameter
(``beta[...]``, ``sigma``, ``sd_g[...]``, ``corr_g[a,b]``, ``theta[...]``) the estimate or
posterior mean, the standard error or posterior SD and an interval, for every source.

A source can be

* a maximum-likelihood Result: its estimates; standard errors and intervals from the normal
  approximation at the optimum (:mod:`pymc_mixed.postfit.approx`; the fixed effects' standard errors
  are the Result's own);
* a DataTree with a ``posterior`` group (``MixedModel.sample``, or ``Result.to_datatree``
  with draws -- whose ``mle`` group then gives the estimates);
* an :class:`xarray.Dataset` of draws with dims (chain, draw, ...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["compare"]

_DEFAULT = ("beta", "sigma", "sd_", "corr_", "theta")


def _select(names, var_names):
    if var_names is None:
        keep = [v for v in names if v.startswith(_DEFAULT) and not v.startswith("b_")]
        # family dispersions (gamma, negative binomial) next to sigma
        keep += [v for v in names if v in ("dispersion", "phi", "alpha")]
        return keep
    return [v for v in var_names if v in names]


def _labels(da) -> list[tuple[str, tuple]]:
    """(label, index) for every scalar element of a variable, dropping the duplicate upper
    triangle and unit diagonal of correlation matrices."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        return [(da.name, ())]
    out = []
    shape = [da.sizes[d] for d in dims]
    coords = [list(np.asarray(da[d].values)) if d in da.coords else list(range(da.sizes[d]))
              for d in dims]
    for idx in np.ndindex(*shape):
        if da.name.startswith("corr_") and len(idx) == 2 and idx[0] <= idx[1]:
            continue
        lab = ",".join(str(coords[k][i]) for k, i in enumerate(idx))
        out.append((f"{da.name}[{lab}]", idx))
    return out


def _draw_stats(ds, var_names, prob):
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    rows = {}
    for v in _select(list(ds.data_vars), var_names):
        da = ds[v]
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        vals = np.asarray(da.transpose("chain", "draw", *dims).values, dtype=float)
        flat = vals.reshape((-1,) + vals.shape[2:])
        for lab, idx in _labels(da):
            x = flat[(slice(None),) + idx]
            rows[lab] = {"estimate": float(np.mean(x)), "se": float(np.std(x, ddof=1)),
                         "lower": float(np.quantile(x, lo)), "upper": float(np.quantile(x, hi))}
    return rows


def _point_stats(ds, var_names):
    rows = {}
    for v in _select(list(ds.data_vars), var_names):
        da = ds[v]
        vals = np.asarray(da.values, dtype=float)
        for lab, idx in _labels(da):
            rows[lab] = {"estimate": float(vals[idx])}
    return rows


def _from_result(res, var_names, prob, draws, seed):
    from .approx import normal_approximation
    from ..datatree import result_to_datatree

    mle = result_to_datatree(res)["mle"].to_dataset()
    rows = _point_stats(mle, var_names)
    approx = {}
    # the normal approximation needs the deviance the estimator handed over (LMM, GLMM); a
    # nonlinear fit has none: its fixed effects get Wald intervals below, the rest estimates
    if getattr(res, "curvature", None) is not None:
        try:
            approx = _draw_stats(normal_approximation(res, draws=draws, chains=1, seed=seed),
                                 var_names, prob)
        except ValueError:  # no objective to differentiate (nAGQ = 0)
            approx = {}
    for lab, r in rows.items():
        a = approx.get(lab)
        if a is not None:
            r.update(se=a["se"], lower=a["lower"], upper=a["upper"])
    if "se_beta" in mle:
        from scipy.stats import norm

        z = norm.ppf(1 - (1 - prob) / 2)
        for name, est, se in zip(mle["coef"].values, mle["beta"].values, mle["se_beta"].values):
            rows[f"beta[{name}]"].update(se=float(se), lower=float(est - z * se),
                                         upper=float(est + z * se))
    return rows


def _rows(source, var_names, prob, draws, seed):
    import xarray as xr

    if hasattr(source, "spec") and hasattr(source, "beta"):
        return _from_result(source, var_names, prob, draws, seed)
    if isinstance(source, xr.DataTree):
        post = source["posterior"].to_dataset() if "posterior" in source.children else None
        if "mle" in source.children:
            rows = _point_stats(source["mle"].to_dataset(), var_names)
            if post is not None:
                d = _draw_stats(post, var_names, prob)
                for lab, r in rows.items():
                    if lab in d:
                        r.update({k: d[lab][k] for k in ("se", "lower", "upper")})
            return rows
        if post is None:
            raise ValueError("a DataTree to compare needs a 'posterior' or an 'mle' group")
        return _draw_stats(post, var_names, prob)
    if isinstance(source, xr.Dataset):
        return _draw_stats(source, var_names, prob)
    raise TypeError(f"cannot compare a {type(source).__name__}: give a fitted Result, a "
                    "DataTree with a posterior (or mle) group, or a Dataset of draws")


def compare(sources: dict, var_names=None, prob: float = 0.95, draws: int = 4000,
            seed=0) -> pd.DataFrame:
    """One table of estimates from several fits of the same model, aligned by parameter.

    Parameters
    ----------
    sources : {label: Result, DataTree or Dataset}, e.g. ``{"ML": ml, "NUTS": post}``.
    var_names : variables to show (default: ``beta``, ``sigma``, dispersions, ``sd_*``,
        ``corr_*`` (below the diagonal) and ``theta``; random effects ``b_*`` on request).
    prob : coverage of the intervals: equal-tailed quantiles of the draws (posterior, or
        the normal approximation of an ML fit; Wald intervals for its fixed effects).
    draws, seed : size and seed of the normal approximation of ML Results.

    Returns
    -------
    DataFrame indexed by parameter, columns ``(source, statistic)`` with statistics
    ``estimate`` (ML estimate or posterior mean), ``se`` (standard error or posterior SD),
    ``lower``, ``upper``. Parameters missing from a source are NaN.
    """
    if not isinstance(sources, dict) or not sources:
        raise TypeError("compare() takes a dict {label: fit}, e.g. {'ML': res, 'NUTS': post}")
    frames = {}
    order: list[str] = []
    for label, src in sources.items():
        rows = _rows(src, var_names, prob, draws, seed)
        frames[label] = pd.DataFrame.from_dict(rows, orient="index")
        order += [r for r in rows if r not in order]
    out = pd.concat(frames, axis=1)
    out = out.reindex(order)
    stats = ["estimate", "se", "lower", "upper"]
    cols = [(s, c) for s in sources for c in stats]
    out = out.reindex(columns=pd.MultiIndex.from_tuples(cols, names=["source", "statistic"]))
    out.index.name = "parameter"
    return out
