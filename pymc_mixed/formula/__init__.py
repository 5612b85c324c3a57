"""lme4-style formulas: ``y ~ x + (1 + x | g) + (1 | a/b) + (x || h)``."""

from .build import FormulaError, build_spec, fixed_design
from .parse import parse_formula

__all__ = ["FormulaError", "build_spec", "fixed_design", "parse_formula"]
