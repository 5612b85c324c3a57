"""Warnings and errors every layer may raise (kept at the bottom so that results and post-fit
code can name them without importing an estimator)."""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "SingularFitWarning"]


class ConvergenceWarning(UserWarning):
    """The optimizer stopped without meeting its convergence criteria."""


class SingularFitWarning(UserWarning):
    """An estimated random-effects covariance matrix is singular (lme4's "boundary (singular)
    fit"): a variance at zero or a correlation at +-1. The fit is valid; the model is more
    complex than the data support."""
