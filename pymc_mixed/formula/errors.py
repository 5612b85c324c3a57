"""The one exception of the formula layer (its own module so every formula module can raise it)."""

from __future__ import annotations

__all__ = ["FormulaError"]


class FormulaError(ValueError):
    """The formula does not fit the data (missing column, bad term, refused expression, ...)."""
