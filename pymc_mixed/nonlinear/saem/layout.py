"""The SAEM layout of a nonlinear spec: which parameters carry random effects, per group.

SAEM samples each group's *individual* random-effect parameters (saemix's ``phi``, centred):

    psi_i = mu_i + b_i,   mu_i = A_i beta   (k random parameters of group i),   b_i ~ N(0, Psi)

so the fixed effects of those parameters have a closed-form (GLS) M-step from the sufficient
statistics ``sum psi_i`` and ``sum psi_i psi_i'``. That needs, for every random parameter, a
random intercept (``z = 1``) and a fixed design constant within each group; the fixed design may
vary between groups, so covariates on parameters with random effects are fine (nlmefitsa
forbids them). Parameters without a random effect get a numeric M-step.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["SAEMLayout"]


class SAEMLayout:
    """Index bookkeeping between ``(chains, G, k)`` samples, ``beta`` and the ``(n, P)`` phi."""

    def __init__(self, spec):
        groups = spec.groups
        if len(groups) != 1:
            raise NotImplementedError(
                f"SAEM handles one grouping factor for now; this model has {', '.join(groups)}")
        self.spec = spec
        t0 = spec.reterms[0]
        self.group = t0.group
        self.levels = list(t0.levels)
        self.refs = np.asarray(t0.refs)
        self.G = t0.nlevels
        self.n = spec.n
        self.param_of = np.array(sum(spec.term_params, []), dtype=int)     # (k,)
        self.k = len(self.param_of)
        self.names = [spec.params[j] for j in self.param_of]
        for t in spec.reterms:
            if not np.all(t.z == 1.0):
                raise NotImplementedError(
                    f"SAEM needs random intercepts on parameters; term {t.cnames} has a "
                    "covariate in its random part. Put the covariate in the fixed part instead")
        if len(set(self.param_of)) != self.k:
            raise ValueError("a parameter has two random effects on the same grouping factor")
        starts = np.cumsum([0] + [t.p for t in spec.reterms])
        self.blocks = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]
        mask = np.zeros((self.k, self.k), bool)
        for sl in self.blocks:
            mask[sl, sl] = True
        self.cov_mask = mask            # Psi's structural nonzeros (block diagonal)
        self.fixed_only = [j for j in range(spec.P) if j not in set(self.param_of)]
        self.Ag = self._group_designs()                                     # (G, k, p)
        self.beta_random = np.flatnonzero(np.abs(self.Ag).sum(axis=(0, 1)) > 0)
        self.beta_fixed = np.array([c for j in self.fixed_only
                                    for c in range(spec.p)[spec.fixed[j].cols]], dtype=int)
        self.S = sp.csr_matrix((np.ones(self.n), (self.refs, np.arange(self.n))),
                               shape=(self.G, self.n))
        self.nobs = np.bincount(self.refs, minlength=self.G)

    def _group_designs(self) -> np.ndarray:
        spec = self.spec
        Ag = np.zeros((self.G, self.k, spec.p))
        first = np.zeros(self.G, dtype=int)
        first[self.refs[::-1]] = np.arange(self.n)[::-1]     # each group's first row
        for c, j in enumerate(self.param_of):
            fp = spec.fixed[j]
            A = fp.A
            if not np.allclose(A, A[first][self.refs]):
                raise NotImplementedError(
                    f"SAEM needs the fixed part of {fp.param!r} ({fp.rhs!r}) constant within "
                    f"each level of {self.group!r}: its random effect is per level")
            Ag[:, c, fp.cols] = A[first]
        return Ag

    # -- maps ------------------------------------------------------------------------------
    def mu(self, beta: np.ndarray) -> np.ndarray:
        """(G, k) population values of the random parameters."""
        return self.Ag @ beta

    def phi(self, psi: np.ndarray, phi_fixed: np.ndarray) -> np.ndarray:
        """(S, n, P) per-observation parameters from (S, G, k) samples and ``A beta`` (n, P)."""
        out = np.repeat(phi_fixed[None], psi.shape[0], axis=0)
        out[:, :, self.param_of] = psi[:, self.refs, :]
        return out

    def group_sum(self, x: np.ndarray) -> np.ndarray:
        """Sum (S, n) per observation into (S, G) per group."""
        return np.asarray((self.S @ x.T).T)

    def psi_to_b(self, psi: np.ndarray, beta: np.ndarray) -> list[np.ndarray]:
        """Per-term (G, p_t) random effects ``b = psi - mu`` (the spec's ``b_blocks``)."""
        b = psi - self.mu(beta)
        return [b[:, sl] for sl in self.blocks]

    def theta(self, Psi: np.ndarray, sigma: float) -> np.ndarray:
        """lme4's theta (relative to ``sigma``) of a block-diagonal Psi."""
        out = []
        for t, sl in zip(self.spec.reterms, self.blocks):
            T = np.linalg.cholesky(Psi[sl, sl]) / sigma
            out.append(T[t.tril_index])
        return np.concatenate(out)
