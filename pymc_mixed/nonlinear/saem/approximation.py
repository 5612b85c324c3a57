"""Stochastic approximation of the sufficient statistics, the step sizes and the phases.

With the centred parameterization (see :mod:`.layout`) the complete-data model is an
exponential family whose sufficient statistics are

    s1_i = psi_i (G, k),   s2 = sum_i psi_i psi_i' (k, k),   sres = sum_obs ((y - f) / g)^2

(averaged over the chains). Each iteration moves them by ``s += gamma (s_new - s)``:
``gamma = 1`` in the annealing and full-step phases, ``1 / (k - K1 - K2)`` in the last, which
makes the estimates converge (Delyon, Lavielle & Moulines 1999). The last phase also averages
the samples themselves: conditional means and covariances of each group's parameters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Schedule", "SuffStats"]


class Schedule:
    """Phase and step size of every iteration (nlmefitsa's ``NIterations``, ``NBurnIn``)."""

    def __init__(self, n_iterations, n_burn_in: int):
        self.K1, self.K2, self.K3 = n_iterations
        self.total = self.K1 + self.K2 + self.K3
        self.burn = int(n_burn_in)

    def phase(self, it: int) -> int:
        """1 (annealing), 2 (full step) or 3 (decreasing step) for iteration ``it`` (from 0)."""
        return 1 if it < self.K1 else (2 if it < self.K1 + self.K2 else 3)

    def gamma(self, it: int) -> float:
        """The step size; 0 during burn-in (no update)."""
        if it < self.burn:
            return 0.0
        k = it - self.K1 - self.K2
        return 1.0 if k < 0 else 1.0 / (k + 1)


class SuffStats:
    """The approximated statistics and the last phase's running moments of the samples."""

    def __init__(self, G: int, k: int):
        self.s1 = np.zeros((G, k))
        self.s2 = np.zeros((k, k))
        self.sres = 0.0
        self.m1 = np.zeros((G, k))
        self.m2 = np.zeros((G, k, k))
        self.nm = 0

    def update(self, psi: np.ndarray, sres_new: float, gamma: float) -> None:
        """``s += gamma (s_new - s)`` with the chains' averages of ``psi`` (C, G, k)."""
        C = psi.shape[0]
        self.s1 += gamma * (psi.mean(axis=0) - self.s1)
        self.s2 += gamma * (np.einsum("cga,cgb->ab", psi, psi) / C - self.s2)
        self.sres += gamma * (sres_new - self.sres)

    def accumulate(self, psi: np.ndarray) -> None:
        """Add the samples of one last-phase iteration to the conditional moments."""
        self.m1 += psi.sum(axis=0)
        self.m2 += np.einsum("cga,cgb->gab", psi, psi)
        self.nm += psi.shape[0]

    def conditional(self) -> tuple[np.ndarray, np.ndarray]:
        """Conditional means (G, k) and covariances (G, k, k) of each group's parameters."""
        mean = self.m1 / self.nm
        cov = self.m2 / self.nm - mean[:, :, None] * mean[:, None, :]
        return mean, cov
