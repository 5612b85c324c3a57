"""One parameter layout for every estimator and every inference after the fit.

The natural parameters of a mixed model are stacked as ``x = (theta, beta[, dispersion])``:
lme4's theta order, the fixed effects in column order, then the family's dispersion (the
residual SD ``sigma`` of a linear mixed model, the gamma ``phi``, the negative-binomial size) on
its natural scale. Estimators that optimize the dispersion on the log scale convert at their
own boundary (:meth:`ParamLayout.to_log` / :meth:`ParamLayout.from_log`); the normal
approximation, the parametric bootstrap and the Hessian-based standard errors all read this
layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ParamLayout"]


@dataclass(frozen=True)
class ParamLayout:
    """Order, names, bounds and packing of ``x = (theta, beta[, dispersion])``."""

    theta_names: tuple
    xnames: tuple
    dispersion_name: str | None  # None when the family has no free dispersion
    theta_lower: np.ndarray

    @classmethod
    def of(cls, spec) -> "ParamLayout":
        """The layout of a :class:`~pymc_mixed.spec.ModelSpec`."""
        fam = spec.family
        disp = None
        if getattr(fam, "has_dispersion", False):
            disp = getattr(fam, "dispersion_name", None) or "sigma"
        return cls(tuple(spec.theta_names), tuple(spec.xnames), disp,
                   np.asarray(spec.theta_lower, dtype=float))

    @property
    def ntheta(self) -> int:
        return len(self.theta_names)

    @property
    def p(self) -> int:
        return len(self.xnames)

    @property
    def has_dispersion(self) -> bool:
        return self.dispersion_name is not None

    @property
    def size(self) -> int:
        """Length of ``x``."""
        return self.ntheta + self.p + int(self.has_dispersion)

    @property
    def names(self) -> list[str]:
        """lme4-style names of the elements of ``x``."""
        extra = [self.dispersion_name] if self.has_dispersion else []
        return list(self.theta_names) + list(self.xnames) + extra

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of ``x``: 0 for the diagonal of each ``T_k`` and the dispersion."""
        extra = [0.0] if self.has_dispersion else []
        return np.concatenate([self.theta_lower, np.full(self.p, -np.inf), extra])

    @property
    def dispersion_index(self) -> int | None:
        """Position of the dispersion in ``x`` (None without one)."""
        return self.size - 1 if self.has_dispersion else None

    def pack(self, theta, beta, dispersion=None) -> np.ndarray:
        """``(theta, beta[, dispersion]) -> x``."""
        parts = [np.asarray(theta, dtype=float), np.asarray(beta, dtype=float)]
        if self.has_dispersion:
            if dispersion is None:
                raise ValueError(f"the model has a dispersion parameter "
                                 f"({self.dispersion_name}); pass its value")
            parts.append([float(dispersion)])
        return np.concatenate(parts)

    def unpack(self, x):
        """``x -> (theta, beta, dispersion or None)``; ``x`` may carry leading dimensions."""
        x = np.asarray(x, dtype=float)
        nt, p = self.ntheta, self.p
        disp = x[..., nt + p] if self.has_dispersion else None
        if disp is not None and disp.ndim == 0:
            disp = float(disp)
        return x[..., :nt], x[..., nt:nt + p], disp

    def to_log(self, x) -> np.ndarray:
        """``x`` with the dispersion on the log scale (how the GLMM optimizer searches)."""
        x = np.array(x, dtype=float)
        if self.has_dispersion:
            x[..., -1] = np.log(x[..., -1])
        return x

    def from_log(self, x) -> np.ndarray:
        """Inverse of :meth:`to_log`."""
        x = np.array(x, dtype=float)
        if self.has_dispersion:
            x[..., -1] = np.exp(x[..., -1])
        return x
