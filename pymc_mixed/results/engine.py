"""What work after the fit needs from the estimator that made a result, handed over as values.

Profiles, case-deletion refits, ``refit(y)``, ``update``/``drop1`` and the GLMM bootstrap
re-evaluate a model's objective or fit a changed model (a new response, observations left out,
a fixed-effects column moved into the offset). The estimator hands the result a
:class:`FitEngine` holding the callables for that, so :mod:`pymc_mixed.postfit` reaches the
estimators through the result and imports none (``tests/test_architecture.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["FitEngine"]


@dataclass(eq=False)
class FitEngine:
    """The estimator's hand-over for refits (module-level callables, so results pickle).

    fit : ``(spec, **options) -> result``: fit ``spec`` with the estimator and settings of this
        result (``REML``, ``nAGQ``); options override them (``fit(spec, REML=False)``) or add
        a start (``theta0=...``).
    objective : ``(spec, **options)`` -> the estimator's objective for a model of this kind.
        LMM: ``objective(spec, REML)``, theta -> profiled criterion, its blocked factor as
        ``.system`` (:class:`~pymc_mixed.linalg.BlockedSystem`). GLMM:
        ``objective(spec, tol=...) -> (data, obj)``, ``obj(x)`` the Laplace/AGQ objective in
        ``(theta, beta[, log dispersion])`` (``obj.gradient()``, ``obj.has_gradient``,
        ``obj.pirls.u``) and ``data.resp`` the prepared response it reads (swap it to refit a
        new response).
    minimize : the estimator's bounded derivative-free minimizer,
        ``minimize(f, x0, lower, upper=None, initial_step=..., ftol_rel=..., ...)`` -> a record
        with ``fmin`` and ``final`` (:func:`pymc_mixed.fit.optimize.minimize_bobyqa`).
    interior_point : ``(f, x, fmin, lower) -> x_inside | None``, the estimator's boundary check
        (:func:`pymc_mixed.fit.convergence.interior_point`): refits that end on a variance of
        zero check, as the fit did, that no nearby interior point is better.
    """

    fit: Callable
    objective: Callable
    minimize: Callable
    interior_point: Callable | None = None
