"""Response distributions and link functions.

A :class:`Family` knows its link, how to check a response for support, and its log-likelihood
both numerically (NumPy, for the fast kernels) and symbolically (PyTensor, for the model graph).
The Gaussian family with identity link is the linear mixed model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["Family", "Gaussian", "get_family"]

_LOG_2PI = np.log(2.0 * np.pi)


class Family:
    """Base class: a response distribution with a link function.

    Subclasses define ``name``, ``default_link``, ``has_dispersion`` and the methods below.
    """

    name = "family"
    default_link = "identity"
    has_dispersion = False

    def __init__(self, link: str | None = None):
        self.link = link or self.default_link

    def validate(self, y: np.ndarray, response: str) -> np.ndarray:
        """Check ``y`` lies in the support; return it as float. Errors name the response."""
        if isinstance(y, pd.Series) and (not pd.api.types.is_numeric_dtype(y)
                                         or pd.api.types.is_bool_dtype(y)):
            raise ValueError(f"response {response!r} is not numeric (dtype {y.dtype}); the "
                             f"{self.name} family needs numbers")
        y = np.asarray(y, dtype=float)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"response {response!r} has non-finite values")
        return y

    def logp_graph(self, y, eta, dispersion=None, weights=None):  # pragma: no cover - abstract
        """Pointwise log-likelihood as a PyTensor expression."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link!r})"


class Gaussian(Family):
    """Normal response; with the identity link this is the linear mixed model."""

    name = "gaussian"
    default_link = "identity"
    has_dispersion = True

    def logp_graph(self, y, eta, dispersion=None, weights=None):
        import pytensor.tensor as pt

        if self.link != "identity":
            raise NotImplementedError("only the identity link is available for the Gaussian graph")
        sigma = dispersion
        w = 1.0 if weights is None else weights
        resid = y - eta
        return 0.5 * pt.log(w) - pt.log(sigma) - 0.5 * _LOG_2PI - 0.5 * w * resid**2 / sigma**2


_FAMILIES = {"gaussian": Gaussian, "normal": Gaussian}


def get_family(family, link: str | None = None) -> Family:
    """Turn ``"binomial"``, ``"poisson"``, a Family class or instance into a Family instance."""
    if isinstance(family, Family):
        return family
    if isinstance(family, type) and issubclass(family, Family):
        return family(link)
    if isinstance(family, str):
        try:
            return _FAMILIES[family.lower()](link)
        except KeyError:
            raise ValueError(
                f"unknown family {family!r}; available: {', '.join(sorted(_FAMILIES))}"
            ) from None
    raise TypeError(f"family must be a name or a Family, got {family!r}")
