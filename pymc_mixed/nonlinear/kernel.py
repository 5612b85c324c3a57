"""The compiled kernel of a nonlinear mixed model: ``f`` and ``d f / d phi`` for all observations.

The user's function is called once, symbolically, with ``phi`` as named per-observation
tensors and the data columns it asks for as constants; PyTensor differentiates it. Because
``f_i`` depends only on row ``i`` of ``phi``, the Jacobian is the ``P`` gradient columns of
``sum(f)``: one reverse sweep, elementwise ops only (no BLAS Dot, small compile).

Every estimator (PNLS, LME, FO, FOCE, AGQ, SAEM) calls this kernel for all groups at once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["NonlinearKernel", "symbolic_mean", "call_function", "obs_loglik", "ModelFunctionError"]


class ModelFunctionError(ValueError):
    """The model function cannot be used: wrong output shape, non-finite values, not
    differentiable, or a parameter it ignores."""


def symbolic_mean(spec, phi):
    """The user's mean as a PyTensor expression of ``phi`` (..., n, P) (a tensor whose last axis
    runs over ``spec.params``); data columns enter as (n,) constants and broadcast."""
    return call_function(spec, {name: phi[..., j] for j, name in enumerate(spec.params)})


def call_function(spec, named: dict):
    """The user's function on named parameter tensors and the data columns as constants."""
    import pytensor.tensor as pt

    cols = [pt.constant(spec.columns[a], name=a) for a in spec.argnames]
    try:
        f = spec.fun(named, *cols)
    except Exception as err:  # the user's code: say where it failed
        raise ModelFunctionError(f"the model function raised {type(err).__name__}: {err}") from err
    return pt.as_tensor_variable(f)


class NonlinearKernel:
    """Compiled ``f(phi)`` and ``J(phi) = d f / d phi`` of one :class:`NonlinearSpec`.

    Compiled once per model, lazily (``fj`` on first use, ``f_batch`` when SAEM or AGQ asks).
    """

    def __init__(self, spec):
        self.spec = spec
        self._fj = None
        self._fb = None
        self._level_sum = {}

    # -- compilation ---------------------------------------------------------------------
    def _compile_fj(self):
        import pytensor
        import pytensor.tensor as pt
        from pytensor.gradient import DisconnectedInputError, NullTypeGradError

        spec = self.spec
        phi = pt.matrix("phi", dtype="float64", shape=(spec.n, spec.P))
        f = symbolic_mean(spec, phi)
        if f.ndim != 1:
            raise ModelFunctionError(
                f"the model function must return one value per observation (shape ({spec.n},)); "
                f"it returns a {f.ndim}-dimensional result")
        f = pt.broadcast_to(f, (spec.n,)).astype("float64")
        try:
            J = pytensor.grad(f.sum(), phi)
        except (NullTypeGradError, NotImplementedError, TypeError) as err:
            raise ModelFunctionError(
                f"the model function is not differentiable in its parameters ({err}); use "
                "smooth PyTensor operations (pt.exp, pt.log, pt.switch on data, ...)") from err
        except DisconnectedInputError as err:  # pragma: no cover - phi is always connected
            raise ModelFunctionError(str(err)) from err
        self._fj = pytensor.function([phi], [f, J], on_unused_input="ignore")
        # inputs are always contiguous float64 (n, P): skip PyTensor's per-call input checks
        self._fj.trust_input = True

    def _compile_batch(self):
        import pytensor
        import pytensor.tensor as pt

        phi = pt.tensor3("phi", dtype="float64")
        f = symbolic_mean(self.spec, phi)
        self._fb = pytensor.function([phi], f.astype("float64"), on_unused_input="ignore")

    # -- evaluation ----------------------------------------------------------------------
    def fj(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``f`` (n,) and ``J`` (n, P) at ``phi`` (n, P), all observations at once."""
        if self._fj is None:
            self._compile_fj()
        return self._fj(self._checked(phi))

    def _checked(self, phi):
        # the compiled functions trust their input: check the one thing that could go wrong
        phi = np.ascontiguousarray(phi, dtype=float)
        if phi.shape != (self.spec.n, self.spec.P):
            raise ValueError(f"phi must be ({self.spec.n}, {self.spec.P}); got {phi.shape}")
        return phi

    def f(self, phi: np.ndarray) -> np.ndarray:
        """``f`` (n,) at ``phi`` (n, P)."""
        return self.fj(phi)[0]

    def f_batch(self, phi: np.ndarray) -> np.ndarray:
        """``f`` for a batch of parameter sets: ``phi`` (S, n, P) -> (S, n), one call."""
        if self._fb is None:
            self._compile_batch()
        phi = np.ascontiguousarray(phi, dtype=float)
        if phi.ndim != 3 or phi.shape[1:] != (self.spec.n, self.spec.P):
            raise ValueError(f"phi must be (S, {self.spec.n}, {self.spec.P}); got {phi.shape}")
        return np.broadcast_to(self._fb(phi), phi.shape[:2])

    def level_sum(self, term: int = 0) -> sp.csr_matrix:
        """(n, G) indicator of each observation's level of ``spec.reterms[term]``'s factor."""
        if term not in self._level_sum:
            t = self.spec.reterms[term]
            self._level_sum[term] = sp.csr_matrix(
                (np.ones(self.spec.n), (np.arange(self.spec.n), t.refs)),
                shape=(self.spec.n, t.nlevels))
        return self._level_sum[term]

    def group_loglik(self, phi: np.ndarray, sigma: float, r=(), term: int = 0) -> np.ndarray:
        """Per-group log-likelihood of the data for a batch of individual parameters.

        Contract (for SAEM's E-step and for quadrature):

        - ``phi``: (S, n, P) individual parameters of every observation for ``S`` proposals
          (chains, quadrature nodes, ...): build it as ``spec.phi_fixed(beta)[None] + B b``
          with each proposal's random effects; rows follow ``spec.y``.
        - ``sigma``: the error model's scale; ``r``: its shape parameters (combined model).
        - ``term``: the grouping factor is ``spec.reterms[term].group`` (default the first,
          the one with most levels).
        - Returns (S, G): ``sum_{i in group g} log p(y_i | phi_i)``, every normalizing
          constant included, on the original scale of ``y`` (the exponential model adds the
          Jacobian ``-log y_i``). Non-finite means give ``-inf`` for their group.

        One compiled call evaluates all ``S x n`` means; the sums per group are one sparse
        product. No Python loop over groups or proposals.
        """
        spec, em = self.spec, self.spec.error_model
        f = self.f_batch(phi)
        ll = obs_loglik(em, spec.y, f, sigma, np.asarray(r, float))
        ll = np.where(np.isfinite(ll), ll, -np.inf)
        return np.asarray((self.level_sum(term).T @ ll.T).T)

    def check_start(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``fj`` at the start, with an error naming the parameter values and the first bad
        row when the function returns the wrong shape or non-finite values."""
        spec = self.spec
        f, J = self.fj(phi)
        if f.shape != (spec.n,):
            raise ModelFunctionError(f"the model function returned shape {f.shape}; expected "
                                     f"({spec.n},), one value per observation")
        em = spec.error_model
        fw, Jw = em.working_mean(f, J)
        bad = ~(np.isfinite(fw) & np.isfinite(Jw).all(axis=1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            vals = ", ".join(f"{p}={phi[i, j]:.6g}" for j, p in enumerate(spec.params))
            cols = ", ".join(f"{a}={spec.columns[a][i]:.6g}" for a in spec.argnames)
            what = "f" if not np.isfinite(fw[i]) else "its derivative"
            raise ModelFunctionError(
                f"the model function gives a non-finite {what} ({f[i]!r}) at the start values, "
                f"first in row {i} ({cols}) with {vals}; {int(bad.sum())} rows in all"
                + (" (the exponential error model needs f > 0)"
                   if em.name == "exponential" else ""))
        return f, J


_LOG_2PI = float(np.log(2.0 * np.pi))


def obs_loglik(em, y: np.ndarray, f: np.ndarray, sigma: float, r: np.ndarray) -> np.ndarray:
    """Log-likelihood of each observation (broadcasting ``f`` (..., n) against ``y`` (n,))."""
    yw = em.working_response(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        fw, _ = em.working_mean(f)
        sd = sigma * em.g(f, r)
        z = (yw - fw) / sd
        ll = -0.5 * (_LOG_2PI + z**2) - np.log(sd)
        if em.name == "exponential":
            ll = ll - np.log(y)
    return ll
