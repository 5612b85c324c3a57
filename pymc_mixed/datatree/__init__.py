"""Results as ArviZ data: :func:`result_to_datatree` (``build``) and the observed and constant
data groups shared with posteriors (``constant_data``)."""

from .build import coef_dim, corr_dim, corr_dims, corr_pairs, group_parameters, result_to_datatree
from .constant_data import constant_data, observed_data

__all__ = ["result_to_datatree", "group_parameters", "coef_dim", "corr_dims", "corr_dim", "corr_pairs",
           "constant_data",
           "observed_data"]
