"""Plots: ML and posterior side by side (arviz-plots), and caterpillar plots of random effects.

matplotlib and arviz-plots are imported inside the functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_compare", "plot_ranef"]


def _is_result(src) -> bool:
    return hasattr(src, "spec") and hasattr(src, "beta")


def _as_tree(src, draws: int, chains: int, seed):
    """A DataTree with a ``posterior`` group for any source ``compare`` accepts."""
    import xarray as xr

    if _is_result(src):
        if getattr(src, "curvature", None) is None:
            return xr.DataTree.from_dict({"posterior": _wald_beta(src, draws, chains, seed)})
        from .postfit.approx import normal_approximation

        return xr.DataTree.from_dict(
            {"posterior": normal_approximation(src, draws=draws, chains=chains, seed=seed)})
    if isinstance(src, xr.DataTree):
        if "posterior" not in src.children:
            raise ValueError("plot_compare needs draws: a DataTree with a 'posterior' group "
                             "(Result.to_datatree(draws=...) or MixedModel.sample())")
        return src
    if isinstance(src, xr.Dataset):
        return xr.DataTree.from_dict({"posterior": src})
    raise TypeError(f"cannot plot a {type(src).__name__}")


def _wald_beta(result, draws: int, chains: int, seed):
    """Draws of the fixed effects only, from ``N(beta, vcov)``: for fits that hand over no
    deviance to approximate (nonlinear models), so only what has a standard error is drawn."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    beta = np.asarray(result.beta, dtype=float)
    L = np.linalg.cholesky(np.asarray(result.vcov_beta, dtype=float)
                           + 1e-300 * np.eye(beta.size))
    z = rng.standard_normal((chains, draws, beta.size))
    return xr.Dataset({"beta": (("chain", "draw", "coef"), beta + z @ L.T)},
                      coords={"coef": list(result.spec.xnames)})


def plot_compare(sources: dict, var_names=None, draws: int = 4000, seed=0, ci_prob=0.95,
                 **kwargs):
    """Forest plot of several fits of one model (``{"ML": res, "NUTS": post}``), by
    :func:`arviz_plots.plot_forest`.

    ML Results are drawn from their normal approximation at the optimum
    (:func:`pymc_mixed.postfit.approx.normal_approximation`; nonlinear fits, which hand over
    no deviance to approximate, from the Wald distribution of their fixed effects only), with as many chains and draws as the
    first posterior given (else one chain of ``draws``): arviz-plots lines the models up
    draw by draw. ``var_names`` defaults to the variables all sources share among ``beta``,
    ``sigma``, dispersions and ``sd_*``. Extra keyword arguments go to ``plot_forest``.
    Returns its PlotCollection.
    """
    import arviz_plots as azp

    if not isinstance(sources, dict) or not sources:
        raise TypeError("plot_compare() takes a dict {label: fit}")
    chains = 1
    for v in sources.values():
        if not _is_result(v):
            post = _as_tree(v, draws, 1, seed)["posterior"]
            chains, draws = post.sizes["chain"], post.sizes["draw"]
            break
    trees = {k: _as_tree(v, draws, chains, seed) for k, v in sources.items()}
    if var_names is None:
        common = None
        for t in trees.values():
            names = [v for v in t["posterior"].data_vars
                     if v in ("beta", "sigma", "dispersion") or v.startswith("sd_")]
            common = names if common is None else [v for v in common if v in names]
        var_names = common
    kwargs.setdefault("combined", True)
    kwargs.setdefault("ci_probs", (0.5, ci_prob))
    pc = azp.plot_forest(trees, var_names=var_names, **kwargs)
    if len(trees) > 1:
        try:
            pc.add_legend("model")
        except Exception:  # noqa: BLE001  (the legend API is experimental in arviz-plots)
            pass
    return pc


def plot_ranef(result, group: str | None = None, prob: float = 0.95, sort: bool = True,
               ax=None):
    """Caterpillar plot: conditional modes of the random effects with conditional intervals
    (``mode +- z sqrt(condvar)``, as lme4's ``dotplot(ranef(fit, condVar = TRUE))``).

    One panel per grouping factor and column; levels sorted by the first column's mode.
    ``group`` picks one grouping factor. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    ranef = result.ranef
    condvar = result.condvar
    groups = [group] if group is not None else list(ranef)
    for g in groups:
        if g not in ranef:
            raise KeyError(f"no random effects for {g!r}; grouping factors: {', '.join(ranef)}")
    panels = [(g, j) for g in groups for j in range(ranef[g].shape[1])]
    z = norm.ppf(0.5 + prob / 2)
    if ax is None:
        height = max(3.0, 0.18 * max(ranef[g].shape[0] for g in groups) + 1.0)
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), height),
                                 squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(ax)
        fig = axes[0].figure
    for a, (g, j) in zip(axes, panels):
        df = ranef[g]
        mode = df.to_numpy()
        se = np.sqrt(np.clip(np.asarray(condvar[g])[:, j, j], 0, None))
        order = np.argsort(mode[:, 0]) if sort else np.arange(len(df))
        y = np.arange(len(df))
        a.errorbar(mode[order, j], y, xerr=z * se[order], fmt="o", ms=3, lw=1,
                   color="C0", ecolor="C0")
        a.axvline(0.0, color="0.6", lw=0.8, ls="--")
        a.set_yticks(y)
        a.set_yticklabels([str(v) for v in np.asarray(df.index)[order]], fontsize=7)
        a.set_title(f"{g}: {df.columns[j]}", fontsize=9)
        a.set_ylim(-0.7, len(df) - 0.3)
    fig.tight_layout()
    return fig
