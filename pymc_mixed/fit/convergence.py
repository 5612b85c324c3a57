"""Checks of an optimum after the optimizer stopped (issue 7, item 6).

* :func:`interior_point`: an estimate on the boundary (a diagonal of some ``T_k`` at zero) is a
  stationary point of the objective whatever the data (for a scalar term the Laplace and the
  profiled deviance are even in ``theta``), so a gradient-based stop there says nothing. Points
  at several distances inside are tried; the fit restarts from the best if it is lower.
* :func:`check_convergence`: lme4's ``checkConv``. Gradient and Hessian by central differences
  (lme4's ``deriv12``, step 1e-4) in the coordinates not on a bound; the scaled gradient
  ``solve(chol(H), g)`` (the smaller of it and the raw gradient, per component, as lme4) above
  ``2e-3`` or a Hessian that is not positive definite is recorded in ``optsum`` and raised as a
  :class:`ConvergenceWarning`. Like lme4 (``calc.derivs = NULL``) the check is skipped above
  10,000 observations, where it would cost more than the fit.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConvergenceWarning

__all__ = ["interior_point", "check_convergence", "fd_derivatives",
           "GRAD_TOL", "DERIV_MAX_N"]

GRAD_TOL = 2e-3          # lme4's check.conv.grad tolerance
DERIV_MAX_N = 10_000     # lme4 computes the derivatives only below this many observations
_INSIDE = (1e-4, 1e-3, 1e-2, 0.1, 0.3)


def interior_point(f, x, fmin: float, lower, steps=_INSIDE):
    """A point with the zero-bounded coordinates of ``x`` that sit on their bound moved inside
    (one at a time, each distance in ``steps``) whose objective is below ``fmin``; else None."""
    x = np.asarray(x, dtype=float)
    lower = np.asarray(lower, dtype=float)
    at = np.flatnonzero((lower == 0) & (x <= 0))
    best, fbest = None, fmin - 1e-9 * max(1.0, abs(fmin))
    for i in at:
        for s in steps:
            trial = x.copy()
            trial[i] = s
            val = f(trial)
            if np.isfinite(val) and val < fbest:
                best, fbest = trial, val
    return best


def fd_derivatives(f, x, h: float = 1e-4):
    """Gradient and Hessian of ``f`` at ``x`` by central differences with step ``h`` (lme4's
    ``deriv12``): ``2k + 2k(k-1)`` evaluations."""
    x = np.asarray(x, dtype=float)
    k = len(x)
    f0 = f(x)
    g, H = np.empty(k), np.empty((k, k))
    fp, fm = np.empty(k), np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h
        fp[i], fm[i] = f(x + e), f(x - e)
        g[i] = (fp[i] - fm[i]) / (2 * h)
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
    for i in range(k):
        for j in range(i):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h, h
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                 + f(x - ei - ej)) / (4 * h * h)
    f(x)  # leave the objective's state at x
    return g, H


def check_convergence(f, optsum, lower, nobs: int, derivs=None, what: str = "theta") -> None:
    """lme4's ``checkConv`` at ``optsum.final`` (module notes): fills ``optsum.gradient``,
    ``optsum.hessian`` and ``optsum.messages``, and warns. ``derivs`` may hand over
    ``(gradient, hessian)`` already computed (the same coordinates as ``optsum.final``)."""
    if nobs > DERIV_MAX_N and derivs is None:
        optsum.messages.append(f"derivatives not checked (more than {DERIV_MAX_N} "
                               "observations, as lme4)")
        return
    x = np.asarray(optsum.final, dtype=float)
    free = ~((np.asarray(lower) == 0) & (x <= 1e-8))  # coordinates on a bound: not checked
    if derivs is None:
        idx = np.flatnonzero(free)

        def fsub(z):
            full = x.copy()
            full[idx] = z
            return f(full)

        g, H = fd_derivatives(fsub, x[idx]) if len(idx) else (np.zeros(0), np.zeros((0, 0)))
    else:
        g, H = (np.asarray(d, dtype=float) for d in derivs)
        g, H = g[free], H[np.ix_(free, free)]
    optsum.gradient, optsum.hessian = g, H
    if not len(g):
        return
    msgs = []
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(H), g)
        mingrad = np.minimum(np.abs(scaled), np.abs(g))
        k = int(np.argmax(mingrad))
        if mingrad[k] > GRAD_TOL:
            msgs.append(f"Model failed to converge with max|grad| = {mingrad[k]:.3g} (tol = "
                        f"{GRAD_TOL:g}, component {k + 1} of the free {what})")
    except np.linalg.LinAlgError:
        ev = np.linalg.eigvalsh(0.5 * (H + H.T))
        neg = int(np.sum(ev <= 0))
        msgs.append(f"Model failed to converge: degenerate Hessian with {neg} non-positive "
                    f"eigenvalue(s) (smallest {ev.min():.3g})")
    for m in msgs:
        optsum.messages.append(m)
        warnings.warn(m, ConvergenceWarning, stacklevel=4)
