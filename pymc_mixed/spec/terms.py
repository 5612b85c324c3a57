"""Random-effect terms: one grouping factor and the model-matrix columns that vary over it.

Notation (Bates et al. 2015, lme4): term ``k`` has a grouping factor with ``l_k`` levels and
``p_k`` columns; its block of ``Lambda`` is ``I_{l_k} (x) T_k`` with ``T_k`` lower triangular,
and ``theta`` lists the lower triangles of the ``T_k`` column by column, terms in decreasing
order of ``l_k`` (stable), exactly as lme4's ``getME(fit, "theta")``.

Several terms can share one grouping factor (``(1 + x || g)`` makes two): :func:`factor_groups`
is the one place that merges them, for results, DataTrees, posteriors and draws alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ReTerm", "term_factors", "factor_groups", "block_diag", "coef_dim", "corr_dims",
           "level_dim", "RESERVED_DIMS"]


@dataclass
class ReTerm:
    """One random-effects term: a grouping factor and the columns that vary over its levels.

    Attributes
    ----------
    group : name of the grouping factor (``"Subject"``, ``"cask:batch"``).
    refs : (n,) int array, the level of each observation (0-based).
    levels : level labels, in the order of ``refs``.
    z : (n, p) model matrix of the term (``[1, Days]`` for ``(1 + Days | Subject)``).
    cnames : names of the columns of ``z`` (lme4's ``cnms``: ``"(Intercept)"``, ``"Days"``).
    """

    group: str
    refs: np.ndarray
    levels: list[str]
    z: np.ndarray
    cnames: list[str]
    design: object = field(default=None, repr=False)  # rebuilds z on new data (predict)
    level_keys: list | None = field(default=None, repr=False)  # level values, matched by predict

    @property
    def nlevels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def p(self) -> int:
        """Number of columns (random effects per level)."""
        return self.z.shape[1]

    @property
    def q(self) -> int:
        """Number of random effects of the term, ``nlevels * p``."""
        return self.nlevels * self.p

    @property
    def columns(self) -> np.ndarray:
        """(n, p) column of each observation's random effects within the term's ``q`` columns
        (level-major: level ``j`` owns ``j*p .. j*p + p - 1``)."""
        return self.refs[:, None] * self.p + np.arange(self.p)[None, :]

    @property
    def ntheta(self) -> int:
        """Number of covariance parameters (the lower triangle of ``T``)."""
        return self.p * (self.p + 1) // 2

    @property
    def tril_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each theta element in ``T``: lower triangle, column-major (lme4)."""
        rows, cols = [], []
        for j in range(self.p):
            for i in range(j, self.p):
                rows.append(i)
                cols.append(j)
        return np.array(rows), np.array(cols)

    @property
    def theta_lower(self) -> np.ndarray:
        """Lower bounds: 0 on the diagonal of ``T`` (identifiability), -inf below it."""
        rows, cols = self.tril_index
        return np.where(rows == cols, 0.0, -np.inf)

    @property
    def theta_init(self) -> np.ndarray:
        """lme4's start: ``T = I``."""
        rows, cols = self.tril_index
        return (rows == cols).astype(float)

    def T(self, theta_k: np.ndarray) -> np.ndarray:
        """The ``p x p`` lower-triangular relative covariance factor for this term's theta."""
        out = np.zeros((self.p, self.p))
        out[self.tril_index] = theta_k
        return out

    def __repr__(self) -> str:
        return f"ReTerm({' + '.join(self.cnames)} | {self.group}: {self.nlevels} levels)"


def term_factors(reterms, theta: np.ndarray) -> list[np.ndarray]:
    """The lower-triangular ``T_k`` of every term, filled from ``theta`` in lme4's order."""
    out, start = [], 0
    for t in reterms:
        out.append(t.T(theta[start:start + t.ntheta]))
        start += t.ntheta
    return out




def factor_groups(reterms) -> dict[str, dict]:
    """The terms of each grouping factor, merged: ``{group: {"terms": [k, ...], "cnames": [...],
    "levels": [...], "correlated": bool}}`` in order of first appearance. Terms on one factor
    (``(1 + x || g)``) form one block-diagonal covariance whose columns are theirs in turn."""
    out: dict[str, dict] = {}
    for k, t in enumerate(reterms):
        g = out.setdefault(t.group, {"terms": [], "cnames": [], "levels": list(t.levels),
                                     "correlated": False})
        g["terms"].append(k)
        g["cnames"] = g["cnames"] + list(t.cnames)
        g["correlated"] = g["correlated"] or t.p > 1
    return out


def block_diag(blocks: list[np.ndarray]) -> np.ndarray:
    """Stack ``(..., k_i, k_i)`` blocks into one ``(..., K, K)`` block-diagonal array (the
    covariance of a grouping factor from those of its terms)."""
    k = sum(b.shape[-1] for b in blocks)
    out = np.zeros(blocks[0].shape[:-2] + (k, k))
    i = 0
    for b in blocks:
        out[..., i:i + b.shape[-1], i:i + b.shape[-1]] = b
        i += b.shape[-1]
    return out


# dimension names the DataTrees and PyMC models use themselves (ArviZ's chain/draw/sample,
# the observations, the fixed effects, theta): a grouping factor with one of these names gets
# its levels on ``<name>_level`` instead, so ``(1 | chain)`` or ``(1 | coef)`` simply work
RESERVED_DIMS = frozenset({"chain", "draw", "sample", "obs", "coef", "coef_bis", "theta_par",
                           "__obs__", "beta", "theta", "sigma", "se_beta", "vcov_beta", "X"})


def level_dim(group: str) -> str:
    """Name of the dimension of a grouping factor's levels (DataTrees, PyMC coords): the
    factor's name, or ``<name>_level`` where that name is one of :data:`RESERVED_DIMS`."""
    return f"{group}_level" if group in RESERVED_DIMS else group


def coef_dim(group: str) -> str:
    """Name of the dimension of a grouping factor's random-effect columns (DataTrees)."""
    return f"{group}_coef"


def corr_dims(group: str) -> tuple[str, str]:
    """Names of the two dimensions of a grouping factor's correlation matrix."""
    return f"{group}_coef", f"{group}_coef_bis"
