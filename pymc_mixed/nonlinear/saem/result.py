"""SAEMResult: a :class:`~pymc_mixed.nonlinear.result.NonlinearResult` with what SAEM adds:
the iterations, Monte-Carlo log-likelihoods, standard errors of every parameter, conditional
means of the random effects and convergence diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..result import NonlinearResult

__all__ = ["SAEMResult"]


@dataclass(repr=False)
class SAEMResult(NonlinearResult):
    """A SAEM fit. ``loglik`` is the first of ``loglik_by`` (importance sampling by default),
    ``loglik_se`` its Monte-Carlo SE; ``ranef`` are the conditional modes, ``cond_mean`` the
    conditional means; ``trace`` holds every iteration of every replicate."""

    loglik_se: float = np.nan
    loglik_by: dict = field(default_factory=dict)
    trace: pd.DataFrame | None = None
    se_params: pd.Series | None = None
    vcov_params: pd.DataFrame | None = None
    rhat: dict = field(default_factory=dict)
    cond_mean_blocks: list = field(default_factory=list)
    acceptance: pd.DataFrame | None = None
    replicate_estimates: pd.DataFrame | None = None
    phases: tuple = ()
    n_chains: int = 1
    seed: object = None

    @property
    def estimates(self) -> pd.Series:
        """Every estimated parameter (fixed effects, Psi elements, error parameters)."""
        return self.replicate_estimates.iloc[0].rename("estimate")

    @property
    def cond_mean(self) -> dict[str, pd.DataFrame]:
        """Conditional means of the random effects (the last phase's sample averages)."""
        t = self.spec.reterms
        frames = [pd.DataFrame(b, index=x.levels, columns=x.cnames)
                  for x, b in zip(t, self.cond_mean_blocks)]
        return {t[0].group: pd.concat(frames, axis=1)}

    def summary(self) -> str:
        """nlme-style summary plus the SAEM specifics (log-likelihood methods, chains,
        convergence diagnostics)."""
        by = ", ".join(f"{k} {v:.4f}" for k, v in self.loglik_by.items()) or "not computed"
        worst = {kind: max(d.values()) for kind, d in self.rhat.items()
                 if d and kind != "drift"}
        rh = ", ".join(f"{k} {v:.3f}" for k, v in worst.items()) or "not computed"
        K = "/".join(map(str, self.phases))
        return (super().summary() + f"\n\nSAEM: {K} iterations, {self.n_chains} chains per "
                f"group, seed {self.seed!r}\n  logLik by method: {by}"
                + (f" (IS Monte-Carlo SE {self.loglik_se:.3g})" if "is" in self.loglik_by else "")
                + f"\n  max R-hat: {rh}")

    __str__ = summary
    __repr__ = summary

    def plot_convergence(self, params=None, ncols: int = 4, figsize=None):
        """Parameter traces across the phases (one line per replicate; phase boundaries
        dashed). Returns the matplotlib figure."""
        import matplotlib.pyplot as plt

        names = list(params or self.se_params.index if self.se_params is not None
                     else self.trace.columns[3:])
        nrow = int(np.ceil(len(names) / ncols))
        fig, axes = plt.subplots(nrow, min(ncols, len(names)), squeeze=False,
                                 figsize=figsize or (3.2 * min(ncols, len(names)), 2.4 * nrow))
        K1, K2, _ = self.phases
        for ax, nm in zip(axes.flat, names):
            for rep, tr in self.trace.groupby("replicate"):
                ax.plot(tr["iteration"], tr[nm], lw=0.9, label=f"replicate {rep}")
            for x in (K1, K1 + K2):
                ax.axvline(x, color="grey", ls="--", lw=0.7)
            ax.set_title(nm, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        axes.flat[0].set_xlabel("iteration", fontsize=8)
        if self.trace["replicate"].nunique() > 1:
            axes.flat[0].legend(fontsize=7)
        fig.suptitle("SAEM: annealing | full step | decreasing step", fontsize=10)
        fig.tight_layout()
        return fig

    def to_datatree(self):
        """An :class:`xarray.DataTree`: ``mle`` (estimates, dim ``param``), ``se``,
        ``fit_stats`` and ``saem_iterations`` (dims ``chain`` = replicate, ``draw`` = iteration,
        so ArviZ's trace plots read it)."""
        import xarray as xr

        est = self.replicate_estimates.iloc[0]
        names = list(est.index)
        mle = xr.Dataset({"estimate": ("param", est.to_numpy())}, coords={"param": names})
        se = xr.Dataset({"se": ("param", self.se_params.reindex(names).to_numpy()
                                if self.se_params is not None else np.full(len(names), np.nan))},
                        coords={"param": names})
        reps = sorted(self.trace["replicate"].unique())
        n_it = self.trace.groupby("replicate").size().min()
        its = {}
        for nm in names:
            arr = np.stack([self.trace.loc[self.trace.replicate == r, nm].to_numpy()[:n_it]
                            for r in reps])
            its[_safe(nm)] = (("chain", "draw"), arr)
        phase = self.trace.loc[self.trace.replicate == reps[0], "phase"].to_numpy()[:n_it]
        iters = xr.Dataset(its, coords={"chain": reps, "draw": np.arange(n_it),
                                        "phase": ("draw", phase)})
        stats = xr.Dataset({f"loglik_{k}": v for k, v in self.loglik_by.items()}
                           | {"loglik_se": self.loglik_se, "deviance": self.deviance})
        return xr.DataTree.from_dict({"mle": mle, "se": se, "fit_stats": stats,
                                      "saem_iterations": iters})


def _safe(name: str) -> str:
    """A variable name ArviZ accepts for ``var(lka)``-style names."""
    return name.replace("(", "_").replace(")", "").replace(",", "_")
