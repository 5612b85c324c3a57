"""The text of a result: lme4's ``summary(fit)`` layout (header, formula, data, fit statistics,
scaled residuals, random effects, fixed effects with their tests and correlations, notes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SummaryText"]


def _abbrev(name: str, width: int = 6) -> str:
    """A short column label, as R's ``abbreviate``: lower-case vowels after the first
    character go first."""
    if len(name) <= width:
        return name
    short = name[0] + "".join(c for c in name[1:] if c not in "aeiou")
    return short[:width]


class SummaryText:
    """Mixin of :class:`~pymc_mixed.results.MixedModelResult`: ``summary()`` and its parts
    (kind-specific results override ``_header`` and ``_residual_lines``)."""

    # -- text -------------------------------------------------------------------------------------------
    def _header(self) -> str:
        return "Mixed model fit"

    def _fit_stats_line(self) -> str:
        if self.method == "REML":  # lme4 prints only the criterion for REML fits
            return f"REML criterion at convergence: {self.objective:.1f}"
        stats = pd.DataFrame([[self.aic, self.bic, self.loglik, self.objective,
                               self.nobs - self.dof]],
                             columns=["AIC", "BIC", "logLik",
                                      "REMLcrit" if self.method == "REML" else "deviance",
                                      "df.resid"])
        return stats.to_string(index=False, float_format=lambda v: f"{v:.1f}")

    def summary(self) -> str:
        """A summary in the style of lme4's ``summary(fit)``."""
        fe = pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se})
        fe[self._stat_name] = fe["Estimate"] / fe["Std. Error"]
        if self._stat_name == "z value":
            from scipy.stats import norm

            fe["Pr(>|z|)"] = 2 * norm.sf(np.abs(fe["z value"]))
        groups = ", ".join(f"{t.group}, {t.nlevels}" for t in self.spec.reterms)
        parts = [
            self._header(),
            f"Formula: {self.spec.formula}",
            *([f"   Data: {self.spec.data_name}"] if self.spec.data_name else []),
            "",
            self._fit_stats_line(),
            "",
            *self._residual_lines(),
            "Random effects:",
            str(self.varcorr),
            f"Number of obs: {self.nobs}, groups:  {groups}",
            "",
            "Fixed effects:",
            fe.to_string(float_format=lambda v: f"{v:.4g}" if abs(v) < 1e-3 else f"{v:.4f}"),
            *self._correlation_lines(),
        ]
        notes = []
        if self.spec.n_dropped:
            notes.append(f"{self.spec.n_dropped} rows with missing values were dropped")
        if self.spec.aliased:
            notes.append("aliased columns dropped: " + ", ".join(self.spec.aliased))
        if self.issingular():
            notes.append("boundary (singular) fit: see help('isSingular')")
        if not self.converged:
            notes.append(f"optimizer did not converge: {self.optsum.returnvalue}")
        if notes:
            parts += [""] + [f"Note: {n}" for n in notes]
        return "\n".join(parts)

    _stat_name = "t value"

    def _correlation_lines(self, max_p: int = 12) -> list[str]:
        """lme4's "Correlation of Fixed Effects" (lower triangle, abbreviated names)."""
        p = self.spec.p
        if p < 2 or p > max_p:
            return []
        V = np.asarray(self._vcov_beta)
        d = np.sqrt(np.diag(V))
        C = V / np.outer(d, d)
        names = list(self.spec.xnames)
        w = max(len(n) for n in names) + 1
        rows = [" " * w + " ".join(f"{_abbrev(n):>6}" for n in names[:-1])]
        for i in range(1, p):
            vals = " ".join(f"{C[i, j]:6.3f}" for j in range(i))
            rows.append(f"{names[i]:<{w}}{vals}")
        return ["", "Correlation of Fixed Effects:", *rows]

    def _residual_lines(self) -> list[str]:
        """lme4's "Scaled residuals" block (LMMs); GLMM results may override."""
        if self.sigma is None:
            return []
        scaled = self.residuals * np.sqrt(self.spec.prior_weights) / self.sigma
        q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
        row = pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"])
        return ["Scaled residuals:", row.to_string(index=False,
                                                   float_format=lambda v: f"{v:.4f}"), ""]

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()
