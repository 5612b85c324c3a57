"""The ``observed_data`` and ``constant_data`` groups of a model, shared by maximum-likelihood
DataTrees and posteriors so that both carry the same names, dims and coordinates."""

from __future__ import annotations

import numpy as np

from ..spec import factor_groups

__all__ = ["observed_data", "constant_data"]


def observed_data(spec):
    """The response, named as in the model (``spec.response_name``), dim ``obs``."""
    import xarray as xr

    return xr.Dataset({spec.response_name: ("obs", np.asarray(spec.y))},
                      coords={"obs": np.arange(spec.n)})


def constant_data(spec):
    """``X`` (dims ``obs``, ``coef``), each grouping factor's level per observation
    (``group_g``), and the weights, offset and binomial trials where the model has them."""
    import xarray as xr

    const = {"X": (("obs", "coef"), np.asarray(spec.X, dtype=float))}
    for g, info in factor_groups(spec.reterms).items():
        t = spec.reterms[info["terms"][0]]
        const[f"group_{g}"] = ("obs", np.asarray(t.levels, dtype=object)[t.refs].astype(str))
    if spec.weights is not None:
        const["weights"] = ("obs", np.asarray(spec.weights, dtype=float))
    if spec.offset is not None:
        const["offset"] = ("obs", np.asarray(spec.offset, dtype=float))
    if getattr(spec, "trials", None) is not None:
        const["trials"] = ("obs", np.asarray(spec.trials, dtype=float))
    return xr.Dataset(const, coords={"obs": np.arange(spec.n), "coef": list(spec.xnames)})
