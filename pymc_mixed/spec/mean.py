"""The mean of a mixed model on the link scale, as a function of ``(beta, b)``.

A mean object is held by the spec (``spec.mean``) and is the one seam between the model's
parameters and its predictor. It offers

``predictor(spec, beta, b_blocks)``
    the link-scale predictor as a PyTensor expression: the maximum-likelihood graph
    (:func:`pymc_mixed.graph.joint_logp_graph`) and the PyMC model (:mod:`pymc_mixed.bayes`)
    both build it here;
``predict_numpy(spec, beta, b_blocks)``
    the same in NumPy (fitted values, simulation, posterior predictive draws).

``b_blocks[k]`` is term ``k``'s random effects as (levels, p_k), or the list of its p_k
columns. :class:`LinearMean` (``X beta + offset + Z b``) is the mean of every formula model; a
nonlinear mean (``f(phi, x)`` with ``phi = A beta + B b``) declares ``kind = "nlmm"`` so
``MixedModel.fit`` finds its estimators.

PyTensor is imported inside the functions so ``import pymc_mixed`` stays light.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LinearMean"]

_UNROLL_MAX = 16  # fixed-effect columns written out one by one up to this many


def _col(b, j: int):
    """Column ``j`` of a (levels, p) block given as a tensor or as a list of columns."""
    return b[j] if isinstance(b, (list, tuple)) else b[:, j]


def _is_ones(col: np.ndarray) -> bool:
    return bool(np.all(col == 1.0))


class LinearMean:
    """``eta = X beta + offset + sum_k rowsum(z_k * b_k[refs_k])``: the mean of (G)LMMs."""

    kind = None  # the spec's family decides between "lmm" and "glmm"
    linear = True

    def predictor(self, spec, beta, b_blocks, X=None):
        """The link-scale predictor as a PyTensor vector (``X`` defaults to ``spec.X``).

        Columns of ``X`` and ``z`` that are all ones (intercepts) skip the multiplication.
        """
        import pytensor.tensor as pt

        X = np.asarray(spec.X if X is None else X, dtype=float)
        beta = pt.as_tensor_variable(beta)
        n, p = X.shape
        if p == 0:
            eta = pt.zeros(n)
        elif p <= _UNROLL_MAX:
            # Column by column: intercepts add a scalar, the other columns are constants times
            # a scalar, so eta, the log-likelihood and all the gradient reductions fuse into one
            # loop over the observations (no BLAS Dot, no (n, p) temporaries).
            terms = [beta[j] if _is_ones(X[:, j]) else X[:, j] * beta[j] for j in range(p)]
            eta = terms[0]
            for term in terms[1:]:
                eta = eta + term
            eta = pt.broadcast_to(eta, (n,)) if eta.ndim == 0 else eta
        else:
            # (X * beta).sum(1) rather than a Dot: the same O(np) work without a BLAS op, whose
            # numba compilation costs ~15 s on a cold cache.
            eta = (X * beta[None, :]).sum(axis=1)
        if spec.offset is not None:
            eta = eta + np.asarray(spec.offset, dtype=float)
        for t, b in zip(spec.reterms, b_blocks):
            refs = np.asarray(t.refs, dtype=np.int64)
            z = np.asarray(t.z, dtype=float)
            for j in range(t.p):
                bj = _col(b, j)[refs]
                eta = eta + (bj if _is_ones(z[:, j]) else z[:, j] * bj)
        return eta

    def predict_numpy(self, spec, beta, b_blocks, X=None) -> np.ndarray:
        """The link-scale predictor in NumPy. ``beta`` may carry leading draw dimensions
        ``(..., p)`` with ``b_blocks[k]`` then ``(..., levels, p_k)``; ``b_blocks=None`` gives
        the population-level predictor ``X beta + offset``."""
        X = np.asarray(spec.X if X is None else X, dtype=float)
        beta = np.asarray(beta, dtype=float)
        eta = X @ beta if beta.ndim == 1 else np.einsum("...p,np->...n", beta, X)
        eta = eta + spec.offset_or_zero
        if b_blocks is None:
            return eta
        if beta.ndim == 1:
            return eta + spec.Zb(b_blocks)
        for t, b in zip(spec.reterms, b_blocks):
            eta = eta + np.einsum("...np,np->...n", np.asarray(b)[..., t.refs, :], t.z)
        return eta
