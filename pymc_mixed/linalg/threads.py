"""BLAS threading for the kernels: one thread while a fit runs."""

from __future__ import annotations

import contextlib

__all__ = ["single_threaded_blas"]


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
