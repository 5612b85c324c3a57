"""Result of a linear mixed model fitted by exact ML or REML (:func:`pymc_mixed.fit.pls.fit_lmm`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .base import MixedModelResult

__all__ = ["LMMResult"]


@dataclass(eq=False, repr=False)
class LMMResult(MixedModelResult):
    """A linear mixed model fitted by exact ML or REML.

    Beyond :class:`~pymc_mixed.results.MixedModelResult`: ``REML`` and ``response_refitter``,
    ``() -> refit`` with ``refit(y, theta0, step) -> (theta, beta, sigma)`` refitting the same
    model to a new response with the factor's structure kept (the parametric bootstrap).
    """

    REML: bool = False
    response_refitter: Callable | None = None

    def _header(self) -> str:
        how = "REML" if self.REML else "maximum likelihood"
        return f"Linear mixed model fit by {how}"
