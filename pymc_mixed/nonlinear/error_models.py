"""Residual error models of nonlinear mixed models (MATLAB nlmefit's ``ErrorModel``).

Every model is written as ``sd_ij = sigma * g(f_ij; r)`` on a working scale, with a scale
``sigma`` that the estimators profile out (or hand to the graph) and at most one shape
parameter ``r``:

=============  ====================  ===================  ===========================
model          nlmefit's definition  working scale        ``g(f; r)``, params
=============  ====================  ===================  ===========================
constant       ``y = f + a e``       y                    1; ``a = sigma``
proportional   ``y = f + b |f| e``   y                    ``|f|``; ``b = sigma``
combined       ``y = f + (a+b|f|)e`` y                    ``1 + r |f|``; ``a = sigma, b = r a``
exponential    ``y = f exp(a e)``    ``log y``, ``log f`` 1; ``a = sigma``
=============  ====================  ===================  ===========================

theta (the random effects' relative covariance factor) is relative to ``sigma`` in every
model, as nlme does with variance functions; for the constant model that is lme4's convention.
The exponential model works on the log scale: the log-likelihood of ``y`` adds the Jacobian
``-sum(log y)`` so that values compare with the other models on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ErrorModel", "get_error_model", "ERROR_MODELS"]


@dataclass(frozen=True)
class ErrorModel:
    """One residual error model; see the module docstring for the table."""

    name: str
    nshape: int = 0          # number of shape parameters r (combined: 1)

    @property
    def param_names(self) -> list[str]:
        """nlmefit's names of the error parameters."""
        return {"constant": ["a"], "proportional": ["b"], "combined": ["a", "b"],
                "exponential": ["a"]}[self.name]

    def check_response(self, y: np.ndarray, response: str) -> None:
        """The exponential model needs a positive response; every model a finite one."""
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"response {response!r} has a non-finite value {float(y[i])!r} in row {i}")
        if self.name == "exponential" and (y <= 0).any():
            i = int(np.flatnonzero(y <= 0)[0])
            raise ValueError(f"the exponential error model needs response {response!r} > 0; "
                             f"row {i} has {float(y[i])!r}")

    def working_response(self, y: np.ndarray) -> np.ndarray:
        """The response on the working scale (``log y`` for the exponential model)."""
        return np.log(y) if self.name == "exponential" else y

    def working_mean(self, f: np.ndarray, J: np.ndarray | None = None):
        """``(f, J)`` on the working scale: ``(log f, J / f)`` for the exponential model."""
        if self.name != "exponential":
            return f, J
        with np.errstate(divide="ignore", invalid="ignore"):
            lf = np.log(f)
            return lf, (None if J is None else J / f[..., None])

    def g(self, f: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``sd / sigma`` per observation, from the (original-scale) mean ``f``."""
        if self.name == "proportional":
            return np.abs(f)
        if self.name == "combined":
            return 1.0 + r[0] * np.abs(f)
        return np.ones_like(f)

    def log_jacobian(self, y: np.ndarray) -> float:
        """Added to the working-scale log-likelihood to give that of ``y``."""
        return -float(np.log(y).sum()) if self.name == "exponential" else 0.0

    def error_params(self, sigma: float, r: np.ndarray) -> dict:
        """nlmefit's error parameters from the scale and shape."""
        if self.name == "combined":
            return {"a": float(sigma), "b": float(sigma * r[0])}
        return {self.param_names[0]: float(sigma)}

    @property
    def shape_lower(self) -> np.ndarray:
        """Lower bounds of the shape parameters (``r >= 0``)."""
        return np.zeros(self.nshape)

    @property
    def shape_init(self) -> np.ndarray:
        """Starting shape parameters."""
        return np.full(self.nshape, 0.1)


ERROR_MODELS = {
    "constant": ErrorModel("constant"),
    "proportional": ErrorModel("proportional"),
    "combined": ErrorModel("combined", nshape=1),
    "exponential": ErrorModel("exponential"),
}


def get_error_model(error_model) -> ErrorModel:
    """The :class:`ErrorModel` called ``error_model`` (case-insensitive) or the object itself."""
    if isinstance(error_model, ErrorModel):
        return error_model
    key = str(error_model).lower()
    if key not in ERROR_MODELS:
        raise ValueError(f"error_model must be one of {', '.join(ERROR_MODELS)}; "
                         f"got {error_model!r}")
    return ERROR_MODELS[key]
