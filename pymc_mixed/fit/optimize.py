"""Derivative-free minimization with an inspectable record (MixedModels.jl's ``optsum``)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConvergenceWarning, SingularFitWarning  # noqa: F401  (re-exported)
from .convergence import interior_point

__all__ = ["OptSummary", "minimize_bobyqa", "minimize_with_edge_check", "merge_optsums",
           "edge_restart",
           "ConvergenceWarning", "SingularFitWarning"]


_RETURN_CODES = {
    1: "SUCCESS", 2: "STOPVAL_REACHED", 3: "FTOL_REACHED", 4: "XTOL_REACHED",
    5: "MAXEVAL_REACHED", 6: "MAXTIME_REACHED", -1: "FAILURE", -2: "INVALID_ARGS",
    -3: "OUT_OF_MEMORY", -4: "ROUNDOFF_LIMITED", -5: "FORCED_STOP",
}


@dataclass
class OptSummary:
    """What the optimizer did: start, finish, evaluations, return code and the path taken."""

    initial: np.ndarray
    final: np.ndarray
    fmin: float
    feval: int
    optimizer: str
    returnvalue: str
    lower: np.ndarray
    ftol_rel: float
    ftol_abs: float
    xtol_abs: float
    maxfeval: int
    seconds: float
    fitlog: list = field(default_factory=list, repr=False)
    # lme4's checkConv at the optimum (pymc_mixed.fit.convergence): finite-difference gradient
    # and Hessian in the free coordinates, and what the check found
    gradient: np.ndarray | None = field(default=None, repr=False)
    hessian: np.ndarray | None = field(default=None, repr=False)
    messages: list = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.returnvalue in ("SUCCESS", "FTOL_REACHED", "XTOL_REACHED", "STOPVAL_REACHED")

    def __str__(self) -> str:
        rows = [
            ("Initial parameter vector", np.array2string(self.initial, precision=6)),
            ("Lower bounds", np.array2string(self.lower, precision=3)),
            ("Optimizer", self.optimizer),
            ("ftol_rel / ftol_abs / xtol_abs", f"{self.ftol_rel:g} / {self.ftol_abs:g} / "
                                               f"{self.xtol_abs:g}"),
            ("maxfeval", str(self.maxfeval)),
            ("Final parameter vector", np.array2string(self.final, precision=6)),
            ("Final objective value", f"{self.fmin:.10g}"),
            ("Function evaluations", str(self.feval)),
            ("Return code", self.returnvalue),
            ("Seconds", f"{self.seconds:.4g}"),
        ]
        if self.gradient is not None and len(self.gradient):
            rows.append(("Gradient at the optimum", np.array2string(self.gradient,
                                                                    precision=3)))
        rows += [("Convergence check", m) for m in self.messages]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def minimize_bobyqa(f, x0, lower, upper=None, *, initial_step=None, ftol_rel=1e-12,
                    ftol_abs=1e-8, xtol_abs=1e-10, maxfeval=100_000,
                    optimizer="LN_BOBYQA", keep_log=True) -> OptSummary:
    """Minimize ``f`` over a box with NLopt's BOBYQA (or another LN_ algorithm).

    Non-finite objective values are treated as +inf-like large values so the optimizer backs
    off, instead of stopping with NaN. A stop that is not a convergence (evaluation limit,
    round-off) is reported in the summary and as a :class:`ConvergenceWarning`.
    """
    import nlopt

    x0 = np.asarray(x0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    k = len(x0)
    log: list = []
    best = [np.inf]

    def objective(x, grad):
        val = float(f(x))
        if not np.isfinite(val):
            val = 1e300 if not np.isfinite(best[0]) else abs(best[0]) * 10 + 1e10
        best[0] = min(best[0], val)
        if keep_log:
            log.append((x.copy(), val))
        return val

    opt = nlopt.opt(getattr(nlopt, optimizer), k)
    opt.set_min_objective(objective)
    opt.set_lower_bounds(lower)
    if upper is not None:
        opt.set_upper_bounds(np.asarray(upper, dtype=float))
    opt.set_ftol_rel(ftol_rel)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxfeval)
    if initial_step is not None:
        opt.set_initial_step(np.asarray(initial_step, dtype=float))
    t0 = time.perf_counter()
    try:
        xmin = opt.optimize(x0)
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        code = -4
        xmin = min(log, key=lambda r: r[1])[0] if log else x0
    seconds = time.perf_counter() - t0
    fmin = float(f(xmin))
    summary = OptSummary(initial=x0, final=np.asarray(xmin), fmin=fmin,
                         feval=opt.get_numevals(), optimizer=optimizer,
                         returnvalue=_RETURN_CODES.get(code, str(code)), lower=lower,
                         ftol_rel=ftol_rel, ftol_abs=ftol_abs, xtol_abs=xtol_abs,
                         maxfeval=maxfeval, seconds=seconds, fitlog=log)
    if not summary.converged:
        warnings.warn(f"optimizer {optimizer} stopped with {summary.returnvalue} after "
                      f"{summary.feval} evaluations; the fit may not have converged",
                      ConvergenceWarning, stacklevel=3)
    return summary


def merge_optsums(first: OptSummary, second: OptSummary) -> OptSummary:
    """One record of two optimizer runs, the second started where the first ended."""
    second.feval += first.feval
    second.fitlog = first.fitlog + second.fitlog
    second.initial = first.initial
    second.seconds += first.seconds
    second.messages = first.messages + second.messages
    return second


def edge_restart(opt: OptSummary, f, lower, rerun) -> OptSummary:
    """If :func:`~pymc_mixed.fit.convergence.interior_point` finds a lower point near the
    boundary estimate of ``opt``, ``rerun(x)`` from there and merge the two records."""
    start = interior_point(f, opt.final, opt.fmin, lower)
    if start is None:
        return opt
    new = rerun(start)
    return merge_optsums(opt, new) if new.fmin <= opt.fmin else opt


def minimize_with_edge_check(f, x0, lower, initial_step, **opts) -> OptSummary:
    """BOBYQA, then a boundary check (lme4's ``restart_edge``, made stronger): a parameter
    stuck at a lower bound of zero (a diagonal of some ``T_k``) is tried at several distances
    inside (:func:`~pymc_mixed.fit.convergence.interior_point`); if one is better, the
    optimization restarts from there."""
    lower = np.asarray(lower, dtype=float)
    opt = minimize_bobyqa(f, x0, lower, initial_step=initial_step, **opts)
    return edge_restart(opt, f, lower, lambda x: minimize_bobyqa(
        f, x, lower, initial_step=initial_step, **opts))
