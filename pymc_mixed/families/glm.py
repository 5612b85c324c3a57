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

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Family", "Gaussian", "Binomial", "Bernoulli", "Poisson", "NegativeBinomial",
           "Gamma", "Link", "GLMResponse", "get_family", "get_link"]

_LOG_2PI = np.log(2.0 * np.pi)
_EPS = np.finfo(float).eps
_THRESH = -np.log(_EPS)  # logit: beyond this mu would round to 0 or 1 (R clamps at 30)


# scipy.special costs ~0.1 s to import; only GLMM fits need it, so it is imported on first use
def gammaln(x):
    from scipy.special import gammaln as f

    return f(x)


def xlogy(x, y):
    from scipy.special import xlogy as f

    return f(x, y)


def ndtr(x):
    from scipy.special import ndtr as f

    return f(x)


# -- links --------------------------------------------------------------------------------------
class Link:
    """A link function ``eta = g(mu)``: NumPy ``linkfun``, ``linkinv``, ``mu_eta`` (d mu / d eta)
    and ``linkinv_graph`` (PyTensor). ``linkinv`` never returns values outside the family's
    mean space for finite ``eta`` (R's clamping), so a wild PIRLS step cannot produce NaN."""

    name = "link"

    def linkfun(self, mu):  # pragma: no cover - abstract
        """``eta = g(mu)``."""
        raise NotImplementedError

    def linkinv(self, eta):  # pragma: no cover - abstract
        """``mu = g^{-1}(eta)``, clamped to the family's mean space."""
        raise NotImplementedError

    def mu_eta(self, eta):  # pragma: no cover - abstract
        """``d mu / d eta``."""
        raise NotImplementedError

    def linkinv_graph(self, eta):  # pragma: no cover - abstract
        """``g^{-1}`` as a PyTensor expression."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class Logit(Link):
    name = "logit"

    def linkfun(self, mu):
        return np.log(mu / (1.0 - mu))

    def linkinv(self, eta):
        e = np.exp(-np.clip(eta, -_THRESH, _THRESH))
        return 1.0 / (1.0 + e)

    def mu_eta(self, eta):
        e = np.exp(-np.abs(eta))
        return np.maximum(e / (1.0 + e) ** 2, _EPS)

    def linkinv_graph(self, eta):
        import pytensor.tensor as pt

        return pt.sigmoid(eta)


class Probit(Link):
    name = "probit"

    def linkfun(self, mu):
        from scipy.special import ndtri

        return ndtri(mu)

    def linkinv(self, eta):
        t = 8.125890664701906  # R: -qnorm(.Machine$double.eps)
        return ndtr(np.clip(eta, -t, t))

    def mu_eta(self, eta):
        return np.maximum(np.exp(-0.5 * eta * eta - 0.5 * _LOG_2PI), _EPS)

    def linkinv_graph(self, eta):
        import pytensor.tensor as pt

        return 0.5 * pt.erfc(-eta / np.sqrt(2.0))


class Cloglog(Link):
    name = "cloglog"

    def linkfun(self, mu):
        return np.log(-np.log1p(-mu))

    def linkinv(self, eta):
        return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), _EPS, 1.0 - _EPS)

    def mu_eta(self, eta):
        eta = np.minimum(eta, 700.0)
        return np.maximum(np.exp(eta - np.exp(eta)), _EPS)

    def linkinv_graph(self, eta):
        import pytensor.tensor as pt

        return -pt.expm1(-pt.exp(eta))


class Log(Link):
    name = "log"

    def linkfun(self, mu):
        return np.log(mu)

    def linkinv(self, eta):
        return np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS)

    def linkinv_graph(self, eta):
        import pytensor.tensor as pt

        return pt.exp(eta)


class Identity(Link):
    name = "identity"

    def linkfun(self, mu):
        return np.asarray(mu, dtype=float)

    def linkinv(self, eta):
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        return np.ones_like(eta, dtype=float)

    def linkinv_graph(self, eta):
        return eta


class Inverse(Link):
    name = "inverse"

    def linkfun(self, mu):
        return 1.0 / mu

    def linkinv(self, eta):
        return 1.0 / eta

    def mu_eta(self, eta):
        return -1.0 / (eta * eta)

    def linkinv_graph(self, eta):
        return 1.0 / eta


class Sqrt(Link):
    name = "sqrt"

    def linkfun(self, mu):
        return np.sqrt(mu)

    def linkinv(self, eta):
        return eta * eta

    def mu_eta(self, eta):
        return 2.0 * eta

    def linkinv_graph(self, eta):
        return eta * eta


_LINKS = {c.name: c for c in (Logit, Probit, Cloglog, Log, Identity, Inverse, Sqrt)}


def get_link(link) -> Link:
    """A :class:`Link` from its name (``"logit"``, ``"probit"``, ``"cloglog"``, ``"log"``,
    ``"identity"``, ``"inverse"``, ``"sqrt"``) or a Link instance."""
    if isinstance(link, Link):
        return link
    try:
        return _LINKS[str(link).lower()]()
    except KeyError:
        raise ValueError(f"unknown link {link!r}; available: {', '.join(sorted(_LINKS))}") \
            from None


# -- the data a family's kernels share ----------------------------------------------------------
@dataclass
class GLMResponse:
    """A response prepared for the kernels: ``y`` (mean scale), trials ``n``, prior weights
    ``pw``, GLM weights ``wt = pw * n`` and the log-likelihood's constant part ``const_obs``
    (per observation, free of ``mu`` and of the dispersion)."""

    y: np.ndarray
    n: np.ndarray
    pw: np.ndarray
    wt: np.ndarray
    const_obs: np.ndarray
    const_sum: float | None = None


def _check_finite(y: np.ndarray, response: str) -> None:
    if not np.all(np.isfinite(y)):
        raise ValueError(f"response {response!r} has non-finite values")


def _numeric(y, response: str, family: str) -> np.ndarray:
    if isinstance(y, pd.Series) and (not pd.api.types.is_numeric_dtype(y)
                                     or pd.api.types.is_bool_dtype(y)):
        raise ValueError(f"response {response!r} is not numeric (dtype {y.dtype}); the "
                         f"{family} family needs numbers")
    y = np.asarray(y, dtype=float)
    _check_finite(y, response)
    return y


def _whole(x: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    return np.abs(x - np.round(x)) <= tol * np.maximum(1.0, np.abs(x))


def _first_bad(y: np.ndarray, bad: np.ndarray) -> str:
    i = int(np.flatnonzero(bad)[0])
    return f"{int(bad.sum())} value(s), e.g. {y[i]:g} in row {i}"


# -- families ------------------------------------------------------------------------------------
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

    def logp_graph(self, y, eta, dispersion=None, weights=None, trials=None):
        import pytensor.tensor as pt

        mu = self._link.linkinv_graph(eta)
        sigma = dispersion
        w = 1.0 if weights is None else weights
        resid = y - mu
        return 0.5 * pt.log(w) - pt.log(sigma) - 0.5 * _LOG_2PI - 0.5 * w * resid**2 / sigma**2


class Binomial(Family):
    """Binomial response: proportions of successes out of ``n`` trials.

    The response can be 0/1, logical, a two-level categorical (the second level is "success",
    as in R), ``cbind(successes, failures)`` or ``p(successes, trials)``; a proportion with
    ``weights`` takes the weights as the numbers of trials (lme4's convention).
    """

    name = "binomial"
    default_link = "logit"
    canonical_link = "logit"
    links = ("logit", "probit", "cloglog", "log", "identity")

    def validate(self, y, response: str) -> np.ndarray:
        if isinstance(y, pd.Series) and isinstance(y.dtype, pd.CategoricalDtype):
            used = list(y.cat.remove_unused_categories().cat.categories)
            cats = list(y.cat.categories)
            if len(used) > 2:
                raise ValueError(
                    f"response {response!r} is categorical with {len(used)} levels "
                    f"({', '.join(map(str, used))}); the binomial family needs two (the "
                    f"second is 'success'); use e.g. ({response} == '{used[-1]}')")
            if len(used) == 2:
                success = used[1]
            elif len(cats) == 2:
                success = cats[1]
            else:
                raise ValueError(f"response {response!r} has the single level {used[0]!r}: "
                                 "cannot tell success from failure")
            return (y == success).to_numpy(dtype=float)
        if isinstance(y, pd.Series) and pd.api.types.is_bool_dtype(y):
            return y.to_numpy(dtype=float)
        if isinstance(y, pd.Series) and not pd.api.types.is_numeric_dtype(y):
            vals = pd.unique(y.dropna())
            if len(vals) == 2:
                success = sorted(map(str, vals))[-1]
                return (y.astype(str) == success).to_numpy(dtype=float)
            raise ValueError(f"response {response!r} is not numeric (dtype {y.dtype}) and does "
                             f"not have two values; the binomial family needs 0/1, logical, "
                             f"a two-level factor or proportions")
        y = _numeric(y, response, self.name)
        bad = (y < 0) | (y > 1)
        if bad.any():
            raise ValueError(f"response {response!r} must be proportions in [0, 1] (or 0/1) for "
                             f"the binomial family; {_first_bad(y, bad)} outside; for counts of "
                             f"successes use cbind(successes, failures) or p(successes, trials)")
        return y

    def validate_trials(self, y, trials, response: str) -> np.ndarray:
        """For ``cbind(s, f)`` / ``p(s, n)``: whole, non-negative trials and successes."""
        y = np.asarray(y, dtype=float)
        n = np.asarray(trials, dtype=float)
        _check_finite(n, response)
        bad = (n < 0) | ~_whole(n)
        if bad.any():
            raise ValueError(f"the trials in response {response!r} must be whole numbers >= 0; "
                             f"{_first_bad(n, bad)}")
        _check_finite(y, response)
        s = y * n
        bad = (y < 0) | (y > 1)
        if bad.any():
            raise ValueError(f"response {response!r} has successes outside [0, trials] (negative "
                             f"counts of successes or failures): {_first_bad(s, bad)}")
        bad = ~_whole(s)
        if bad.any():
            raise ValueError(f"response {response!r} has non-integer numbers of successes: "
                             f"{_first_bad(s, bad)}")
        return y

    def prepare(self, y, trials=None, weights=None, response: str = "response") -> GLMResponse:
        y = np.asarray(y, dtype=float)
        if trials is None:
            # lme4: for a proportion response the prior weights are the numbers of trials
            n = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
            pw = np.ones_like(y)
            s = y * n
            bad = ~_whole(s)
            if bad.any():
                what = "the weights (trials)" if weights is not None else "1 trial"
                raise ValueError(f"response {response!r} times {what} gives non-integer numbers "
                                 f"of successes: {_first_bad(s, bad)}; give the trials as "
                                 f"weights=, or use cbind(successes, failures)")
        else:
            n = np.asarray(trials, dtype=float)
            pw = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
        return GLMResponse(y=y, n=n, pw=pw, wt=pw * n, const_obs=self._const(y, n, pw))

    def _const(self, y, n, pw):
        s = np.round(y * n)
        return pw * (gammaln(n + 1.0) - gammaln(s + 1.0) - gammaln(n - s + 1.0))

    def variance(self, mu, dispersion=None):
        return mu * (1.0 - mu)

    def dvariance(self, mu):
        return 1.0 - 2.0 * mu

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all((mu > 0) & (mu < 1)))

    def mustart(self, r):
        return (r.wt * r.y + 0.5) / (r.wt + 1.0)

    def dev_resids(self, y, mu, wt, dispersion=None):
        return 2.0 * wt * (xlogy(y, y / mu) + xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))

    def loglik_obs(self, r, mu, dispersion=None):
        return r.const_obs + r.wt * (xlogy(r.y, mu) + xlogy(1.0 - r.y, 1.0 - mu))

    def pirls_deviance(self, r, mu, dispersion=None):
        l1m = np.log1p(-mu)
        return -2.0 * float(np.dot(r.wt, r.y * (np.log(mu) - l1m) + l1m))

    def loglik(self, r, mu, dispersion=None):
        if not self.valid_mu(mu):  # 0 * log(0) terms need the careful form
            return super().loglik(r, mu, dispersion)
        return self._loglik_from_pirls(r, mu, dispersion)

    def logp_graph(self, y, eta, dispersion=None, weights=None, trials=None):
        """Binomial log-likelihood of proportions ``y``. ``weights`` are the GLM weights (prior
        weights times trials, lme4's convention, as :func:`pymc_mixed.graph.family_weights`
        gives them); the trials default to the weights, i.e. unit prior weights."""
        import pytensor.tensor as pt

        if trials is not None:
            n = trials
            pw = 1.0 if weights is None else weights / trials
        else:
            n = 1.0 if weights is None else weights
            pw = 1.0
        s = y * n
        if self.link == "logit":  # stable logs of mu and 1 - mu
            log_mu, log_1mmu = -pt.softplus(-eta), -pt.softplus(eta)
        else:
            mu = self._link.linkinv_graph(eta)
            log_mu, log_1mmu = pt.log(mu), pt.log1p(-mu)
        logc = pt.gammaln(n + 1.0) - pt.gammaln(s + 1.0) - pt.gammaln(n - s + 1.0)
        # 0 * log(0) = 0 when all trials succeed or fail
        out = logc + pt.switch(pt.eq(s, 0), 0.0, s * log_mu) + \
            pt.switch(pt.eq(n - s, 0), 0.0, (n - s) * log_1mmu)
        return out * pw


class Bernoulli(Binomial):
    """The binomial with one trial per observation (0/1, logical or two-level responses)."""

    name = "bernoulli"


class Poisson(Family):
    """Counts. Non-integer or negative responses are rejected."""

    name = "poisson"
    default_link = "log"
    canonical_link = "log"
    links = ("log", "identity", "sqrt")

    def validate(self, y, response: str) -> np.ndarray:
        y = _numeric(y, response, self.name)
        bad = y < 0
        if bad.any():
            raise ValueError(f"response {response!r} has negative counts, outside the support "
                             f"of the {self.name} family: {_first_bad(y, bad)}")
        bad = ~_whole(y)
        if bad.any():
            raise ValueError(f"response {response!r} has non-integer counts for the {self.name} "
                             f"family: {_first_bad(y, bad)}")
        return y

    def _const(self, y, n, pw):
        return -pw * gammaln(y + 1.0)

    def variance(self, mu, dispersion=None):
        return mu

    def dvariance(self, mu):
        return np.ones_like(mu)

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def mustart(self, r):
        return r.y + 0.1

    def dev_resids(self, y, mu, wt, dispersion=None):
        return 2.0 * wt * (xlogy(y, y / mu) - (y - mu))

    def loglik_obs(self, r, mu, dispersion=None):
        return r.const_obs + r.wt * (xlogy(r.y, mu) - mu)

    def pirls_deviance(self, r, mu, dispersion=None):
        return -2.0 * float(np.dot(r.wt, r.y * np.log(mu) - mu))

    def loglik(self, r, mu, dispersion=None):
        if not self.valid_mu(mu):
            return super().loglik(r, mu, dispersion)
        return self._loglik_from_pirls(r, mu, dispersion)

    def logp_graph(self, y, eta, dispersion=None, weights=None, trials=None):
        import pytensor.tensor as pt

        if self.link == "log":
            out = y * eta - pt.exp(eta) - pt.gammaln(y + 1.0)
        else:
            mu = self._link.linkinv_graph(eta)
            out = pt.switch(pt.eq(y, 0), 0.0, y * pt.log(mu)) - mu - pt.gammaln(y + 1.0)
        return out if weights is None else weights * out


class NegativeBinomial(Poisson):
    """Negative binomial NB2: ``Var(y) = mu + mu^2 / k``; the size ``k`` (the dispersion) is
    estimated with the other parameters (``MASS::glm.nb``'s ``theta``, ``glmer.nb``)."""

    name = "negativebinomial"
    links = ("log", "identity", "sqrt")
    has_dispersion = True
    dispersion_kind = "shape"
    dispersion_name = "dispersion"

    def variance(self, mu, dispersion=None):
        return mu + mu * mu / dispersion

    def dvariance(self, mu):
        raise NotImplementedError("the negative binomial variance depends on its dispersion")

    def dev_resids(self, y, mu, wt, dispersion=None):
        k = dispersion
        return 2.0 * wt * (xlogy(y, y / mu) - (y + k) * np.log((y + k) / (mu + k)))

    def loglik_obs(self, r, mu, dispersion=None):
        k = dispersion
        y = r.y
        return r.const_obs + r.wt * (gammaln(y + k) - gammaln(k) + k * np.log(k / (k + mu))
                                     + xlogy(y, mu / (k + mu)))

    def pirls_deviance(self, r, mu, dispersion=None):
        k = dispersion
        return -2.0 * float(np.dot(r.wt, r.y * np.log(mu) - (r.y + k) * np.log(k + mu)))

    def loglik(self, r, mu, dispersion=None):  # the constants depend on k: sum them in full
        return float(np.sum(self.loglik_obs(r, mu, dispersion)))

    def dispersion_start(self, r, mu, p):
        # moment estimate of k from the Poisson fit: sum((y - mu)^2 - mu) = sum(mu^2) / k
        excess = np.sum(r.wt * ((r.y - mu) ** 2 - mu))
        k = np.sum(r.wt * mu**2) / excess if excess > 0 else 100.0
        return float(np.clip(k, 1e-2, 1e4))

    def logp_graph(self, y, eta, dispersion=None, weights=None, trials=None):
        import pytensor.tensor as pt

        k = dispersion
        mu = self._link.linkinv_graph(eta)
        out = (pt.gammaln(y + k) - pt.gammaln(k) - pt.gammaln(y + 1.0)
               + k * pt.log(k / (k + mu)) + pt.switch(pt.eq(y, 0), 0.0, y * pt.log(mu / (k + mu))))
        return out if weights is None else weights * out


class Gamma(Family):
    """Positive continuous response with ``Var(y) = phi mu^2``; ``phi`` (the dispersion,
    ``1 / shape``) is estimated; prior weights are precisions (shape ``pw / phi``)."""

    name = "gamma"
    default_link = "inverse"
    canonical_link = "inverse"
    links = ("inverse", "log", "identity")
    has_dispersion = True
    dispersion_kind = "scale"
    dispersion_name = "dispersion"

    def validate(self, y, response: str) -> np.ndarray:
        y = _numeric(y, response, self.name)
        bad = y <= 0
        if bad.any():
            raise ValueError(f"response {response!r} must be positive for the gamma family: "
                             f"{_first_bad(y, bad)}")
        return y

    def variance(self, mu, dispersion=None):
        phi = 1.0 if dispersion is None else dispersion
        return phi * mu * mu

    def dvariance(self, mu):
        return 2.0 * mu

    def valid_mu(self, mu):
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def dev_resids(self, y, mu, wt, dispersion=None):
        return -2.0 * wt * (np.log(y / mu) - (y - mu) / mu)

    def pirls_deviance(self, r, mu, dispersion=None):
        return 2.0 * float(np.dot(r.wt, np.log(mu) + r.y / mu)) / self.phi(dispersion)

    def _const(self, y, n, pw):
        return np.where(pw > 0, -np.log(y), 0.0)

    def loglik_obs(self, r, mu, dispersion=None):
        a = r.wt / dispersion  # shape
        with np.errstate(divide="ignore", invalid="ignore"):
            out = xlogy(a, a * r.y / mu) - a * r.y / mu - gammaln(np.where(a > 0, a, 1.0))
        return np.where(r.wt > 0, out + r.const_obs, 0.0)

    def dispersion_start(self, r, mu, p):
        # Pearson estimate, as summary.glm
        return float(np.sum(r.wt * ((r.y - mu) / mu) ** 2) / max(np.count_nonzero(r.wt) - p, 1))

    def logp_graph(self, y, eta, dispersion=None, weights=None, trials=None):
        import pytensor.tensor as pt

        mu = self._link.linkinv_graph(eta)
        a = 1.0 / dispersion if weights is None else weights / dispersion
        return a * pt.log(a * y / mu) - a * y / mu - pt.log(y) - pt.gammaln(a)


_FAMILIES = {
    "gaussian": Gaussian, "normal": Gaussian,
    "binomial": Binomial, "bernoulli": Bernoulli,
    "poisson": Poisson,
    "negativebinomial": NegativeBinomial, "negative_binomial": NegativeBinomial,
    "negbinomial": NegativeBinomial, "nbinom2": NegativeBinomial, "nb": NegativeBinomial,
    "gamma": Gamma,
}


def get_family(family, link: str | None = None) -> Family:
    """Turn ``"binomial"``, ``"poisson"``, a Family class or instance into a Family instance."""
    if isinstance(family, Family):
        return family
    if isinstance(family, type) and issubclass(family, Family):
        return family(link)
    if isinstance(family, str):
        try:
            cls = _FAMILIES[family.lower().replace(" ", "").replace("-", "")]
        except KeyError:
            raise ValueError(
                f"unknown family {family!r}; available: {', '.join(sorted(_FAMILIES))}"
            ) from None
        return cls(link)
    raise TypeError(f"family must be a name or a Family, got {family!r}")
