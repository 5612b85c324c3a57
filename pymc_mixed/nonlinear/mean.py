"""NonlinearMean: the mean of a nonlinear mixed model as a replacement linear predictor.

The seam with the model graph (``spec.mean``, :mod:`pymc_mixed.spec.mean`): with it
:func:`pymc_mixed.graph.joint_logp_graph` and the PyMC model build ``log p(y, u | beta, theta, sigma)`` of the nonlinear
model (constant error model) with the rest of the graph unchanged; NUTS and the plain-graph
cross-checks of the fast kernels use it.
"""

from __future__ import annotations

import numpy as np

from .kernel import call_function

__all__ = ["NonlinearMean"]


def _col(b, j: int):
    return b[j] if isinstance(b, (list, tuple)) else b[:, j]


class NonlinearMean:
    """``f(A beta + B b, x)`` symbolically (``predictor``) or in NumPy (``predict_numpy``)."""

    kind = "nlmm"
    linear = False

    def phi_graph(self, spec, beta, b_blocks) -> dict:
        """Named (n,) PyTensor parameters ``phi[:, P] = A_P beta_P + sum z b[refs]``: column by
        column, intercepts as scalars, so the graph stays elementwise (no Dot)."""
        import pytensor.tensor as pt

        named = {}
        for fp in spec.fixed:
            terms = []
            for j in range(fp.A.shape[1]):
                col, coef = fp.A[:, j], beta[fp.cols.start + j]
                terms.append(coef if np.all(col == 1.0) else pt.constant(col) * coef)
            acc = terms[0]
            for t in terms[1:]:
                acc = acc + t
            named[fp.param] = pt.broadcast_to(acc, (spec.n,)) if acc.ndim == 0 else acc
        for t, idx, b in zip(spec.reterms, spec.term_params, b_blocks):
            refs = np.asarray(t.refs, dtype=np.int64)
            for c, j in enumerate(idx):
                bj = _col(b, c)[refs]
                z = t.z[:, c]
                name = spec.params[j]
                named[name] = named[name] + (bj if np.all(z == 1.0) else pt.constant(z) * bj)
        return named

    def predictor(self, spec, beta, b_blocks):
        """The mean on the working scale (``log f`` for the exponential error model)."""
        import pytensor.tensor as pt

        f = pt.as_tensor_variable(call_function(spec, self.phi_graph(spec, beta, b_blocks)))
        return pt.log(f) if spec.error_model.name == "exponential" else f

    __call__ = predictor

    def predict_numpy(self, spec, beta, b_blocks, kernel=None) -> np.ndarray:
        """The mean ``f`` (original scale) at ``beta`` and per-term ``b_blocks`` (levels, p)."""
        from .kernel import NonlinearKernel

        kernel = kernel or NonlinearKernel(spec)
        return kernel.f(spec.phi(np.asarray(beta, float), b_blocks))
