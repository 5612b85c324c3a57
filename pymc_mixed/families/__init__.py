"""Response families and link functions: :func:`get_family`, :func:`get_link`.

``links`` holds the link functions, ``response`` the prepared response the kernels share,
``base`` the :class:`Family` interface and the Gaussian, ``glm`` the other GLM families. Each
family owns its log-likelihood (NumPy and PyTensor), its dispersion's name and how to simulate
responses.
"""

from .base import Family, Gaussian
from .glm import Bernoulli, Binomial, Gamma, NegativeBinomial, Poisson, get_family
from .links import Link, get_link
from .response import GLMResponse, check_degenerate

__all__ = ["Family", "Gaussian", "Binomial", "Bernoulli", "Poisson", "NegativeBinomial",
           "Gamma", "Link", "GLMResponse", "check_degenerate", "get_family", "get_link"]
