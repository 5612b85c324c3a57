"""BLAS threading for the kernels: one thread while a fit runs."""

from __future__ import annotations

import contextlib

__all__ = ["single_threaded_blas", "small_qr"]


def single_threaded_blas(dense_size: int | None = None):
    """A context in which BLAS runs one thread.

    A 1000 x 1000 Cholesky gains little from a second thread on a 2-core machine, and when the
    other core is busy OpenBLAS's threads stall: single calls then take 0.2-0.6 s instead of
    10 ms (measured here); PIRLS's many small products are 3-8x slower with idle threads
    spinning between calls. With ``dense_size`` given, problems whose dense block is smaller
    than 400 skip the (millisecond) cost of switching: they never reach BLAS's threaded paths.
    """
    if dense_size is not None and dense_size < 400:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def small_qr(X) -> tuple:
    """Thin QR ``X = Q R`` of a tall matrix with few columns by classical Gram-Schmidt with
    one re-orthogonalization ("twice is enough": orthogonal to working precision, like
    Householder), one vector at a time. For a few columns this avoids LAPACK's QR, which goes
    through OpenBLAS's threads: 7-16 ms for 7,584 x 8 on a busy machine against 0.4 ms on one
    thread, more than a whole VerbAgg fit. A column in the span of the earlier ones gets
    ``R_jj`` at round-off level and a zero column of ``Q``."""
    import numpy as np

    X = np.asarray(X, dtype=float)
    n, p = X.shape
    Q = np.zeros((n, p))
    R = np.zeros((p, p))
    for j in range(p):
        v = X[:, j].copy()
        for _ in range(2):
            for i in range(j):
                c = Q[:, i] @ v
                R[i, j] += c
                v -= c * Q[:, i]
        nv = float(np.sqrt(v @ v))
        R[j, j] = nv
        if nv > 0:
            Q[:, j] = v / nv
    return Q, R
