"""Link functions (NumPy for the kernels, PyTensor for the model graph) and the special
functions they and the families share."""

from __future__ import annotations

import numpy as np

_LOG_2PI = np.log(2.0 * np.pi)

__all__ = ["Link", "get_link", "LINKS"]

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


LINKS = _LINKS
