"""Convergence diagnostics of a SAEM fit: split R-hat (Gelman et al. 2013) on two things.

``mcmc``        the last phase's per-chain averages of the sampled parameters over groups:
                do the E-step's chains agree (each sequence split in halves, so one chain
                works too)? Threshold 1.1.
``parameters``  with ``Replicates > 1``: the parameter traces of the full-step phase, where
                (with step 1) they fluctuate around the estimate, one sequence per
                replicate. Disagreeing replicates mean different local maxima or a too
                short annealing phase. These traces are strongly autocorrelated (an
                autocorrelation time ``tau`` inflates R-hat^2 by about ``(tau - 1) / K2`` even
                at convergence), hence the threshold 1.2; with one replicate the
                diagnostic would only measure that autocorrelation and is not computed.

A value above its threshold raises :class:`SAEMConvergenceWarning` from the fit.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["rhat", "split_rhat", "SAEMConvergenceWarning", "diagnose", "THRESHOLD"]

THRESHOLD = {"mcmc": 1.1, "parameters": 1.2}


class SAEMConvergenceWarning(UserWarning):
    """A SAEM fit whose chains or replicates disagree (R-hat above the threshold)."""


def split_rhat(x: np.ndarray) -> np.ndarray:
    """Split R-hat of sequences ``x`` (m, n, ...) over the first two axes (n >= 4)."""
    x = np.asarray(x, float)
    h = x.shape[1] // 2
    return rhat(np.concatenate([x[:, :h], x[:, x.shape[1] - h:]], axis=0))


def rhat(seqs: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of ``seqs`` (m >= 2 sequences, h draws, ...)."""
    h = seqs.shape[1]
    means = seqs.mean(axis=1)
    B = h * means.var(axis=0, ddof=1)
    W = seqs.var(axis=1, ddof=1).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(((h - 1) / h * W + B / h) / W)
    return np.where((W == 0) & (B == 0), 1.0, r)


def diagnose(chain_means: list[np.ndarray], traces: list[np.ndarray], K: tuple,
             names: list[str], re_names: list[str]) -> dict:
    """``{"mcmc": {param: rhat}, "parameters": {param: rhat}}`` from the replicates' last-phase
    chain means (iterations, C, k) and traces (iterations + 1, nparam); warns when any is
    above the threshold."""
    K1, K2, K3 = K
    out = {}
    if K3 >= 4:
        cm = np.concatenate([c[-K3:].transpose(1, 0, 2) for c in chain_means], axis=0)
        out["mcmc"] = dict(zip(re_names, split_rhat(cm).tolist()))
    full = [t[1 + K1:1 + K1 + K2] for t in traces if len(t) > K1 + K2]
    if K2 >= 4 and len(full) > 1:
        out["parameters"] = dict(zip(names, rhat(np.stack(full)).tolist()))
    bad = [(kind, nm, v) for kind, d in out.items() for nm, v in d.items()
           if not v <= THRESHOLD[kind]]
    if bad:
        kind, nm, v = max(bad, key=lambda t: t[2] if np.isfinite(t[2]) else np.inf)
        warnings.warn(
            f"SAEM may not have converged: R-hat of {nm} ({kind}) is {v:.3g} > {THRESHOLD[kind]} "
            f"({len(bad)} values above); run longer (NIterations), with more chains (NChains) "
            "or from other start values, and look at res.plot_convergence()",
            SAEMConvergenceWarning, stacklevel=3)
    return out
