"""The model graph: a :class:`~pymc_mixed.spec.ModelSpec` as a PyTensor joint log density.

Every estimator and the PyMC model consume the same density::

    log p(y, u | beta, theta, s) = sum_i loglik(y_i | eta_i, s) - ||u||^2 / 2 - q/2 log(2 pi)

with spherical random effects ``u ~ N(0, I_q)`` and, per random-effects term ``k``,
``b_k = u_k Lambda_k'`` where ``u_k`` is ``u``'s slice reshaped to (levels, p_k) and
``Lambda_k = scale * T_k(theta_k)`` is the lower-triangular covariance factor of one level.
``scale`` is the residual SD ``sigma`` for a linear mixed model -- theta is then lme4's
*relative* factor, as in :class:`~pymc_mixed.varcorr.VarCorr` -- and 1 for GLMMs (glmer's
convention, whatever the family's dispersion).

The density is assembled from small steps so each can be replaced:

``relative_factors``  theta -> T_k (``covariance_factors``: Lambda_k)
``scale_ranef``       (u_k, Lambda_k) -> b_k (levels, p_k) (``random_effects`` from a flat u)
``spec.mean``         (beta, b) -> eta on the link scale (``spec.mean.predictor``;
                      :class:`~pymc_mixed.spec.LinearMean`: ``X beta + offset + Z b``)
``pointwise_loglik``  (eta, dispersion) -> family log-likelihood per observation
``ranef_logp``        u -> standard normal log density

A nonlinear mixed model keeps every step but the third: its spec holds a mean object whose
``predictor(spec, beta, b_blocks)`` returns the mean on the link scale (e.g. ``f(phi, x)`` with
``phi = A beta + B b``). :func:`joint_logp_graph` and the PyMC model
(:func:`pymc_mixed.bayes.build_pymc_model`) both build the predictor through ``spec.mean``, so the
log-likelihood, the random-effects density and the fast kernels' cross-checks are unchanged;
``predictor=`` of :func:`joint_logp_graph` overrides the spec's mean for one graph.

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
    "split_u",
    "scale_ranef",
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
    """True when ``theta`` is relative to the residual SD (``Lambda = sigma T``): linear mixed
    models (Gaussian, identity link), as lme4's ``lmer``. For GLMMs, as in ``glmer``, the
    covariance factor is ``T`` itself, whatever the family's dispersion."""
    return spec.is_gaussian_identity


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
            raise ValueError("a linear mixed model needs the residual SD sigma")
        return [dispersion * T for T in Ts]
    return Ts


def split_u(spec, u) -> list:
    """The flat spherical ``u`` (term order) as per-term (levels, p) blocks."""
    import pytensor.tensor as pt

    u = pt.as_tensor_variable(u)
    out, start = [], 0
    for t in spec.reterms:
        out.append(u[start:start + t.q].reshape((t.nlevels, t.p)))
        start += t.q
    return out


def scale_ranef(spec, u_blocks, factors, as_columns: bool = False) -> list:
    """Per term, ``b_k = u_k Lambda_k'`` from (levels, p) blocks ``u_k``.

    ``u_blocks[k]`` is a (levels, p) tensor or a list of its p columns; ``factors[k]`` is the
    ``p_k x p_k`` lower-triangular ``Lambda_k`` (a matrix, or nested lists of scalar
    expressions, rows first), or a scalar when ``p_k == 1``. With ``as_columns`` each ``b_k``
    is returned as the list of its columns, which :func:`linear_predictor` takes as well:
    no stacking and splitting in the gradient. Written elementwise rather than as
    ``u_k @ Lambda_k.T``: p is small, and a BLAS Dot costs ~15 s of numba compilation on a cold
    cache.
    """
    import pytensor.tensor as pt

    out = []
    for t, uk, F in zip(spec.reterms, u_blocks, factors):
        cols = []
        for i in range(t.p):
            bi = _col(uk, 0) * _entry(F, i, 0)
            for j in range(1, i + 1):
                bi = bi + _col(uk, j) * _entry(F, i, j)
            cols.append(bi)
        out.append(cols if as_columns else pt.stack(cols, axis=1))
    return out


def _col(b, j: int):
    """Column ``j`` of a (levels, p) block given as a tensor or as a list of columns."""
    return b[j] if isinstance(b, (list, tuple)) else b[:, j]


def _entry(F, i: int, j: int):
    """``F[i, j]`` of a factor given as a matrix, as nested lists of scalars (rows), or as a
    scalar (1 x 1)."""
    if isinstance(F, (list, tuple)):
        return F[i][j]
    return F if F.ndim == 0 else F[i, j]


def random_effects(spec, u, factors) -> list:
    """Per term, ``b_k = u_k Lambda_k'`` with ``u_k`` the term's slice of the flat ``u`` as
    (levels, p); see :func:`scale_ranef`."""
    return scale_ranef(spec, split_u(spec, u), factors)


def linear_predictor(spec, beta, b_blocks, X=None):
    """``eta = X beta + offset + sum_k rowsum(z_k * b_k[refs_k])`` as PyTensor (the predictor of
    :class:`~pymc_mixed.spec.LinearMean`, whatever the spec's own mean); ``X`` defaults to
    ``spec.X``."""
    from .spec import LinearMean

    return LinearMean().predictor(spec, beta, b_blocks, X=X)


def pointwise_loglik(spec, eta, dispersion=None, y=None):
    """Log-likelihood of each observation given the link-scale predictor ``eta``.

    ``y`` defaults to the observed response; a symbolic ``y`` (PyMC's value variable) is
    passed through.
    """
    y = np.asarray(spec.y, dtype=float) if y is None else y
    trials = getattr(spec, "trials", None)
    if trials is None:
        return spec.family.logp_graph(y, eta, dispersion, family_weights(spec))
    return spec.family.logp_graph(y, eta, dispersion, family_weights(spec),
                                  trials=np.asarray(trials, dtype=float))


def ranef_logp(u):
    """``log N(u; 0, I) = -||u||^2 / 2 - q/2 log(2 pi)``."""
    import pytensor.tensor as pt

    u = pt.as_tensor_variable(u)
    return -0.5 * pt.sum(u**2) - 0.5 * _LOG_2PI * u.shape[0].astype("float64")


@dataclass
class JointGraph:
    """Symbolic inputs and outputs of the joint log density of one ModelSpec.

    ``inputs`` maps ``beta``, ``theta``, the dispersion (families that have one, under the
    family's ``dispersion_name``: ``sigma`` for the Gaussian) and ``u`` to their PyTensor
    variables; ``b`` are the per-term random effects (levels, p), ``eta`` the
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
        of ``inputs`` (beta, theta, [dispersion], u)."""
        import pytensor

        outputs = self.logp if outputs is None else outputs
        return pytensor.function(self.input_list, outputs, on_unused_input="ignore", **kwargs)


def joint_logp_graph(spec, predictor: Callable | None = None) -> JointGraph:
    """Build ``log p(y, u | beta, theta, sigma)`` for ``spec`` with fresh symbolic inputs.

    The predictor is ``spec.mean.predictor(spec, beta, b_blocks)``; ``predictor=`` (same
    signature) overrides it for this graph. Returns a :class:`JointGraph`.
    """
    import pytensor.tensor as pt

    beta = pt.vector("beta", shape=(spec.p,), dtype="float64")
    theta = pt.vector("theta", shape=(spec.ntheta,), dtype="float64")
    u = pt.vector("u", shape=(spec.q,), dtype="float64")
    inputs = {"beta": beta, "theta": theta}
    sigma = None
    if getattr(spec.family, "has_dispersion", False):
        name = getattr(spec.family, "dispersion_name", None) or "sigma"
        sigma = pt.scalar(name, dtype="float64")
        inputs[name] = sigma
    inputs["u"] = u
    b = random_effects(spec, u, covariance_factors(spec, theta, sigma))
    eta = (predictor or spec.mean.predictor)(spec, beta, b)
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
