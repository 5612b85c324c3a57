"""Blocked Cholesky factor of the penalized least-squares system of a mixed model.

For weights ``W`` and a response column ``y`` the system is

    [ Lambda'Z'WZ Lambda + I    Lambda'Z'WX    Lambda'Z'Wy ]
    [ X'WZ Lambda               X'WX           X'Wy        ]  =  L L'
    [ y'WZ Lambda               y'WX           y'Wy        ]

Columns are split into two blocks (MixedModels.jl's idea, for two blocks):

* block 1 is the random-effect term with the most levels, ``Z_1`` (``q1 = l1 * p1`` columns).
  ``Z_1'WZ_1`` is block diagonal (one ``p1 x p1`` block per level), so ``L11`` is too and is
  computed by a batched Cholesky.
* block 2 ("rest", ``m`` columns) is everything else: the other terms, ``X`` and ``y``. It is
  dense: ``L22 = chol(Lambda_r'(A22 - G)Lambda_r + I)`` with the Schur complement
  ``G = A21 S A12``, ``S = blockdiag(T1 (T1'A11_j T1 + I)^{-1} T1')``.

``G`` is the expensive part (``A21`` is the sparse ``rest x Z_1`` cross-product). Its sparsity
never changes with theta, so every product ``A21[r, j] A21[s, j]`` that contributes to
``G[r, s]`` is enumerated once; per evaluation ``G`` is one sparse matrix-vector product with
the entries of ``S``. The objective is then read off the diagonal of ``L`` without any solve.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack, solve_triangular

from ..spec import term_factors

__all__ = ["BlockedSystem"]


class BlockedSystem:
    """The factor ``L`` of a mixed model's PLS system, updated in place for each theta.

    Parameters
    ----------
    reterms : random-effect terms, the first with the most levels (``ModelSpec`` order).
    X : (n, p) fixed-effects matrix (may have zero columns).
    y : (n,) response, or the working response for PIRLS.
    w : (n,) weights, or None for unit weights.

    After :meth:`update` the attributes ``L11`` (l1, p1, p1) and ``L22`` (m, m; lower
    triangle valid) hold the factor, and :meth:`logdet`, :meth:`pwrss` read the objective.
    """

    def __init__(self, reterms, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None):
        self.terms = list(reterms)
        self.t1 = self.terms[0]
        self.rest = self.terms[1:]
        n = len(y)
        self.n = n
        self.p = X.shape[1]
        self.l1, self.p1 = self.t1.nlevels, self.t1.p
        self.q1 = self.t1.q
        self.qr = sum(t.q for t in self.rest)  # random-effect columns of block 2
        self.m = self.qr + self.p + 1
        self.scalar_rest = all(t.p == 1 for t in self.rest)
        self._X = np.asarray(X, dtype=float)
        self._build_structure()
        self.set_weights(np.ones(n) if w is None else w, y)
        self.L22 = np.zeros((self.m, self.m), order="F")

    # -- structure, computed once ------------------------------------------------------------
    def _build_structure(self) -> None:
        """Fix the sparsity of every cross-product, so that new weights or a new response
        (PIRLS) only change values: ``A11``, ``A21`` and ``A22`` become bincounts."""
        n, m, p1, l1 = self.n, self.m, self.p1, self.l1
        # Every row of [Z_2 .. Z_k  X  y] has the same number k of entries: the row's level
        # block of each other term, all of X and y. Their columns (increasing) and values:
        cols, vals, start = [], [], 0
        for t in self.rest:
            cols.append(start + t.columns)
            vals.append(t.z)
            start += t.q
        cols.append(np.broadcast_to(self.qr + np.arange(self.p), (n, self.p)))
        vals.append(self._X)
        cols.append(np.full((n, 1), m - 1))
        vals.append(np.zeros((n, 1)))
        self._Rcol = np.ascontiguousarray(np.hstack(cols)).astype(np.int64)
        self._Rval = np.ascontiguousarray(np.hstack(vals), dtype=float)
        k = self._Rcol.shape[1]
        # A11: one p1 x p1 block per level of term 1
        a, b = np.meshgrid(np.arange(p1), np.arange(p1), indexing="ij")
        self._a11_idx = (self.t1.refs[:, None] * p1 * p1 + (a * p1 + b).ravel()[None, :]).ravel()
        self._a11_ab = (a.ravel(), b.ravel())
        # A21 (m x q1, CSC): entry (Rcol[i, e], j1(i) * p1 + a)
        col1 = self.t1.refs[:, None] * p1 + np.arange(p1)[None, :]          # (n, p1)
        key = (col1[:, None, :] * m + self._Rcol[:, :, None]).ravel()       # (n, k, p1)
        uniq, self._a21_target = np.unique(key, return_inverse=True)
        a21_rows = (uniq % m).astype(np.int32)
        a21_cols = uniq // m
        indptr = np.searchsorted(a21_cols, np.arange(self.q1 + 1)).astype(np.int64)
        self._a21_shape = (m, self.q1)
        self._a21_indices, self._a21_indptr = a21_rows, indptr
        # A22 lower triangle (Fortran flat index col * m + row, row >= col). Only the products
        # of two random-effect entries go through a bincount; those with X and y are BLAS
        # products (a bincount over all pairs of a row's entries built n * p^2 / 2 indices:
        # 6 GB for 100,000 rows and a 120-level fixed factor).
        er = k - self.p - 1
        self._er = er
        e, f = np.tril_indices(er)
        self._a22_ef = (e, f)
        self._a22_target = (self._Rcol[:, f] * m + self._Rcol[:, e]).ravel()
        self._Zr_t = sp.csr_matrix((self._Rval[:, :er].ravel(),
                                    (np.repeat(np.arange(n), er), self._Rcol[:, :er].ravel())),
                                   shape=(n, max(self.qr, 0))).T.tocsr()
        # G = A21 S A12: every ordered pair (e, f) of A21 entries in the same level of term 1
        # with row(e) >= row(f) contributes A21[e] A21[f] S_j[a_e, a_f] to G[row(e), row(f)].
        nnz = len(uniq)
        idx_t = np.int32 if max(m * m, nnz, l1 * p1 * p1) < 2**31 - 1 else np.int64
        level_of = (a21_cols // p1).astype(idx_t)
        starts = indptr[np.arange(l1) * p1].astype(idx_t)
        if p1 == 1:
            # rows are sorted within a column: the partners f of e with row(f) <= row(e) are
            # the entries of the same level up to and including e itself
            reps = np.arange(nnz, dtype=idx_t) - starts[level_of] + 1
        else:
            reps = (indptr[np.arange(1, l1 + 1) * p1].astype(idx_t) - starts)[level_of]
        # (int32 and in-place arithmetic: these arrays have millions of entries on InstEval,
        # and first-touch page faults of fresh memory dominate a cold fit otherwise)
        e = np.repeat(np.arange(nnz, dtype=idx_t), reps)
        f = np.arange(len(e), dtype=idx_t)
        f -= np.repeat((np.cumsum(reps) - reps).astype(idx_t), reps)
        f += np.repeat(starts[level_of], reps)
        if p1 > 1:
            keep = a21_rows[e] >= a21_rows[f]
            e, f = e[keep], f[keep]
        # One CSR row per position of the m x m block (Fortran flat index col * m + row), so
        # that P @ vec(S) *is* G; building it is a linear-time bucket sort in SciPy, and
        # carrying the product numbers through it gives the permutation for new weights.
        rows = a21_rows.astype(idx_t)
        flat = rows[f] * idx_t(m)
        flat += rows[e]
        s_index = level_of[e] * idx_t(p1 * p1)
        if p1 > 1:
            s_index += (a21_cols[e] % p1).astype(idx_t) * idx_t(p1) + (a21_cols[f] % p1).astype(idx_t)
        ids = np.arange(1, len(e) + 1, dtype=float)  # +1: SciPy drops explicit zeros
        P = sp.csr_matrix((ids, (flat, s_index)), shape=(m * m, l1 * p1 * p1))
        del flat, s_index
        # keep only the positions that receive products (145k of InstEval's 1.3M): the
        # mat-vec then skips empty rows and G is scattered into the dense block
        self._g_flat = np.flatnonzero(np.diff(P.indptr))
        P = sp.csr_matrix((P.data, P.indices, np.r_[0, P.indptr[1:][self._g_flat]]),
                          shape=(len(self._g_flat), P.shape[1]))
        perm = (P.data - 1).astype(np.int64)
        self._pair_e, self._pair_f = e[perm], f[perm]
        self._P = P

    # -- weights: the cross-products A11, A21, A22 -------------------------------------------
    def set_weights(self, w: np.ndarray, y: np.ndarray) -> None:
        """Recompute the cross-products for new weights and/or response (PIRLS calls this)."""
        w = np.asarray(w, dtype=float)
        self.w = w
        m, p1 = self.m, self.p1
        self._Rval[:, -1] = y
        z1 = self.t1.z
        a, b = self._a11_ab
        contrib = (w[:, None] * z1[:, a] * z1[:, b]).ravel()
        self.A11 = np.bincount(self._a11_idx, contrib, minlength=self.l1 * p1 * p1).reshape(
            self.l1, p1, p1)
        wR = self._Rval * w[:, None]
        c21 = (wR[:, :, None] * z1[:, None, :]).ravel()
        data = np.bincount(self._a21_target, c21, minlength=len(self._a21_indices))
        self.A21 = sp.csc_matrix((data, self._a21_indices, self._a21_indptr),
                                 shape=self._a21_shape)
        e, f = self._a22_ef
        qr, er = self.qr, self._er
        if er:
            c22 = (wR[:, e] * self._Rval[:, f]).ravel()
            A22 = np.bincount(self._a22_target, c22, minlength=m * m).reshape((m, m), order="F")
        else:
            A22 = np.zeros((m, m), order="F")
        D, wD = self._Rval[:, er:], wR[:, er:]          # [X y] and W [X y]
        A22[qr:, qr:] = np.tril(wD.T @ D)
        if qr:
            A22[qr:, :qr] = (self._Zr_t @ wD).T
        self.A22 = A22
        self._P.data = data[self._pair_e] * data[self._pair_f]

    # -- per-theta update ----------------------------------------------------------------------
    def update(self, theta: np.ndarray) -> None:
        """Factor the system for ``theta`` (lme4 order), in place."""
        Ts = self._Ts(theta)
        T1 = Ts[0]
        if self.p1 == 1:
            t = T1[0, 0]
            d = t * t * self.A11[:, 0, 0] + 1.0
            self.L11 = np.sqrt(d)[:, None, None]
            S = (t * t / d)
        else:
            M = np.einsum("ba,jbc,cd->jad", T1, self.A11, T1)
            M[:, np.arange(self.p1), np.arange(self.p1)] += 1.0
            self.L11 = np.linalg.cholesky(M)
            S = T1 @ np.linalg.inv(M) @ T1.T
        B = self.L22
        B[...] = self.A22
        B.reshape(-1, order="F")[self._g_flat] -= self._P @ S.ravel()  # a view: B is Fortran
        self._scale_rest(B, Ts[1:])
        idx = np.arange(self.qr)
        B[idx, idx] += 1.0
        _, info = lapack.dpotrf(B, lower=1, clean=0, overwrite_a=1)
        if info > 0:
            # Not positive definite: y is an exact combination of the other columns (a zero
            # residual), or the data are degenerate; the estimators report it.
            raise np.linalg.LinAlgError(f"PLS system not positive definite (minor {info})")
        self._Ts_cache = Ts

    def _Ts(self, theta):
        return term_factors(self.terms, theta)

    def _scale_rest(self, B: np.ndarray, Ts_rest) -> None:
        """``B <- Lambda_r' B Lambda_r`` on the lower triangle (X, y columns untouched)."""
        if self.scalar_rest:
            d = np.ones(self.m)
            start = 0
            for t, T in zip(self.rest, Ts_rest):
                d[start:start + t.q] = T[0, 0]
                start += t.q
            B *= d[:, None]
            B *= d[None, :]
            return
        # general case: symmetrize, then apply the block-diagonal factor on both sides
        low = np.tril(B)
        B[...] = low + np.tril(B, -1).T
        start = 0
        for t, T in zip(self.rest, Ts_rest):
            sl = slice(start, start + t.q)
            blk = B[:, sl].reshape(self.m, t.nlevels, t.p) @ T
            B[:, sl] = blk.reshape(self.m, t.q)
            blk = np.einsum("ba,jbm->jam", T, B[sl, :].reshape(t.nlevels, t.p, self.m))
            B[sl, :] = blk.reshape(t.q, self.m)
            start += t.q

    # -- what the objective needs ----------------------------------------------------------------
    def logdet(self) -> float:
        """``log det(Lambda'Z'WZ Lambda + I)`` from the diagonals of L11 and L22."""
        d1 = np.log(np.diagonal(self.L11, axis1=1, axis2=2)).sum()
        d2 = np.log(np.diagonal(self.L22)[: self.qr]).sum()
        return 2.0 * (d1 + d2)

    def logdet_x(self) -> float:
        """``log det(RX'RX)``, the REML correction."""
        dx = np.diagonal(self.L22)[self.qr:self.qr + self.p]
        return 2.0 * np.log(dx).sum()

    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares at the conditional solution."""
        return float(self.L22[-1, -1] ** 2)

    # -- solutions (once, after the optimizer) ---------------------------------------------------
    def L21_dense(self) -> np.ndarray:
        """``Lambda_r' A21 Lambda_1 L11^{-T}`` as a dense m x q1 array."""
        T1 = self._Ts_cache[0]
        A = self.A21.toarray().reshape(self.m, self.l1, self.p1)
        # right factor per level: T1 L11_j^{-T}
        Linv = np.linalg.inv(self.L11)
        Rj = np.einsum("ab,jcb->jac", T1, Linv)  # T1 @ L11_j^{-T}
        out = np.einsum("mja,jab->mjb", A, Rj).reshape(self.m, self.q1)
        start = 0
        for t, T in zip(self.rest, self._Ts_cache[1:]):
            sl = slice(start, start + t.q)
            blk = np.einsum("ba,jbm->jam", T, out[sl, :].reshape(t.nlevels, t.p, self.q1))
            out[sl, :] = blk.reshape(t.q, self.q1)
            start += t.q
        return out

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        """Conditional modes ``u`` (all terms, term order) and ``beta`` at the current theta."""
        L = self.L22
        qr, p = self.qr, self.p
        Lxx = np.tril(L[qr:qr + p, qr:qr + p])
        beta = solve_triangular(Lxx, L[-1, qr:qr + p], lower=True, trans="T") if p else \
            np.zeros(0)
        Lzz = np.tril(L[:qr, :qr])
        rhs = L[-1, :qr] - L[qr:qr + p, :qr].T @ beta
        u_rest = solve_triangular(Lzz, rhs, lower=True, trans="T") if qr else np.zeros(0)
        # rhs1 = L21' v with v = [-u_rest, -beta, 1]; L21 = Lambda_r' A21 Lambda_1 L11^{-T}, so
        # L21' v = L11^{-1} Lambda_1' A21' (Lambda_r v): sparse products, no dense L21
        v = np.concatenate([-u_rest, -beta, [1.0]])
        start = 0
        for t, T in zip(self.rest, self._Ts_cache[1:]):
            sl = slice(start, start + t.q)
            v[sl] = (v[sl].reshape(t.nlevels, t.p) @ T.T).ravel()
            start += t.q
        a = (self.A21.T @ v).reshape(self.l1, self.p1)
        a = a @ self._Ts_cache[0]  # rows of Lambda_1' a: T1' a_j
        rhs1 = np.linalg.solve(self.L11, a[:, :, None])  # L11_j^{-1} (T1' a_j)
        u1 = np.linalg.solve(np.swapaxes(self.L11, 1, 2), rhs1).reshape(-1)
        return np.concatenate([u1, u_rest]), beta

    def Rxx(self) -> np.ndarray:
        """The fixed-effects block of L (``RX'`` in lme4): ``vcov(beta) = sigma^2 (Lxx Lxx')^-1``."""
        qr, p = self.qr, self.p
        return np.tril(self.L22[qr:qr + p, qr:qr + p])

    def condvar_u(self) -> list[np.ndarray]:
        """Diagonal blocks of ``(Lambda'Z'WZ Lambda + I)^{-1}`` per term: (l_k, p_k, p_k)."""
        qr = self.qr
        L11inv = np.linalg.inv(self.L11)  # (l1, p1, p1)
        blocks1 = np.einsum("jba,jbc->jac", L11inv, L11inv)
        out = []
        if qr:
            Lzz = np.tril(self.L22[:qr, :qr])
            L21z = self.L21_dense()[:qr]
            # W = Lzz^{-1} L21z L11^{-1}
            Wm = solve_triangular(Lzz, L21z, lower=True).reshape(qr, self.l1, self.p1)
            Wm = np.einsum("rja,jab->rjb", Wm, L11inv)
            blocks1 = blocks1 + np.einsum("rja,rjb->jab", Wm, Wm)
            Linv = solve_triangular(Lzz, np.eye(qr), lower=True)
            start = 0
            rest_blocks = []
            for t in self.rest:
                sl = Linv[:, start:start + t.q].reshape(qr, t.nlevels, t.p)
                rest_blocks.append(np.einsum("rja,rjb->jab", sl, sl))
                start += t.q
            out = [blocks1, *rest_blocks]
        else:
            out = [blocks1]
        return out
