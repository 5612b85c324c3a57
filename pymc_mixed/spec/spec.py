"""ModelSpec: everything an estimator needs to know about a mixed model, and nothing more.

The spec is numeric and final: the formula has been read, missing values dropped, aliased
fixed-effects columns removed and random-effect terms sorted. Estimators and the PyTensor graph
read it; nothing downstream re-parses a formula.

Notation (Bates et al. 2015, lme4): the random effects are ``b = Lambda_theta u`` with spherical
``u ~ N(0, I_q)``. Term ``k`` has a grouping factor with ``l_k`` levels and ``p_k`` model-matrix
columns; its block of ``Lambda`` is ``I_{l_k} (x) T_k`` with ``T_k`` lower triangular, and
``theta`` lists the lower triangles of the ``T_k`` column by column, terms in decreasing order
of ``l_k`` (stable), exactly as lme4's ``getME(fit, "theta")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .mean import LinearMean
from .terms import ReTerm, term_factors

__all__ = ["ModelSpec"]


@dataclass
class ModelSpec:
    """A mixed model in numbers: response, fixed design, random-effect terms, family.

    Built by :func:`pymc_mixed.formula.build_spec`; read by every estimator and by
    :mod:`pymc_mixed.graph`.
    """

    formula: str
    response: str
    y: np.ndarray
    X: np.ndarray
    xnames: list[str]
    reterms: list[ReTerm]
    family: object  # pymc_mixed.families.Family
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    data: pd.DataFrame | None = None
    n_dropped: int = 0
    aliased: list[str] = field(default_factory=list)
    fixed_rhs: str = "1"
    trials: np.ndarray | None = None  # binomial: number of trials per observation
    fixed_design: object = field(default=None, repr=False)  # rebuilds X on new data
    fixed_keep: np.ndarray | None = field(default=None, repr=False)  # non-aliased columns
    offset_design: object = field(default=None, repr=False)  # rebuilds the offset on new data
    rows: object = field(default=None, repr=False)  # labels of the data's rows used (pd.Index)
    # the mean on the link scale as a function of (beta, b): X beta + Z b for formula models;
    # a nonlinear model puts its own mean object here (see pymc_mixed.spec.mean)
    mean: object = field(default_factory=LinearMean, repr=False)
    # the offset= argument as given (a column name, or an array over the rows kept), so that
    # update() can rebuild the model without adding the formula's offset() terms twice
    offset_arg: object = field(default=None, repr=False)
    data_name: str | None = None  # the summary's "Data:" line (a bundled data set's name)

    @property
    def is_gaussian_identity(self) -> bool:
        """True for a Gaussian response with identity link: theta is then relative to the
        residual SD (``Lambda = sigma T``, lme4's ``lmer`` and nlme), whatever the mean."""
        fam = self.family
        return fam.name == "gaussian" and getattr(fam, "link", "identity") == "identity"

    @property
    def kind(self) -> str:
        """The model kind estimators are registered under (:mod:`pymc_mixed.fit.base`):
        the mean's own kind when it declares one (``"nlmm"``), else ``"lmm"`` for a Gaussian
        response with identity link and ``"glmm"`` otherwise."""
        kind = getattr(self.mean, "kind", None)
        if kind:
            return kind
        return "lmm" if self.is_gaussian_identity else "glmm"

    @property
    def layout(self):
        """The one parameter layout ``(theta, beta[, dispersion])`` of this model."""
        from .params import ParamLayout

        return ParamLayout.of(self)

    def X_on(self, newdata: pd.DataFrame) -> np.ndarray:
        """The fixed-effects model matrix of new data (same columns as ``X``)."""
        X = self.fixed_design.on(newdata)
        return X if self.fixed_keep is None else X[:, self.fixed_keep]

    def offset_on(self, newdata: pd.DataFrame, offset=None):
        """The offset of new data: the formula's ``offset()`` terms re-evaluated on it, plus
        ``offset`` (or the fit's ``offset=`` column, re-read from ``newdata``)."""
        if self.offset_design is None:
            return 0.0 if offset is None else np.asarray(offset, dtype=float)
        return self.offset_design.on(newdata, offset)

    @property
    def n(self) -> int:
        """Number of observations."""
        return len(self.y)

    @property
    def response_name(self) -> str:
        """The response's variable name in DataTrees (ML and posterior alike): the column name
        when the response is one column, else ``"y"`` (for ``cbind(...)``, ``a / b``)."""
        name = str(self.response)
        return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) else "y"

    @property
    def p(self) -> int:
        """Number of fixed-effects columns."""
        return self.X.shape[1]

    @property
    def q(self) -> int:
        """Total number of random effects."""
        return sum(t.q for t in self.reterms)

    @property
    def ntheta(self) -> int:
        """Number of covariance parameters (the lower triangle of ``T``)."""
        return sum(t.ntheta for t in self.reterms)

    @property
    def theta_slices(self) -> list[slice]:
        """Where each term's elements sit in ``theta``."""
        out, start = [], 0
        for t in self.reterms:
            out.append(slice(start, start + t.ntheta))
            start += t.ntheta
        return out

    @property
    def theta_lower(self) -> np.ndarray:
        """Lower bounds of theta: 0 on diagonals of the ``T_k``, -inf elsewhere."""
        return np.concatenate([t.theta_lower for t in self.reterms])

    @property
    def theta_init(self) -> np.ndarray:
        """lme4's starting theta: every ``T_k = I``."""
        return np.concatenate([t.theta_init for t in self.reterms])

    @property
    def theta_names(self) -> list[str]:
        """lme4-style names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ..."""
        names = []
        for t in self.reterms:
            rows, cols = t.tril_index
            for i, j in zip(rows, cols):
                if i == j:
                    names.append(f"{t.group}.{t.cnames[i]}")
                else:
                    names.append(f"{t.group}.{t.cnames[i]}.{t.cnames[j]}")
        return names

    def Ts(self, theta: np.ndarray) -> list[np.ndarray]:
        """The per-term relative covariance factors for a full ``theta``."""
        return term_factors(self.reterms, theta)

    def b_blocks(self, theta: np.ndarray, u: np.ndarray) -> list[np.ndarray]:
        """Per term, ``b_k = u_k T_k'`` as a (levels, p) array, from the spherical ``u``."""
        out, start = [], 0
        for t, T in zip(self.reterms, self.Ts(theta)):
            out.append(u[start:start + t.q].reshape(t.nlevels, t.p) @ T.T)
            start += t.q
        return out

    def Zb(self, b_blocks: list[np.ndarray]) -> np.ndarray:
        """The random-effects part of the linear predictor, ``Z b``, for these observations."""
        out = np.zeros(self.n)
        for t, b in zip(self.reterms, b_blocks):
            out += np.einsum("ij,ij->i", t.z, b[t.refs])
        return out

    @property
    def prior_weights(self) -> np.ndarray:
        """Prior weights (ones when none were given)."""
        return np.ones(self.n) if self.weights is None else self.weights

    @property
    def offset_or_zero(self) -> np.ndarray:
        """The offset (zeros when none was given)."""
        return np.zeros(self.n) if self.offset is None else self.offset
