"""Response distributions and link functions.

A :class:`Family` knows its link, how to check a response for support, and its log-likelihood
both numerically (NumPy, for the fast kernels) and symbolically (PyTensor, for the model graph).
The Gaussian family with identity link is the linear mixed model.

Conventions shared by the NumPy pieces (the PIRLS / AGQ kernels) and ``logp_graph``:

* ``y`` is the response on the mean scale: a proportion of successes for the binomial.
* ``n`` are binomial trials (ones for the other families) and ``pw`` prior weights; the
  "GLM weight" is ``wt = pw * n`` (R's ``weights`` inside ``glm.fit``). Binomial, Poisson and
  negative binomial treat prior weights as frequencies (``pw * log p(y)``, as R's ``aic``);
  Gaussian and Gamma treat them as precisions (the dispersion of observation ``i`` is
  ``phi / pw_i``), as the linear mixed model does.
* ``dispersion`` is the residual standard deviation ``sigma`` for the Gaussian, ``phi``
  (``1 / shape``, the squared coefficient of variation) for the Gamma, and the size ``k`` of the
  negative binomial (``Var(y) = mu + mu^2 / k``, R's ``theta`` in ``MASS::glm.nb``); None
  for the binomial and Poisson. :meth:`Family.phi` turns it into the scale that multiplies
  the variance function (``sigma^2``, ``phi``, 1).
* :meth:`Family.variance` is the variance of a unit-weight observation, dispersion included,
  so the Fisher information of ``eta_i`` is ``wt_i * mu_eta^2 / variance(mu)`` for every
  family: the PIRLS weights.
* Log-likelihoods include every normalizing constant (``log choose(n, ny)``, ``-log y!``, ...).

:meth:`Family.prepare` turns a response, trials and prior weights into a
:class:`GLMResponse` that the kernels share; it implements lme4's convention that for the
binomial with a proportion response and ``weights``, the weights are the numbers of trials.
"""

from __future__ import annotations

import numpy as np

from .links import _LINKS, Link, get_link
from .response import GLMResponse, _numeric

__all__ = ["Family", "Gaussian"]

_LOG_2PI = np.log(2.0 * np.pi)


class Family:
    """Base class: a response distribution with a link function.

    Subclasses define ``name``, ``default_link``, ``links`` (allowed names), ``has_dispersion``,
    ``canonical_link`` and the methods below. ``dispersion_kind`` is ``"scale"`` when the
    dispersion ``phi`` scales the whole log-likelihood (Gaussian, Gamma: PIRLS weights are
    divided by it), ``"shape"`` when it enters the variance function (negative binomial).
    """

    name = "family"
    default_link = "identity"
    canonical_link = "identity"
    links: tuple[str, ...] = tuple(_LINKS)
    has_dispersion = False
    dispersion_kind: str | None = None
    dispersion_name: str | None = None  # what the dispersion is called in results and draws

    def __init__(self, link: str | None = None):
        link = link or self.default_link
        name = link.name if isinstance(link, Link) else str(link).lower()
        if name not in self.links:
            raise ValueError(f"link {link!r} is not available for the {self.name} family; "
                             f"use one of {', '.join(self.links)}")
        self.link = name
        self._link = get_link(link)

    # -- response ------------------------------------------------------------------------------
    def validate(self, y, response: str) -> np.ndarray:
        """Check ``y`` lies in the support; return it as float. Errors name the response."""
        return _numeric(y, response, self.name)

    def prepare(self, y, trials=None, weights=None) -> GLMResponse:
        """The arrays the kernels need: see :class:`GLMResponse` and the module notes."""
        y = np.asarray(y, dtype=float)
        pw = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
        n = np.ones_like(y)
        return GLMResponse(y=y, n=n, pw=pw, wt=pw * n, const_obs=self._const(y, n, pw))

    def _const(self, y, n, pw) -> np.ndarray:
        return np.zeros_like(y)

    # -- the mean and its link ------------------------------------------------------------------
    def linkfun(self, mu):
        return self._link.linkfun(mu)

    def linkinv(self, eta):
        return self._link.linkinv(eta)

    def mu_eta(self, eta):
        return self._link.mu_eta(eta)

    def variance(self, mu, dispersion=None):
        """Variance of ``y`` given ``mu`` for unit weight, dispersion included."""
        raise NotImplementedError  # pragma: no cover

    @property
    def is_canonical(self) -> bool:
        """Canonical link: the PIRLS (Fisher) weights are the observed information."""
        return self.link == self.canonical_link

    def dvariance(self, mu):
        """Derivative of the variance function ``V(mu)`` (dispersion excluded)."""
        raise NotImplementedError  # pragma: no cover

    def phi(self, dispersion) -> float:
        """The scale multiplying the variance function (1 unless ``dispersion_kind`` is
        ``"scale"``)."""
        return 1.0 if dispersion is None or self.dispersion_kind != "scale" else dispersion

    def valid_mu(self, mu) -> bool:
        """Is every mean in the family's mean space (PIRLS backs off when not)?"""
        return bool(np.all(np.isfinite(mu)))

    def mustart(self, r: GLMResponse) -> np.ndarray:
        """Starting means for the GLM fit (R's ``family$initialize``)."""
        return r.y.copy()

    # -- deviance and likelihood ----------------------------------------------------------------
    def dev_resids(self, y, mu, wt, dispersion=None):
        """Unit deviances times the GLM weight (R's ``dev.resids``); for families whose
        dispersion is a scale, the deviance for unit scale."""
        raise NotImplementedError  # pragma: no cover

    def loglik_obs(self, r: GLMResponse, mu, dispersion=None) -> np.ndarray:
        """Per-observation log-likelihood, every normalizing constant included."""
        raise NotImplementedError  # pragma: no cover

    def loglik(self, r: GLMResponse, mu, dispersion=None) -> float:
        return float(np.sum(self.loglik_obs(r, mu, dispersion)))

    def _loglik_from_pirls(self, r: GLMResponse, mu, dispersion=None) -> float:
        # for families whose pirls_deviance is exactly -2 x (log-likelihood - constant part)
        if r.const_sum is None:
            r.const_sum = float(np.sum(r.const_obs))
        return r.const_sum - 0.5 * self.pirls_deviance(r, mu, dispersion)

    def unscaled_deviance(self, r: GLMResponse, mu, dispersion=None) -> np.ndarray:
        """``-2 log p(y_i | mu_i)`` up to terms free of ``mu``: what PIRLS minimizes. For
        scale families, the deviance divided by the dispersion."""
        d = self.dev_resids(r.y, mu, r.wt, dispersion)
        if self.dispersion_kind == "scale":
            d = d / self.phi(dispersion)
        return d

    def pirls_deviance(self, r: GLMResponse, mu, dispersion=None) -> float:
        """``-2 log p(y | mu)`` summed, up to a constant free of ``mu``: what PIRLS compares
        between steps. Families override it with a cheaper expression than the deviance."""
        return float(np.sum(self.unscaled_deviance(r, mu, dispersion)))

    def pearson_resids(self, r: GLMResponse, mu, dispersion=None) -> np.ndarray:
        return (r.y - mu) * np.sqrt(r.wt / self.variance(mu, dispersion))

    def deviance_resids(self, r: GLMResponse, mu, dispersion=None) -> np.ndarray:
        d = np.maximum(self.dev_resids(r.y, mu, r.wt, dispersion), 0.0)
        return np.sign(r.y - mu) * np.sqrt(d)

    # -- graph -------------------------------------------------------------------------------------
    def logp_graph(self, y, eta, dispersion=None, weights=None, trials=None):
        """Pointwise log-likelihood as a PyTensor expression of the linear predictor ``eta``
        (normalizing constants included; ``weights`` are prior weights, ``trials`` the binomial
        trials, both optional)."""
        raise NotImplementedError  # pragma: no cover

    def dispersion_start(self, r: GLMResponse, mu, p: int) -> float | None:
        """A starting value for the dispersion from a GLM fit's means, or None."""
        return None

    def simulate(self, mu, dispersion, trials, rng, weights=None) -> np.ndarray:
        """Responses drawn at means ``mu`` (any shape ending in the observations) with the
        dispersion (broadcastable to ``mu``, or None) and the binomial ``trials``, on the
        scale of ``spec.y`` (proportions for the binomial)."""
        raise NotImplementedError(f"drawing responses from the {self.name!r} family")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link!r})"


class Gaussian(Family):
    """Normal response; with the identity link this is the linear mixed model.
    ``dispersion`` is the residual standard deviation ``sigma``; prior weights are precisions."""

    name = "gaussian"
    default_link = "identity"
    canonical_link = "identity"
    links = ("identity", "log", "inverse", "sqrt")
    has_dispersion = True
    dispersion_kind = "scale"
    dispersion_name = "sigma"

    def phi(self, dispersion):
        return 1.0 if dispersion is None else dispersion**2

    def variance(self, mu, dispersion=None):
        return np.full_like(mu, self.phi(dispersion), dtype=float)

    def dvariance(self, mu):
        return np.zeros_like(mu)

    def dev_resids(self, y, mu, wt, dispersion=None):
        return wt * (y - mu) ** 2

    def pirls_deviance(self, r, mu, dispersion=None):
        res = r.y - mu
        return float(np.dot(r.wt * res, res)) / self.phi(dispersion)

    def _const(self, y, n, pw):
        with np.errstate(divide="ignore"):
            return np.where(pw > 0, 0.5 * np.log(np.where(pw > 0, pw, 1.0)) - 0.5 * _LOG_2PI, 0.0)

    def loglik_obs(self, r, mu, dispersion=None):
        phi = self.phi(dispersion)
        keep = r.pw > 0
        return r.const_obs - keep * 0.5 * np.log(phi) - 0.5 * r.wt * (r.y - mu) ** 2 / phi

    def valid_mu(self, mu):
        ok = np.all(np.isfinite(mu))
        if ok and self.link in ("log", "sqrt"):
            ok = np.all(mu > 0)
        return bool(ok)

    def mustart(self, r):
        if self.link in ("log", "inverse"):
            return np.where(r.y > 0, r.y, np.mean(np.abs(r.y)) + 0.1)
        return r.y.copy()

    def dispersion_start(self, r, mu, p):
        return float(np.sqrt(np.sum(r.wt * (r.y - mu) ** 2) / max(np.count_nonzero(r.wt) - p, 1)))

    def simulate(self, mu, dispersion, trials, rng, weights=None) -> np.ndarray:
        """Normal draws; prior weights are precisions. An observation of weight zero has no
        distribution (it is left out of the fit): NaN, never an infinite draw."""
        if weights is None:
            return rng.normal(mu, dispersion)
        w = np.asarray(weights, dtype=float)
        scale = dispersion / np.sqrt(np.where(w > 0, w, 1.0))
        return np.where(w > 0, rng.normal(mu, scale), np.nan)

    def logp_graph(self, y, eta, dispersion=None, weights=None, trials=None):
        import pytensor.tensor as pt

        mu = self._link.linkinv_graph(eta)
        sigma = dispersion
        w = 1.0 if weights is None else weights
        resid = y - mu
        return 0.5 * pt.log(w) - pt.log(sigma) - 0.5 * _LOG_2PI - 0.5 * w * resid**2 / sigma**2

