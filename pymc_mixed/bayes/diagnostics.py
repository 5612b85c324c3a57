"""Convergence checks after sampling, with either sampler: R-hat, bulk and tail ESS,
divergences and E-BFMI (ArviZ's ``arviz_stats``), each warning saying what to try.

Thresholds are those of Vehtari et al. (2021) and the Stan / ArviZ defaults: R-hat > 1.01,
ESS < 100 per chain (400 for four chains), E-BFMI < 0.3.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConvergenceWarning

__all__ = ["check_convergence", "RHAT_MAX", "ESS_PER_CHAIN", "BFMI_MIN"]

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
BFMI_MIN = 0.3


def _worst(ds, stat) -> tuple[str, float]:
    """The variable element with the largest (R-hat) or smallest (ESS) value, ignoring
    constants (NaN)."""
    best_name, best = "", np.nan
    for v, da in ds.data_vars.items():
        vals = np.asarray(da.values, dtype=float).ravel()
        if not np.isfinite(vals).any():
            continue
        k = int(np.nanargmax(vals) if stat == "max" else np.nanargmin(vals))
        val = float(vals[k])
        if np.isnan(best) or (val > best if stat == "max" else val < best):
            idx = np.unravel_index(k, da.shape) if da.ndim else ()
            label = ",".join(str(da[d].values[i]) if d in da.coords else str(i)
                             for d, i in zip(da.dims, idx))
            best_name, best = (f"{v}[{label}]" if label else v), val
    return best_name, best


def _bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain (Betancourt 2016): ``mean(diff(E)^2) / var(E)``."""
    energy = np.asarray(energy, dtype=float)
    return np.mean(np.diff(energy, axis=1) ** 2, axis=1) / np.var(energy, axis=1)


def check_convergence(tree, stacklevel: int = 3) -> dict:
    """Warn (:class:`~pymc_mixed.errors.ConvergenceWarning`) about R-hat, bulk and tail ESS,
    divergences and E-BFMI of a posterior DataTree; returns the figures checked
    (``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``min_bfmi``)."""
    import arviz_stats as azs

    post = tree["posterior"].to_dataset()
    nchains = post.sizes["chain"]
    out: dict = {}
    msgs = []
    if nchains > 1:
        name, rhat = _worst(azs.rhat(post), "max")
        out["max_rhat"] = rhat
        if rhat > RHAT_MAX:
            msgs.append(f"R-hat {rhat:.3f} > {RHAT_MAX} ({name}): the chains disagree; run "
                        f"more tuning and draws (m.sample(tune=2000, draws=2000))")
    need = ESS_PER_CHAIN * nchains
    for method in ("bulk", "tail"):
        name, ess = _worst(azs.ess(post, method=method), "min")
        out[f"min_ess_{method}"] = ess
        if ess < need:
            msgs.append(f"{method} ESS {ess:.0f} < {need} ({name}): too few effective draws "
                        f"for reliable {'means' if method == 'bulk' else 'intervals'}; run "
                        f"more draws")
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else None
    n_div = int(np.asarray(stats["diverging"]).sum()) if stats is not None and \
        "diverging" in stats else 0
    out["divergences"] = n_div
    if n_div:
        msgs.append(f"{n_div} divergent transitions after tuning: the posterior may be explored "
                    f"incompletely; try m.sample(target_accept=0.95) or another "
                    f"parametrization (m.sample(centered={{group: False}}))")
    if stats is not None and "energy" in stats:
        bfmi = _bfmi(stats["energy"].values)
        out["min_bfmi"] = float(np.min(bfmi))
        if np.min(bfmi) < BFMI_MIN:
            msgs.append(f"E-BFMI {np.min(bfmi):.2f} < {BFMI_MIN} in some chain: the sampler "
                        f"explores the energy poorly (heavy tails or a funnel); try another "
                        f"parametrization or more informative priors")
    for msg in msgs:
        warnings.warn(msg, ConvergenceWarning, stacklevel=stacklevel)
    return out
