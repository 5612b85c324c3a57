"""One compiled function for the E-step: samples ``psi`` (S, G, k) -> means and per-group
log-likelihoods, with the observations laid out per group (G, m) and padded.

In that layout ``phi`` is ``psi`` broadcast along the rows of each group (no gather) and the
per-group sum is a reduction over the last axis, so the whole evaluation (user's mean, error
model, sum) is elementwise ops plus one sum in a single numba-compiled call: about 4x less
per-call overhead than the mean alone followed by NumPy for the error model and a sparse
group sum. Padded rows repeat their group's first row (so the mean stays finite) and are
masked out of the sum.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..kernel import call_function

__all__ = ["PaddedLayout", "compile_group_loglik"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class PaddedLayout:
    """Where each observation sits in the (G, m) per-group layout."""

    def __init__(self, refs: np.ndarray, G: int):
        nobs = np.bincount(refs, minlength=G)
        order = np.argsort(refs, kind="stable")
        starts = np.r_[0, np.cumsum(nobs)[:-1]]
        pos = np.empty(len(refs), dtype=int)
        pos[order] = np.arange(len(refs)) - np.repeat(starts, nobs)
        self.refs, self.pos, self.G, self.m = refs, pos, G, int(nobs.max())
        self.mask = np.zeros((G, self.m), bool)
        self.mask[refs, pos] = True
        first = np.zeros(G, dtype=int)
        first[refs[::-1]] = np.arange(len(refs))[::-1]
        fill = np.repeat(first[:, None], self.m, axis=1)
        fill[refs, pos] = np.arange(len(refs))
        self.source = fill                      # (G, m) observation shown in each slot

    def pad(self, x: np.ndarray) -> np.ndarray:
        """(n, ...) per observation -> (G, m, ...), padded slots repeating a real row."""
        return np.asarray(x)[self.source]

    def flat(self, x: np.ndarray) -> np.ndarray:
        """(..., G, m) -> (..., n) in the data's row order."""
        return x[..., self.refs, self.pos]


def _error_loglik(em, yw, logy, f, sigma, r):
    """Symbolic per-observation log-likelihood (the error models of :mod:`..error_models`)."""
    import pytensor.tensor as pt

    if em.name == "exponential":
        fw, g = pt.log(f), 1.0
    elif em.name == "proportional":
        fw, g = f, pt.abs(f)
    elif em.name == "combined":
        fw, g = f, 1.0 + r[0] * pt.abs(f)
    else:
        fw, g = f, 1.0
    sd = sigma * g
    ll = -0.5 * (_LOG_2PI + ((yw - fw) / sd) ** 2) - pt.log(sd)
    return ll - logy if em.name == "exponential" else ll


def compile_group_loglik(spec, layout, pad: PaddedLayout):
    """A compiled ``(psi (S, G, k), phi0 (G, m, P), sigma, r) -> (f (S, G, m), ll (S, G))``."""
    import pytensor
    import pytensor.tensor as pt

    em = spec.error_model
    psi = pt.tensor3("psi", dtype="float64")
    phi0 = pt.tensor3("phi0", dtype="float64")
    sigma = pt.scalar("sigma", dtype="float64")
    r = pt.vector("r", dtype="float64")
    named = {}
    coord = {int(j): c for c, j in enumerate(layout.param_of)}
    for j, name in enumerate(spec.params):
        named[name] = psi[:, :, None, coord[j]] if j in coord else phi0[None, :, :, j]
    padded = dataclasses.replace(spec, columns={a: pad.pad(v) for a, v in spec.columns.items()})
    f = pt.as_tensor_variable(call_function(padded, named)).astype("float64")
    f = pt.broadcast_to(f, (psi.shape[0], pad.G, pad.m))
    y = pad.pad(spec.y)
    yw = em.working_response(y)
    logy = np.log(y) if em.name == "exponential" else 0.0
    ll = _error_loglik(em, pt.constant(yw), logy, f, sigma, r)
    ll = pt.switch(pt.constant(pad.mask) & pt.isfinite(ll), ll,
                   pt.switch(pt.constant(pad.mask), -np.inf, 0.0))
    fn = pytensor.function([psi, phi0, sigma, r], [f, ll.sum(axis=-1)],
                           on_unused_input="ignore")
    fn.trust_input = True
    return fn
