"""``fit_saem``: the SAEM runs, then conditional modes, standard errors, log-likelihoods and
diagnostics, assembled into a :class:`~.result.SAEMResult`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...linalg.threads import single_threaded_blas
from ..pnls import FactorLayout, conditional_modes
from .diagnostics import diagnose, failed
from .driver import param_names, param_vector, run_saem
from .layout import SAEMLayout
from .linearized import linearize
from .loglik import GQ_NODES, loglik_gq, loglik_is, loglik_lin
from .mcmc import Evaluator
from .options import saem_options
from .result import SAEMResult
from .stderr import fisher_information

__all__ = ["fit_saem"]


def _modes(flay, lay, kernel, p):
    """Conditional modes (G, k) of the random parameters and kernel 4's proposal factor."""
    theta = lay.theta(p.Psi, p.sigma)
    m = conditional_modes(flay, kernel, p.beta, theta, p.shape)
    Lam = flay.Lam(theta)
    centre = lay.mu(p.beta) + m.U @ Lam.T
    chol = p.sigma * Lam[None] @ np.swapaxes(np.linalg.inv(m.L), 1, 2)
    return centre, chol


def _trace_frame(runs, names, sched) -> pd.DataFrame:
    frames = []
    K1, K2, _ = sched
    for r, run in enumerate(runs, start=1):
        it = np.arange(len(run.trace))
        phase = np.where(it <= K1, 1, np.where(it <= K1 + K2, 2, 3))
        df = pd.DataFrame(run.trace, columns=names)
        df.insert(0, "phase", phase)
        df.insert(0, "iteration", it)
        df.insert(0, "replicate", r)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def fit_saem(spec, kernel, seed=None, **options) -> SAEMResult:
    """Maximum likelihood by SAEM; ``options`` take nlmefitsa's names or snake-case ones
    (see :mod:`.options`). The same ``seed`` gives bit-identical results."""
    opts = saem_options(**options)
    lay = SAEMLayout(spec)
    flay = FactorLayout(spec)
    ss = np.random.SeedSequence(seed)
    streams = [np.random.default_rng(s) for s in ss.spawn(opts.replicates + 1)]
    mode_fn = (lambda p: _modes(flay, lay, kernel, p)) if opts.mode_kernel else None
    names = param_names(lay)
    with single_threaded_blas():
        runs = [run_saem(lay, kernel, opts, streams[r],
                         desc=f"SAEM {r + 1}/{opts.replicates}" if opts.replicates > 1 else "SAEM",
                         mode_fn=mode_fn) for r in range(opts.replicates)]
        run = runs[0]
        p = run.params
        theta = lay.theta(p.Psi, p.sigma)
        centre, _ = _modes(flay, lay, kernel, p)
        cmean, ccov = run.stats.conditional()
        lin = linearize(lay, kernel, p.beta, p.Psi, p.sigma, p.shape, centre)
        se_params, vcov_params, vcov_beta = _stderr(opts, lay, lin, run, names)
        loglik_by, loglik_se = _logliks(opts, lay, kernel, p, theta, lin, cmean, ccov, streams[-1])
    rhat = diagnose([r.chain_means for r in runs], [r.trace for r in runs], opts.n_iterations,
                    names, lay.names, se_params.to_numpy())
    first = next(iter(loglik_by.values()), np.nan)
    acc = pd.DataFrame(run.rates, columns=["population", "random_walk", "block", "mode"])
    acc = acc.dropna(axis=1, how="all")
    reps = pd.DataFrame([param_vector(lay, r.params) for r in runs], columns=names,
                        index=pd.RangeIndex(1, len(runs) + 1, name="replicate"))
    return SAEMResult(
        spec=spec, kernel=kernel, method="SAEM", beta=p.beta, theta_=theta, sigma=p.sigma,
        shape=p.shape, vcov_beta=vcov_beta, b_blocks=lay.psi_to_b(centre, p.beta),
        deviance=-2.0 * first, optsum=None,
        se_method={"lin": "linearized Fisher information", None: "not computed",
                   "sa": "stochastic approximation (Louis)"}[opts.se_method],
        converged=not failed(rhat),
        stopped=run.stopped, loglik_se=loglik_se, loglik_by=loglik_by,
        trace=_trace_frame(runs, names, opts.n_iterations), se_params=se_params,
        vcov_params=vcov_params, rhat=rhat, cond_mean_blocks=lay.psi_to_b(cmean, p.beta),
        acceptance=acc, replicate_estimates=reps, phases=opts.n_iterations,
        n_chains=opts.chains_for(lay.G), seed=seed)


def _stderr(opts, lay, lin, run, names):
    p = run.params
    npar = len(names)
    if opts.se_method is None:
        nan = np.full((npar, npar), np.nan)
        return (pd.Series(np.nan, index=names, name="se"), pd.DataFrame(nan, names, names),
                nan[:lay.spec.p, :lay.spec.p])
    info = run.information if opts.se_method == "sa" else \
        fisher_information(lay, lin, p.sigma, p.shape)
    try:
        vcov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        vcov = np.full_like(info, np.nan)
    se = pd.Series(np.sqrt(np.diag(vcov)), index=names, name="se")
    return se, pd.DataFrame(vcov, names, names), vcov[:lay.spec.p, :lay.spec.p]


def _logliks(opts, lay, kernel, p, theta, lin, cmean, ccov, rng):
    out, se = {}, np.nan
    for method in opts.loglik_methods:
        if method == "is":
            ev = Evaluator(lay, kernel)
            ev.set_params(p.beta, p.sigma, p.shape)
            out["is"], se = loglik_is(ev, lay, p.beta, p.Psi, cmean, ccov, rng,
                                      M=int(opts.is_samples))
        elif method == "gq":
            nodes = opts.gq_nodes or GQ_NODES.get(lay.k)
            if nodes is None:
                raise ValueError(f"LogLikMethod 'gq' with {lay.k} random effects needs "
                                 "gq_nodes (nodes per dimension; nodes^k evaluations per group)")
            out["gq"] = loglik_gq(lay.spec, kernel, theta, p.beta, p.sigma, p.shape, nodes)
        elif method == "lin":
            out["lin"] = loglik_lin(lay, lin)
    return out, se
