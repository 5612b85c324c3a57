"""The E-step: Metropolis-Hastings on every group's random parameters, all chains at once.

The state is ``psi`` (C, G, k) (chains x groups x random parameters) with its mean ``f`` (C, n)
and per-group log-likelihood ``ll`` (C, G). Each proposal is one compiled kernel call for all
chains and groups; acceptance is per (chain, group), in NumPy. The kernels are saemix's
(Kuhn & Lavielle 2005):

1. independent draws from the current population distribution ``N(mu_i, Psi)``
   (the prior cancels: accept on the likelihood ratio);
2. a random walk on one coordinate at a time, step ``s2[u]`` per coordinate;
3. a random walk on a random block of ``m`` coordinates (``m`` cycles through 2..k);
4. (optional) independent Gaussian draws around each group's conditional mode with the
   Gauss-Newton covariance.

Step sizes move toward the target acceptance rate (0.4) after every iteration:
``s *= 1 + 0.4 (rate - target)``, as saemix does.
"""

from __future__ import annotations

from dataclasses import dataclass

import weakref

import numpy as np

from .batch import PaddedLayout, compile_group_loglik

__all__ = ["ChainState", "Evaluator", "estep"]


@dataclass
class ChainState:
    """The current samples and what was computed from them."""

    psi: np.ndarray      # (C, G, k)
    f: np.ndarray        # (C, G, m) means (original scale, padded per group)
    ll: np.ndarray       # (C, G) log p(y_i | psi_i)


class Evaluator:
    """``psi`` -> ``(f, ll)`` with the current fixed and error parameters: one compiled call
    (:mod:`.batch`), ``f`` in the padded per-group layout (S, G, m)."""

    _cache = weakref.WeakKeyDictionary()   # kernel -> compiled function: one per model

    def __init__(self, layout, kernel):
        self.lay = layout
        spec = layout.spec
        self.em = spec.error_model
        self.pad = PaddedLayout(layout.refs, layout.G)
        if kernel not in Evaluator._cache:
            Evaluator._cache[kernel] = compile_group_loglik(spec, layout, self.pad)
        self._fn = Evaluator._cache[kernel]
        self.phi0 = None
        self.sigma = np.float64(1.0)
        self.shape = np.zeros(max(1, self.em.nshape))
        self.calls = 0

    def set_params(self, beta, sigma, shape) -> None:
        """Fix ``beta``, the error scale and shape for the next evaluations."""
        self.phi0 = np.ascontiguousarray(self.pad.pad(self.lay.spec.phi_fixed(
            np.asarray(beta, float))))
        self.sigma = np.float64(sigma)
        self.shape = np.r_[np.asarray(shape, float), np.zeros(1)][:max(1, self.em.nshape)]

    def __call__(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        f, ll = self._fn(np.ascontiguousarray(psi, dtype=np.float64), self.phi0, self.sigma,
                         self.shape)
        return f, np.where(np.isnan(ll), -np.inf, ll)

    def flat(self, f: np.ndarray) -> np.ndarray:
        """(S, G, m) padded means -> (S, n) in the data's row order."""
        return self.pad.flat(f)

    def state(self, psi: np.ndarray) -> ChainState:
        """A fresh state at ``psi``."""
        f, ll = self(psi)
        return ChainState(psi, f, ll)


def _accept(state: ChainState, psi_new, f_new, ll_new, log_ratio, rng) -> np.ndarray:
    """Replace (chain, group) entries where ``log U < log_ratio``; returns the (C, G) mask."""
    acc = log_ratio > np.log(rng.random(log_ratio.shape))
    state.psi = np.where(acc[:, :, None], psi_new, state.psi)
    state.ll = np.where(acc, ll_new, state.ll)
    state.f = np.where(acc[:, :, None], f_new, state.f)
    return acc


def _prior(psi, mu, Pinv) -> np.ndarray:
    d = psi - mu
    return -0.5 * np.einsum("cga,ab,cgb->cg", d, Pinv, d)


@dataclass
class Proposals:
    """Random-walk step sizes (kernel 2: per coordinate; kernel 3: per coordinate and block
    size) and the acceptance rates of the last iteration."""

    s2: np.ndarray
    s3: np.ndarray
    rates: dict

    @classmethod
    def start(cls, Psi: np.ndarray) -> "Proposals":
        sd = np.sqrt(np.diag(Psi))
        k = len(sd)
        return cls(0.5 * sd, np.tile(0.5 * sd[:, None], (1, k + 1)), {})


def estep(state: ChainState, ev: Evaluator, mu, Psi, props: Proposals, nmcmc, rng,
          iteration: int, target: float = 0.4, mode=None) -> ChainState:
    """One SAEM simulation step: ``nmcmc[0..2]`` sweeps of kernels 1-3 (and kernel 4 when
    ``mode = (centre (G, k), chol (G, k, k))`` is given). Draws come from ``rng`` in a fixed
    order, so a seed reproduces the chains exactly."""
    C, G, k = state.psi.shape
    Pinv = np.linalg.inv(Psi)
    Lpsi = np.linalg.cholesky(Psi)
    rates = {}
    # kernel 1: the population distribution
    for _ in range(nmcmc[0]):
        new = mu + rng.standard_normal((C, G, k)) @ Lpsi.T
        f, ll = ev(new)
        rates["pop"] = _accept(state, new, f, ll, ll - state.ll, rng).mean()
    # kernel 2: one coordinate at a time
    acc2 = np.zeros(k)
    for _ in range(nmcmc[1]):
        for u in range(k):
            new = state.psi.copy()
            new[:, :, u] += props.s2[u] * rng.standard_normal((C, G))
            f, ll = ev(new)
            lr = ll + _prior(new, mu, Pinv) - state.ll - _prior(state.psi, mu, Pinv)
            acc2[u] += _accept(state, new, f, ll, lr, rng).mean()
    if nmcmc[1]:
        props.s2 *= 1.0 + 0.4 * (acc2 / nmcmc[1] - target)
        rates["rw"] = float(acc2.mean() / nmcmc[1])
    # kernel 3: a random block of m coordinates, m cycling through 2..k
    if k > 1 and nmcmc[2]:
        m = iteration % (k - 1) + 2
        acc3 = 0.0
        for _ in range(nmcmc[2]):
            block = np.sort(rng.choice(k, size=m, replace=False))
            new = state.psi.copy()
            new[:, :, block] += props.s3[block, m] * rng.standard_normal((C, G, m))
            f, ll = ev(new)
            lr = ll + _prior(new, mu, Pinv) - state.ll - _prior(state.psi, mu, Pinv)
            a = _accept(state, new, f, ll, lr, rng).mean()
            props.s3[block, m] *= 1.0 + 0.4 * (a - target)
            acc3 += a
        rates["block"] = float(acc3 / nmcmc[2])
    if mode is not None:
        rates["mode"] = _mode_kernel(state, ev, mu, Pinv, mode, rng)
    props.rates = rates
    return state


def _mode_kernel(state, ev, mu, Pinv, mode, rng) -> float:
    """Independent Gaussian proposals ``centre + L z`` (Hastings ratio with the proposal)."""
    centre, L = mode
    C, G, k = state.psi.shape
    z = rng.standard_normal((C, G, k))
    new = centre[None] + np.einsum("gab,cgb->cga", L, z)
    f, ll = ev(new)
    Linv = np.linalg.inv(L)
    z_old = np.einsum("gab,cgb->cga", Linv, state.psi - centre[None])
    q_new, q_old = -0.5 * np.sum(z**2, axis=2), -0.5 * np.sum(z_old**2, axis=2)
    lr = (ll + _prior(new, mu, Pinv) - q_new) - (state.ll + _prior(state.psi, mu, Pinv) - q_old)
    return float(_accept(state, new, f, ll, lr, rng).mean())
