"""Convergence diagnostics of a SAEM fit: split R-hat (Gelman et al. 2013) on two things.

``mcmc``        the last phase's per-chain averages of the sampled parameters over groups:
                do the E-step's chains agree (each sequence split in halves, so one chain
                works too)? Threshold 1.1.
``parameters``  the parameter traces of the full-step phase, where (with step 1) they
                fluctuate around the estimate: one sequence per replicate, each split in
                halves. A drifting trace (annealing too short, chains mixing slowly) or
                disagreeing replicates (different local maxima) raise it. The traces are
                strongly autocorrelated (an autocorrelation time ``tau`` inflates R-hat^2 by
                about ``(tau - 1) / (K2 / 2)`` even at convergence: up to 1.18 on Theoph over
                10 seeds), hence the threshold 1.3; a sparse design run with one chain per
                subject, still drifting in that phase, gave 1.7-2.1. Parameters moved by
                the numeric M-step (no random effect) follow the chains slowly (1.2-1.6 on
                Orange and SSfol, their half-phase means within 0.25 SE), so a parameter
                only fails when its trace also moves: the half-phase means of all
                replicates spread by more than ``DRIFT`` = 0.5 of its standard error
                (``drift``; 0.7-2 SE in the drifting sparse run).

A value above its threshold raises :class:`SAEMConvergenceWarning` from the fit.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["rhat", "split_rhat", "SAEMConvergenceWarning", "diagnose", "failed", "THRESHOLD",
           "DRIFT"]

THRESHOLD = {"mcmc": 1.1, "parameters": 1.3}
DRIFT = 0.5


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
             names: list[str], re_names: list[str], se=None) -> dict:
    """``{"mcmc": {..}, "parameters": {..}, "drift": {..}}`` from the replicates' last-phase
    chain means (iterations, C, k), traces (iterations + 1, nparam) and the parameters' SEs;
    warns as the module docstring says."""
    K1, K2, K3 = K
    out = {}
    if K3 >= 4:
        cm = np.concatenate([c[-K3:].transpose(1, 0, 2) for c in chain_means], axis=0)
        out["mcmc"] = dict(zip(re_names, split_rhat(cm).tolist()))
    full = [t[1 + K1:1 + K1 + K2] for t in traces if len(t) > K1 + K2]
    if K2 >= 8 and full:
        seqs = np.stack(full)
        out["parameters"] = dict(zip(names, split_rhat(seqs).tolist()))
        h = K2 // 2
        means = np.concatenate([seqs[:, :h].mean(axis=1), seqs[:, K2 - h:].mean(axis=1)])
        se = np.full(len(names), np.nan) if se is None else np.asarray(se, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["drift"] = dict(zip(names, ((means.max(0) - means.min(0)) / se).tolist()))
    bad = [("mcmc", nm, v) for nm, v in out.get("mcmc", {}).items() if not v <= THRESHOLD["mcmc"]]
    bad += [("parameters", nm, v) for nm, v in out.get("parameters", {}).items()
            if not v <= THRESHOLD["parameters"] and not out["drift"][nm] <= DRIFT]
    if bad:
        kind, nm, v = max(bad, key=lambda t: t[2] if np.isfinite(t[2]) else np.inf)
        extra = (f", its full-step phase moving by {out['drift'][nm]:.2g} SE"
                 if kind == "parameters" and np.isfinite(out["drift"][nm]) else "")
        warnings.warn(
            f"SAEM may not have converged: R-hat of {nm} ({kind}) is {v:.3g} > "
            f"{THRESHOLD[kind]}{extra} ({len(bad)} values); run longer (NIterations), with "
            "more chains (NChains) or from other start values, and look at "
            "res.plot_convergence()", SAEMConvergenceWarning, stacklevel=3)
    return out


def failed(rhat: dict) -> bool:
    """Whether the diagnostics of :func:`diagnose` fail (what its warning says)."""
    mc = any(not v <= THRESHOLD["mcmc"] for v in rhat.get("mcmc", {}).values())
    par = any(not v <= THRESHOLD["parameters"] and not rhat["drift"][nm] <= DRIFT
              for nm, v in rhat.get("parameters", {}).items())
    return mc or par
