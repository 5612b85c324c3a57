"""Variance components: covariance matrices of the random effects and the residual (VarCorr)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["VarCorr", "term_covariances"]


def term_covariances(spec, theta: np.ndarray, scale: float) -> list[np.ndarray]:
    """``scale^2 * T_k T_k'`` for every term: the covariance of one level's random effects."""
    return [scale**2 * T @ T.T for T in spec.Ts(theta)]


@dataclass
class VarCorr:
    """Estimated covariance of the random effects, one block per term, plus the residual.

    ``as_frame()`` gives lme4's ``as.data.frame(VarCorr(fit))`` layout (grp, var1, var2, vcov,
    sdcor); indexing by a grouping-factor name gives that factor's covariance matrix.
    """

    groups: list[str]
    cnames: list[list[str]]
    covs: list[np.ndarray]
    sigma: float | None  # residual standard deviation; None for families without one

    def __getitem__(self, group: str) -> pd.DataFrame:
        for g, names, c in zip(self.groups, self.cnames, self.covs):
            if g == group:
                return pd.DataFrame(c, index=names, columns=names)
        raise KeyError(f"no random-effects term for grouping factor {group!r}; "
                       f"terms: {', '.join(self.groups)}")

    def as_frame(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(VarCorr(fit))``: grp, var1, var2, vcov, sdcor."""
        rows = []
        for g, names, c in zip(self.groups, self.cnames, self.covs):
            sd = np.sqrt(np.diag(c))
            for i, name in enumerate(names):
                rows.append((g, name, None, c[i, i], sd[i]))
            for j in range(len(names)):
                for i in range(j + 1, len(names)):
                    denom = sd[i] * sd[j]
                    rows.append((g, names[j], names[i], c[i, j],
                                 c[i, j] / denom if denom > 0 else np.nan))
        if self.sigma is not None:
            rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def __str__(self) -> str:
        lines = [f" {'Groups':<10} {'Name':<12} {'Variance':>10} {'Std.Dev.':>9}  Corr"]
        for g, names, c in zip(self.groups, self.cnames, self.covs):
            sd = np.sqrt(np.diag(c))
            for i, name in enumerate(names):
                corr = ""
                if i > 0:
                    corr = " ".join(f"{(c[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan):5.2f}"
                                    for j in range(i))
                lines.append(f" {g if i == 0 else '':<10} {name:<12} {c[i, i]:>10.4g} "
                             f"{sd[i]:>9.4g}  {corr}".rstrip())
        if self.sigma is not None:
            lines.append(f" {'Residual':<10} {'':<12} {self.sigma**2:>10.4g} {self.sigma:>9.4g}")
        return "\n".join(lines)

    __repr__ = __str__
