"""The one adapter from a nonlinear spec to a linear mixed model (``ModelSpec``).

Linearized at ``(beta, b)``, ``y ~ f + J (phi' - phi)`` is an LMM with pseudo-response
``y - f + J A beta + J B b``, fixed design ``J A`` and, per ReTerm, ``z`` times the Jacobian
column of the parameter each column feeds. LME/RELME fit it, and residuals (pwres, cwres) read
its designs. If ModelSpec's constructor changes, this is the one place to follow it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..spec import ModelSpec

__all__ = ["linearized_lmm"]


def linearized_lmm(spec, f, J, beta, b_blocks) -> ModelSpec:
    """The one adapter from a nonlinear spec to the linear mixed model linearized at
    ``(beta, b)`` (``f``, ``J`` on the original scale, at ``phi = A beta + B b``)."""
    em = spec.error_model
    fw, Jw = em.working_mean(f, J)
    X = spec.fixed_jacobian(Jw)
    zs = spec.random_jacobians(Jw)
    terms = [dataclasses.replace(t, z=z, design=None) for t, z in zip(spec.reterms, zs)]
    ypseudo = em.working_response(spec.y) - fw + X @ beta
    for t, b in zip(terms, b_blocks):
        ypseudo = ypseudo + np.einsum("ij,ij->i", t.z, b[t.refs])
    w = None if em.name in ("constant", "exponential") else 1.0 / em.g(f, np.zeros(0))**2
    return ModelSpec(formula="<nonlinear model, linearized>", response=spec.response,
                     y=ypseudo, X=X, xnames=spec.xnames, reterms=terms, family=spec.family,
                     weights=w)
