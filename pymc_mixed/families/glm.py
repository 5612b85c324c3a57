"""The GLM families beyond the Gaussian: binomial (and Bernoulli), Poisson, negative binomial,
gamma; and :func:`get_family`, which turns a name into a family."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import Family, Gaussian
from .links import gammaln, xlogy
from .response import GLMResponse, _check_finite, _first_bad, _numeric, _whole

__all__ = ["Binomial", "Bernoulli", "Poisson", "NegativeBinomial", "Gamma", "get_family"]

_LOG_2PI = np.log(2.0 * np.pi)


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

    def simulate(self, mu, dispersion, trials, rng, weights=None) -> np.ndarray:
        """Successes out of ``trials`` (rounded), returned as proportions (0 where no trials)."""
        n = trials
        k = rng.binomial(np.round(n).astype(np.int64), np.clip(mu, 0.0, 1.0))
        return np.where(n > 0, k / np.where(n > 0, n, 1.0), 0.0)


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

    def simulate(self, mu, dispersion, trials, rng, weights=None) -> np.ndarray:
        """Poisson counts."""
        return rng.poisson(mu).astype(float)


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

    def simulate(self, mu, dispersion, trials, rng, weights=None) -> np.ndarray:
        """NB2 counts with size ``k = dispersion``."""
        d = dispersion
        return rng.negative_binomial(d, d / (d + mu)).astype(float)


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

    def simulate(self, mu, dispersion, trials, rng, weights=None) -> np.ndarray:
        """Gamma draws with ``Var = phi mu^2`` (``phi = dispersion``)."""
        d = dispersion
        return rng.gamma(1.0 / d, mu * d)


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
