"""The model graph: a :class:`~pymc_mixed.spec.ModelSpec` as a PyTensor joint log density.

Every estimator consumes the same density (DESIGN.md, "One model, three ways")::

    log p(y, u | beta, theta, s) = sum_i loglik(y_i | eta_i, s) - ||u||^2 / 2 - q/2 log(2 pi)

with spherical random effects ``u ~ N(0, I_q)`` and, per random-effects term ``k``,
``b_k = u_k Lambda_k'`` where ``u_k`` is ``u``'s slice reshaped to (levels, p_k) and
``Lambda_k = scale * T_k(theta_k)`` is the lower-triangular covariance factor of one level.
``scale`` is the dispersion (``sigma``) for families that have one -- theta is then lme4's
*relative* factor, as in :class:`~pymc_mixed.varcorr.VarCorr` -- and 1 otherwise.

The density is assembled from small steps so each can be replaced:

``relative_factors``  theta -> T_k
``random_effects``    (u, Lambda_k) -> b_k (levels, p_k)
``linear_predictor``  (beta, b) -> eta = X beta + offset + sum_k rowsum(z_k * b_k[refs_k])
``pointwise_loglik``  (eta, dispersion) -> family log-likelihood per observation
``ranef_logp``        u -> standard normal log density

A nonlinear mixed model keeps every step but the third: pass ``predictor=`` a function of
``(spec, beta, b_blocks)`` returning the mean on the link scale (e.g. ``f(phi, x)`` with
``phi = A beta + B b``); the log-likelihood, the random-effects density, the fast kernels'
cross-checks and the PyMC model (:mod:`pymc_mixed.mcmc`) are unchanged.

PyTensor is imported inside the functions so ``import pymc_mixed`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = [
    "JointGraph",
    "relative_factors",
    "covariance_factors",
    "random_effects",
    "linear_predictor",
    "pointwise_loglik",
    "ranef_logp",
    "family_weights",
    "theta_is_relative",
    "joint_logp_graph",
    "compile_joint_logp",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


def theta_is_relative(spec) -> bool:
    """True when ``theta`` is relative to the dispersion (``Lambda = sigma T``), as for LMMs."""
    return bool(getattr(spec.family, "has_dispersion", False))


def family_weights(spec):
    """Weights handed to ``family.logp_graph``: prior weights times binomial trials (lme4's
    convention of a proportion response weighted by the number of trials), or None."""
    w = None if spec.weights is None else np.asarray(spec.weights, dtype=float)
    if getattr(spec, "trials", None) is not None:
        t = np.asarray(spec.trials, dtype=float)
        w = t if w is None else w * t
    return w


def relative_factors(spec, theta) -> list:
    """Per term, the ``p_k x p_k`` lower-triangular ``T_k`` filled from ``theta`` (lme4 order)."""
    import pytensor.tensor as pt

    theta = pt.as_tensor_variable(theta)
    out = []
    for t, s in zip(spec.reterms, spec.theta_slices):
        if t.p == 1:
            out.append(theta[s].reshape((1, 1)))
            continue
        rows, cols = t.tril_index
        out.append(pt.zeros((t.p, t.p), dtype=theta.dtype)[rows, cols].set(theta[s]))
    return out


def covariance_factors(spec, theta, dispersion=None) -> list:
    """Per term, ``Lambda_k = scale * T_k``: the Cholesky factor of one level's covariance."""
    Ts = relative_factors(spec, theta)
    if theta_is_relative(spec):
        if dispersion is None:
            raise ValueError(f"the {spec.family.name} family needs a dispersion (sigma)")
        return [dispersion * T for T in Ts]
    return Ts


def random_effects(spec, u, factors) -> list:
    """Per term, ``b_k = u_k Lambda_k'`` with ``u_k`` the term's slice of ``u`` as (levels, p)."""
    import pytensor.tensor as pt

    u = pt.as_tensor_variable(u)
    out, start = [], 0
    for t, F in zip(spec.reterms, factors):
        uk = u[start:start + t.q].reshape((t.nlevels, t.p))
        # Elementwise rather than ``uk @ F.T``: p is small, and a BLAS Dot costs ~15 s of
        # numba compilation on a cold cache against well under 1 s for a broadcast sum.
        out.append(uk * F[0, 0] if t.p == 1 else (uk[:, None, :] * F[None, :, :]).sum(axis=2))
        start += t.q
    return out


def _is_ones(col: np.ndarray) -> bool:
    return bool(np.all(col == 1.0))


def linear_predictor(spec, beta, b_blocks, X=None):
    """``eta = X beta + offset + sum_k rowsum(z_k * b_k[refs_k])``.

    ``X`` defaults to ``spec.X`` (pass another design to predict). Columns of ``z`` that are
    all ones (intercepts) skip the multiplication.
    """
    import pytensor.tensor as pt

    X = np.asarray(spec.X if X is None else X, dtype=float)
    beta = pt.as_tensor_variable(beta)
    # (X * beta).sum(1) instead of a Dot: same O(np) work, no BLAS op to compile (see above).
    if X.shape[1] == 0:
        eta = pt.zeros(X.shape[0])
    elif X.shape[1] == 1 and _is_ones(X[:, 0]):
        eta = pt.broadcast_to(beta[0], (X.shape[0],))
    else:
        eta = (X * beta[None, :]).sum(axis=1)
    if spec.offset is not None:
        eta = eta + np.asarray(spec.offset, dtype=float)
    for t, b in zip(spec.reterms, b_blocks):
        refs = np.asarray(t.refs, dtype=np.int64)
        z = np.asarray(t.z, dtype=float)
        for j in range(t.p):
            bj = b[:, j][refs]
            eta = eta + (bj if _is_ones(z[:, j]) else z[:, j] * bj)
    return eta


def pointwise_loglik(spec, eta, dispersion=None, y=None):
    """Log-likelihood of each observation given the link-scale predictor ``eta``."""
    y = spec.y if y is None else y
    return spec.family.logp_graph(np.asarray(y, dtype=float), eta, dispersion,
                                  family_weights(spec))


def ranef_logp(u):
    """``log N(u; 0, I) = -||u||^2 / 2 - q/2 log(2 pi)``."""
    import pytensor.tensor as pt

    u = pt.as_tensor_variable(u)
    return -0.5 * pt.sum(u**2) - 0.5 * _LOG_2PI * u.shape[0].astype("float64")


@dataclass
class JointGraph:
    """Symbolic inputs and outputs of the joint log density of one ModelSpec.

    ``inputs`` maps ``beta``, ``theta``, ``u`` and (families with a dispersion) ``sigma`` to
    their PyTensor variables; ``b`` are the per-term random effects (levels, p), ``eta`` the
    predictor, ``loglik`` the pointwise log-likelihood and ``logp`` the joint log density.
    """

    spec: object
    inputs: dict
    b: list
    eta: object
    loglik: object
    logp: object
    extra: dict = field(default_factory=dict)

    @property
    def input_list(self) -> list:
        return list(self.inputs.values())

    def compile(self, outputs=None, **kwargs):
        """Compile ``outputs`` (default ``logp``) as a function of the inputs, in the order
        of ``inputs`` (beta, theta, [sigma], u)."""
        import pytensor

        outputs = self.logp if outputs is None else outputs
        return pytensor.function(self.input_list, outputs, on_unused_input="ignore", **kwargs)


def joint_logp_graph(spec, predictor: Callable | None = None) -> JointGraph:
    """Build ``log p(y, u | beta, theta, sigma)`` for ``spec`` with fresh symbolic inputs.

    ``predictor(spec, beta, b_blocks)`` replaces :func:`linear_predictor` (for nonlinear
    means). Returns a :class:`JointGraph`.
    """
    import pytensor.tensor as pt

    beta = pt.vector("beta", shape=(spec.p,), dtype="float64")
    theta = pt.vector("theta", shape=(spec.ntheta,), dtype="float64")
    u = pt.vector("u", shape=(spec.q,), dtype="float64")
    inputs = {"beta": beta, "theta": theta}
    sigma = None
    if getattr(spec.family, "has_dispersion", False):
        sigma = pt.scalar("sigma", dtype="float64")
        inputs["sigma"] = sigma
    inputs["u"] = u
    b = random_effects(spec, u, covariance_factors(spec, theta, sigma))
    eta = (predictor or linear_predictor)(spec, beta, b)
    loglik = pointwise_loglik(spec, eta, sigma)
    logp = pt.sum(loglik) + ranef_logp(u)
    return JointGraph(spec=spec, inputs=inputs, b=b, eta=eta, loglik=loglik, logp=logp)


def compile_joint_logp(spec, grad: bool = False, predictor: Callable | None = None):
    """A NumPy-callable ``f(beta, theta, [sigma,] u) -> logp`` (and ``d logp / d(all inputs)``
    when ``grad=True``, returned as a list after the value)."""
    import pytensor

    g = joint_logp_graph(spec, predictor)
    outputs = [g.logp]
    if grad:
        outputs += pytensor.grad(g.logp, g.input_list)
    fn = g.compile(outputs)
    return (lambda *args: fn(*args)) if grad else (lambda *args: float(fn(*args)[0]))
