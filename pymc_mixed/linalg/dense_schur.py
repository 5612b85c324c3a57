"""A dense-Schur variant of the blocked Cholesky factor, for PIRLS on small and medium models.

PIRLS changes the weights at every iteration, so what matters is the cost of forming the
weighted cross-products, not only of factoring them. :class:`pymc_mixed.linalg.BlockedSystem`
keeps every cross-product sparse, which scales to InstEval-sized problems; this class keeps the
coupling block ``A21`` (rest columns x levels of the first term) dense, which is much cheaper
per update whenever ``m * q1`` is modest (VerbAgg: 24 x 316). Both have the same interface
(``set_weights``, ``update``, ``logdet``, ``pwrss``, ``solve``, ``condvar_u``, ``Rxx``) and
solve the same system

    [ Lambda'Z'WZ Lambda + I    Lambda'Z'WX ] [u]   [ Lambda'Z'W r ]
    [ X'WZ Lambda               X'WX        ] [b] = [ X'W r        ]

with the columns split as in :mod:`pymc_mixed.linalg.blocked`: block 1 is the term with most
levels (block diagonal ``L11``), block 2 ("rest", ``m = qr + p`` columns) the other terms and
``X``. All weighted cross-products come from one ``bincount`` (the per-level blocks) and one
sparse-times-dense product (everything that involves ``X`` or ``r``); their sparsity is fixed
at construction.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack, solve_triangular

from ..spec import term_factors

__all__ = ["DenseSchurSystem", "make_system"]


def make_system(reterms, X, y, w=None, dense_limit: float = 4e7):
    """The faster of the two kernels for this model: dense Schur when ``m^2 q1`` is small
    enough (one update costs about that many flops), else the sparse BlockedSystem."""
    from .blocked import BlockedSystem

    t1 = reterms[0]
    m = sum(t.q for t in reterms[1:]) + X.shape[1]
    if m * m * t1.q <= dense_limit and m * t1.q <= 5e6:
        return DenseSchurSystem(reterms, X, y, w)
    return BlockedSystem(reterms, X, y, w)


class DenseSchurSystem:
    """Factor of the PLS system with a dense coupling block; see the module notes.

    Parameters mirror :class:`~pymc_mixed.linalg.BlockedSystem`: ``reterms`` (the first has
    the most levels), ``X`` (n, p; may have zero columns), working response ``y`` and weights.
    """

    def __init__(self, reterms, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None):
        self.terms = list(reterms)
        self.t1 = self.terms[0]
        self.rest = self.terms[1:]
        self.n = len(y)
        self._X = np.ascontiguousarray(X, dtype=float)
        self.p = self._X.shape[1]
        self.l1, self.p1, self.q1 = self.t1.nlevels, self.t1.p, self.t1.q
        self.qr = sum(t.q for t in self.rest)
        self.m = self.qr + self.p
        self.scalar = all(t.p == 1 for t in self.terms)
        self._build_structure()
        self.set_weights(np.ones(self.n) if w is None else w, y)

    # -- structure -----------------------------------------------------------------------------
    def _build_structure(self) -> None:
        n, q1, qr, p1 = self.n, self.q1, self.qr, self.p1
        t1 = self.t1
        obs = np.arange(n)
        # one flat buffer: [A11 (l1 p1 p1) | A21 terms (qr q1) | A22 terms (qr qr)], filled by
        # one bincount. Each block lists, per observation, ``k`` target positions and products
        # of z values; an observation's weight is repeated ``k`` times (no gather if k = 1).
        idx, val, reps = [], [], []
        a, b = np.meshgrid(np.arange(p1), np.arange(p1), indexing="ij")
        a, b = a.ravel(), b.ravel()
        idx.append((t1.refs[:, None] * p1 * p1 + (a * p1 + b)[None, :]).ravel())
        val.append((t1.z[:, a] * t1.z[:, b]).ravel())
        reps.append(len(a))
        self._off11 = 0
        self._off21 = self.l1 * p1 * p1
        self._off22 = self._off21 + qr * q1
        offs, start = [], 0
        for t in self.rest:
            offs.append(start)
            start += t.q
        self._rest_offs = offs
        col1 = t1.refs[:, None] * p1 + np.arange(p1)[None, :]  # (n, p1)
        for t, off in zip(self.rest, offs):
            rowk = off + t.columns  # (n, pk)
            idx.append((self._off21 + rowk[:, :, None] * q1 + col1[:, None, :]).ravel())
            val.append((t.z[:, :, None] * t1.z[:, None, :]).ravel())
            reps.append(t.p * p1)
            for t2, off2 in zip(self.rest, offs):
                rowk2 = off2 + t2.refs[:, None] * t2.p + np.arange(t2.p)[None, :]
                idx.append((self._off22 + rowk[:, :, None] * qr + rowk2[:, None, :]).ravel())
                val.append((t.z[:, :, None] * t2.z[:, None, :]).ravel())
                reps.append(t.p * t2.p)
        self._bin_idx = np.concatenate(idx).astype(np.intp)
        self._bin_blocks = [(k, None if np.all(v == 1.0) else v) for k, v in zip(reps, val)]
        self._bin_len = self._off22 + qr * qr
        # Z' (all terms, q x n) as CSR, for everything that multiplies X or r
        blocks = []
        for t in self.terms:
            cols = t.columns
            blocks.append(sp.csr_matrix((t.z.ravel(), (np.repeat(obs, t.p), cols.ravel())),
                                        shape=(n, t.q)).T.tocsr())
        self._Zt = sp.vstack(blocks, format="csr")
        self._Xr = np.empty((n, self.p + 1))
        self._Xr[:, :self.p] = self._X

    # -- weights ---------------------------------------------------------------------------------
    def set_weights(self, w: np.ndarray, y: np.ndarray) -> None:
        """Form the weighted cross-products for weights ``w`` and (working) response ``y``."""
        w = np.asarray(w, dtype=float)
        y = np.asarray(y, dtype=float)
        self.w = w
        parts = []
        for k, v in self._bin_blocks:
            wk = w if k == 1 else np.repeat(w, k)
            parts.append(wk if v is None else wk * v)
        buf = np.bincount(self._bin_idx, np.concatenate(parts) if len(parts) > 1 else parts[0],
                          minlength=self._bin_len)
        l1, p1, q1, qr, p = self.l1, self.p1, self.q1, self.qr, self.p
        self.A11 = buf[:self._off21].reshape(l1, p1, p1)
        A21t = buf[self._off21:self._off22].reshape(qr, q1)
        A22t = buf[self._off22:].reshape(qr, qr)
        Xr = self._Xr
        Xr[:, p] = y
        wXr = Xr * w[:, None]
        ZtW = self._Zt @ wXr                       # (q1 + qr, p + 1)
        XtW = wXr[:, :p].T @ Xr                     # (p, p + 1)
        m = self.m
        A21 = np.empty((m, q1))
        A21[:qr] = A21t
        A21[qr:] = ZtW[:q1, :p].T
        A22 = np.empty((m, m))
        A22[:qr, :qr] = A22t
        A22[qr:, :qr] = ZtW[q1:, :p].T
        A22[:qr, qr:] = ZtW[q1:, :p]
        A22[qr:, qr:] = XtW[:, :p]
        self.A21, self.A22 = A21, A22
        self.c1 = ZtW[:q1, p].reshape(l1, p1)
        c2 = np.empty(m)
        c2[:qr] = ZtW[q1:, p]
        c2[qr:] = XtW[:, p]
        self.c2 = c2
        self.rr = float(np.dot(wXr[:, p], y))

    # -- per-theta factor ------------------------------------------------------------------------
    def _Ts(self, theta):
        return term_factors(self.terms, theta)

    def _scale_rows(self, A: np.ndarray, Ts_rest) -> np.ndarray:
        """``Lambda_r' A`` on the term rows of ``A`` (m x k); X rows untouched (copy)."""
        A = A.copy()
        for t, T, off in zip(self.rest, Ts_rest, self._rest_offs):
            sl = slice(off, off + t.q)
            if t.p == 1:
                A[sl] *= T[0, 0]
            else:
                blk = A[sl].reshape(t.nlevels, t.p, -1)
                A[sl] = np.einsum("ba,jbk->jak", T, blk).reshape(t.q, -1)
        return A

    def update(self, theta: np.ndarray) -> None:
        """Factor the system for ``theta`` (lme4 order)."""
        Ts = self._Ts(np.asarray(theta, dtype=float))
        self._Ts_cache = Ts
        T1, Tr = Ts[0], Ts[1:]
        l1, p1, q1, qr, m = self.l1, self.p1, self.q1, self.qr, self.m
        if p1 == 1:
            t = T1[0, 0]
            d = t * t * self.A11[:, 0, 0] + 1.0
            self.L11 = np.sqrt(d)[:, None, None]
            B = self.A21 * (t / self.L11[:, 0, 0])[None, :]      # A21 Lambda1 L11^-T
        else:
            M = np.einsum("ba,jbc,cd->jad", T1, self.A11, T1)
            M[:, np.arange(p1), np.arange(p1)] += 1.0
            self.L11 = np.linalg.cholesky(M)
            # right factor per level: T1 L11_j^{-T}
            R = np.einsum("ab,jcb->jac", T1, np.linalg.inv(self.L11))
            B = np.einsum("mja,jab->mjb", self.A21.reshape(m, l1, p1), R).reshape(m, q1)
        K = self._scale_rows(B, Tr)                               # Lambda_r' A21 Lambda1 L11^-T
        C = self._scale_rows(self._scale_rows(self.A22, Tr).T, Tr)  # symmetric
        C[np.arange(qr), np.arange(qr)] += 1.0
        if q1:
            C -= K @ K.T
        L22, info = lapack.dpotrf(C, lower=1, clean=1, overwrite_a=1)
        if info > 0:
            raise np.linalg.LinAlgError(f"PIRLS system not positive definite (minor {info})")
        self.K = K
        self.L22 = L22
        self._pwrss = None
        self._uu_cache = None

    # -- what the objective needs ----------------------------------------------------------------
    def logdet(self) -> float:
        """``log det(Lambda'Z'WZ Lambda + I)`` (the random-effects block only)."""
        d1 = np.log(np.diagonal(self.L11, axis1=1, axis2=2)).sum()
        d2 = np.log(np.diagonal(self.L22)[: self.qr]).sum()
        return 2.0 * (d1 + d2)

    def logdet_x(self) -> float:
        return 2.0 * np.log(np.diagonal(self.L22)[self.qr:]).sum()

    def _solve_spherical(self, b1: np.ndarray, b2: np.ndarray):
        """Solve the factored system for a right-hand side already in the spherical
        coordinates (``b1``: q1 entries of term 1, ``b2``: the m rest entries). Returns the
        solution ``(x1, x2)`` and the forward-substitution vectors ``(v1, v2)``."""
        l1, p1 = self.l1, self.p1
        if p1 == 1:
            l11 = self.L11[:, 0, 0]
            v1 = b1 / l11
        else:
            v1 = np.linalg.solve(self.L11, b1.reshape(l1, p1, 1))[:, :, 0].reshape(-1)
        if self.m:
            v2 = solve_triangular(self.L22, b2 - self.K @ v1, lower=True, check_finite=False)
            x2 = solve_triangular(self.L22, v2, lower=True, trans="T", check_finite=False)
            r1 = v1 - self.K.T @ x2
        else:
            v2 = x2 = np.zeros(0)
            r1 = v1
        if p1 == 1:
            x1 = r1 / l11
        else:
            x1 = np.linalg.solve(np.swapaxes(self.L11, 1, 2),
                                 r1.reshape(l1, p1, 1))[:, :, 0].reshape(-1)
        return x1, x2, v1, v2

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        """Conditional modes ``u`` (all terms) and ``beta`` for the current weights and theta."""
        T1 = self._Ts_cache[0]
        b1 = (self.c1 @ T1).reshape(-1)  # T1' c1_j per level
        b2 = self._scale_rows(self.c2[:, None], self._Ts_cache[1:])[:, 0]
        x1, x2, v1, v2 = self._solve_spherical(b1, b2)
        self._pwrss = self.rr - float(v1 @ v1) - float(v2 @ v2)
        return np.concatenate([x1, x2[:self.qr]]), x2[self.qr:].copy()

    def solve_rhs(self, b: np.ndarray) -> np.ndarray:
        """``A^{-1} b`` for the factored matrix ``A`` (u in spherical coordinates, then beta)."""
        x1, x2, _, _ = self._solve_spherical(b[:self.q1], b[self.q1:])
        return np.concatenate([x1, x2])

    def _uu_inverse(self):
        """``Luu^{-1}`` and ``Luu^{-1} K_u`` for the random-effects block (cached per update)."""
        if getattr(self, "_uu_cache", None) is None:
            qr = self.qr
            Linv = solve_triangular(np.tril(self.L22[:qr, :qr]), np.eye(qr), lower=True)
            self._uu_cache = (Linv, Linv @ self.K[:qr])
        return self._uu_cache

    def leverages(self) -> np.ndarray:
        """``h_i = z_i' Lambda H^{-1} Lambda' z_i`` with ``H = Lambda'Z'WZ Lambda + I`` (the
        random-effects block): the diagonal of ``Z Lambda H^{-1} Lambda'Z'``.

        Row ``i`` of ``Z Lambda`` has ``x_i = T1' z1_i`` at its level ``j`` of term 1 and values
        ``alpha_ie`` in rest columns ``c_ie``. With ``v1 = L11_j^{-1} x_i`` and the Schur
        complement ``S = Luu Luu'``::

            h_i = |v1|^2 + alpha' S^-1 alpha - 2 alpha' (S^-1 K)_j v1 + v1' (K' S^-1 K)_jj v1

        so only entries of the small matrices ``S^-1``, ``S^-1 K`` and the level blocks of
        ``K' S^-1 K`` are gathered per observation.
        """
        Ts = self._Ts_cache
        t1, p1 = self.t1, self.p1
        if p1 == 1:
            v1 = (t1.z[:, 0] * Ts[0][0, 0] / self.L11[t1.refs, 0, 0])[:, None]
        else:
            L11inv = np.linalg.inv(self.L11)
            v1 = np.einsum("iab,ib->ia", L11inv[t1.refs], t1.z @ Ts[0])
        h = np.einsum("ia,ia->i", v1, v1)
        if not self.qr:
            return h
        qr = self.qr
        Linv, G = self._uu_inverse()
        Sinv = Linv.T @ Linv
        SK = Linv.T @ G                                          # S^-1 K_u   (qr, q1)
        GG = np.einsum("rja,rjb->jab", G.reshape(qr, self.l1, p1), G.reshape(qr, self.l1, p1))
        cols, alpha = [], []
        for t, T, off in zip(self.rest, Ts[1:], self._rest_offs):
            cols.append(off + t.columns)
            alpha.append(t.z @ T)
        cols, alpha = np.hstack(cols), np.hstack(alpha)         # (n, E)
        E = cols.shape[1]
        for e in range(E):
            h += alpha[:, e] ** 2 * Sinv[cols[:, e], cols[:, e]]
            for f in range(e):
                h += 2.0 * alpha[:, e] * alpha[:, f] * Sinv[cols[:, e], cols[:, f]]
            for a in range(p1):
                h -= 2.0 * alpha[:, e] * v1[:, a] * SK[cols[:, e], t1.refs * p1 + a]
        Gj = GG[t1.refs]                                          # (n, p1, p1)
        h += np.einsum("ia,iab,ib->i", v1, Gj, v1)
        return h

    def pwrss(self) -> float:
        if self._pwrss is None:
            self.solve()
        return self._pwrss

    def Rxx(self) -> np.ndarray:
        """The fixed-effects block of the factor: ``vcov(beta) = (Rxx Rxx')^{-1}`` (unit scale)."""
        qr = self.qr
        return np.tril(self.L22[qr:, qr:])

    def condvar_u(self) -> list[np.ndarray]:
        """Diagonal blocks of ``(Lambda'Z'WZ Lambda + I)^{-1}`` per term: (l_k, p_k, p_k)."""
        qr = self.qr
        L11inv = np.linalg.inv(self.L11)
        blocks1 = np.einsum("jba,jbc->jac", L11inv, L11inv)
        if not qr:
            return [blocks1]
        Linv, G = self._uu_inverse()
        Wm = G.reshape(qr, self.l1, self.p1)
        Wm = np.einsum("rja,jab->rjb", Wm, L11inv)
        blocks1 = blocks1 + np.einsum("rja,rjb->jab", Wm, Wm)
        out = [blocks1]
        for t, off in zip(self.rest, self._rest_offs):
            sl = Linv[:, off:off + t.q].reshape(qr, t.nlevels, t.p)
            out.append(np.einsum("rja,rjb->jab", sl, sl))
        return out
