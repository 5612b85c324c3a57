"""The SAEM loop: simulation (MH E-step), stochastic approximation, maximization.

One run per replicate, each from its own stream of a ``numpy.random.SeedSequence(seed)``; the
whole fit runs with one BLAS thread, so a seed gives bit-identical estimates whatever the
machine's thread settings.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .approximation import Schedule, SuffStats
from .mcmc import Evaluator, Proposals, estep
from .stderr import louis_terms
from .mstep import Params, mstep, numeric_error, numeric_fixed, residual_stat

__all__ = ["SAEMRun", "run_saem", "param_names", "param_vector"]


@dataclass
class SAEMRun:
    """What one replicate leaves: final parameters, the trace and the last phase's moments."""

    params: Params
    trace: np.ndarray            # (iterations + 1, nparam), row 0 the start
    stats: SuffStats
    psi: np.ndarray              # (C, G, k) final samples
    rates: np.ndarray            # (iterations, 3) acceptance rates of kernels 1-3
    chain_means: np.ndarray      # (iterations, C, k) per-chain means of psi over groups
    stopped: bool
    calls: int
    information: np.ndarray | None = None   # Louis' observed information (ComputeStdErrors="sa")


def param_names(lay) -> list[str]:
    """Names of the traced parameters: fixed effects, Psi's structural elements, error."""
    spec = lay.spec
    rows, cols = np.nonzero(np.tril(lay.cov_mask))
    psi = [f"var({lay.names[i]})" if i == j else f"cov({lay.names[i]},{lay.names[j]})"
           for i, j in zip(rows, cols)]
    return spec.xnames + psi + spec.error_model.param_names


def param_vector(lay, p: Params) -> np.ndarray:
    """The traced parameters as one vector (see :func:`param_names`)."""
    rows, cols = np.nonzero(np.tril(lay.cov_mask))
    err = list(lay.spec.error_model.error_params(p.sigma, p.shape).values())
    return np.r_[p.beta, p.Psi[rows, cols], err]


def _start(lay, opts) -> Params:
    spec = lay.spec
    em = spec.error_model
    Psi = np.eye(lay.k) if opts.cov0 is None else np.array(opts.cov0, float)
    if Psi.shape != (lay.k, lay.k):
        raise ValueError(f"Cov0 must be {lay.k} x {lay.k} (random parameters "
                         f"{', '.join(lay.names)}); got shape {Psi.shape}")
    try:
        np.linalg.cholesky(Psi)
    except np.linalg.LinAlgError as err:
        raise ValueError("Cov0 must be symmetric positive definite") from err
    ep = np.atleast_1d(np.asarray(1.0 if opts.error_parameters is None
                                  else opts.error_parameters, float))
    if np.any(ep <= 0):
        raise ValueError(f"ErrorParameters must be positive, got {opts.error_parameters!r}")
    if em.nshape:
        a, b = (ep[0], ep[-1]) if ep.size > 1 else (ep[0], ep[0])
        return Params(spec.beta0.copy(), np.where(lay.cov_mask, Psi, 0.0), float(a),
                      np.array([b / a]))
    return Params(spec.beta0.copy(), np.where(lay.cov_mask, Psi, 0.0), float(ep[0]),
                  np.zeros(0))


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False,
                disable=not (enabled and sys.stderr.isatty()))


class _Record:
    """Per-iteration records of one run: parameters, acceptance rates, chain means and, for
    ``ComputeStdErrors="sa"``, the approximated Louis terms."""

    KERNELS = ("pop", "rw", "block", "mode")

    def __init__(self, lay, total: int, C: int, louis: bool):
        self.lay = lay
        self.names = param_names(lay)
        self.trace = np.empty((total + 1, len(self.names)))
        self.rates = np.full((total, len(self.KERNELS)), np.nan)
        self.chain_means = np.empty((total, C, lay.k))
        self.louis = None
        if louis:
            if lay.beta_fixed.size:
                raise NotImplementedError(
                    "ComputeStdErrors='sa' needs a random effect on every parameter; use True "
                    "(linearized Fisher information)")
            npar = len(self.names)
            self.louis = [np.zeros(npar), np.zeros((npar, npar))]

    def iteration(self, it, p, state, ev, rates, gamma, last_phase) -> None:
        """Record iteration ``it`` (from 0) after its M-step."""
        self.trace[it + 1] = param_vector(self.lay, p)
        self.rates[it] = [rates.get(key, np.nan) for key in self.KERNELS]
        self.chain_means[it] = state.psi.mean(axis=1)
        if last_phase and self.louis is not None:
            g, gh = louis_terms(self.lay, p, state.psi, ev.flat(state.f))
            self.louis[0] += gamma * (g - self.louis[0])
            self.louis[1] += gamma * (gh - self.louis[1])

    def information(self):
        """Louis' observed information ``-(E[H + g g'] - E[g] E[g]')``, or ``None``."""
        if self.louis is None:
            return None
        return -(self.louis[1] - np.outer(self.louis[0], self.louis[0]))


def _initial_state(lay, ev, p, C):
    state = ev.state(np.repeat(lay.mu(p.beta)[None], C, axis=0))
    if not np.all(np.isfinite(state.ll)):
        g = int(np.flatnonzero(~np.isfinite(state.ll[0]))[0])
        raise ValueError(f"the model gives a non-finite likelihood at the start values for "
                         f"{lay.group} = {lay.levels[g]!r}")
    return state


def run_saem(lay, kernel, opts, rng: np.random.Generator, desc: str = "SAEM",
             mode_fn=None) -> SAEMRun:
    """One SAEM run (see the package docstring); ``mode_fn(params)`` gives kernel 4's
    proposal ``(centre, chol)`` when ``opts.mode_kernel``."""
    sched = Schedule(opts.n_iterations, opts.n_burn_in)
    C = opts.chains_for(lay.G)
    p = _start(lay, opts)
    ev = Evaluator(lay, kernel)
    ev.set_params(p.beta, p.sigma, p.shape)
    state = _initial_state(lay, ev, p, C)
    props = Proposals.start(p.Psi)
    stats = SuffStats(lay.G, lay.k)
    rec = _Record(lay, sched.total, C, opts.se_method == "sa")
    rec.trace[0] = param_vector(lay, p)
    last = sched.total
    with _progress(sched.total, opts.progressbar, desc) as bar:
        for it in range(sched.total):
            mode = mode_fn(p) if mode_fn is not None else None
            state = estep(state, ev, lay.mu(p.beta), p.Psi, props, opts.n_mcmc_iterations, rng,
                          it, opts.target_accept, mode)
            gamma, phase = sched.gamma(it), sched.phase(it)
            if gamma > 0:
                p = _maximize(stats, state, ev, p, lay, gamma, opts, phase == 1)
            if phase == 3:
                stats.accumulate(state.psi)
            rec.iteration(it, p, state, ev, props.rates, gamma, phase == 3)
            bar.update()
            if opts.output_fcn is not None and opts.output_fcn(
                    dict(zip(rec.names, rec.trace[it + 1])),
                    {"iteration": it + 1, "phase": phase, "gamma": gamma,
                     "acceptance": dict(props.rates)}, "iter"):
                last = it + 1
                break
    if stats.nm == 0:      # stopped before the last phase: moments of the final samples
        stats.accumulate(state.psi)
    return SAEMRun(p, rec.trace[:last + 1], stats, state.psi, rec.rates[:last],
                   rec.chain_means[:last], last < sched.total, ev.calls, rec.information())


def _maximize(stats, state, ev, p, lay, gamma, opts, annealing) -> Params:
    """Approximate the statistics with step ``gamma`` and maximize; refresh the state's
    likelihood (and means, when fixed-only parameters moved) at the new parameters."""
    em, spec = ev.em, lay.spec
    error_closed = em.nshape == 0
    f = ev.flat(state.f)
    stats.update(state.psi, residual_stat(em, spec.y, f, p.shape), gamma)
    p = mstep(stats, p, lay, spec.n, opts.anneal if annealing else None, error_closed)
    if lay.beta_fixed.size:
        p = numeric_fixed(ev, state.psi, p, lay, gamma, opts.optim_fun)
    if not error_closed:
        p = numeric_error(em, spec.y, f, p, gamma, opts.optim_fun)
    ev.set_params(p.beta, p.sigma, p.shape)
    state.f, state.ll = ev(state.psi)
    return p
