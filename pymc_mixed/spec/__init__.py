"""The model in numbers: :class:`ModelSpec`, its random-effect terms, its parameter layout and
its mean. Everything downstream (graph, estimators, results, PyMC model) reads a spec; nothing
downstream re-parses a formula."""

from .mean import LinearMean
from .params import ParamLayout
from .spec import ModelSpec
from .terms import (RESERVED_DIMS, ReTerm, block_diag, coef_dim, corr_dims, factor_groups,
                    level_dim, term_factors)

__all__ = ["ModelSpec", "ReTerm", "term_factors", "LinearMean", "ParamLayout",
           "factor_groups", "block_diag", "coef_dim", "corr_dims", "level_dim",
           "RESERVED_DIMS"]
