"""lme4-style formulas: ``y ~ x + (1 + x | g) + (1 | a/b) + (x || h)``.

Formulas are data, not code: every expression is checked against a whitelist (:mod:`.expr`)
and evaluated without ``eval``.
"""

from .build import build_spec, fixed_design
from .errors import FormulaError
from .parse import parse_formula

__all__ = ["FormulaError", "build_spec", "fixed_design", "parse_formula"]
