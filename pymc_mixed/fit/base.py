"""The estimator registry: ``MixedModel.fit(method=...)`` looks estimators up here.

An estimator is a callable ``fit(spec, **options) -> result`` registered under a model kind
(``spec.kind``: ``"lmm"``, ``"glmm"``, a nonlinear mean's ``"nlmm"``) and a method name.
Registering a new one is one line beside its definition::

    register("nlmm", "FOCE", fit_foce)

The optimizer's record (start, finish, evaluations, return code, path) is an
:class:`~pymc_mixed.fit.optimize.OptSummary`, ``FitSummary`` here: estimators without an
optimizer of their own (SAEM's iterations) fill the same fields.
"""

from __future__ import annotations

from typing import Callable

from .optimize import OptSummary

__all__ = ["register", "estimator", "methods", "DEFAULT_METHOD", "FitSummary"]

FitSummary = OptSummary

_REGISTRY: dict[tuple[str, str], Callable] = {}

# the method a fit uses when none is named, per model kind (lme4's defaults)
DEFAULT_METHOD: dict[str, str] = {}


def register(kind: str, method: str, fit: Callable | None = None, *, default: bool = False):
    """Register ``fit(spec, **options)`` as ``method`` for models of ``kind``; usable as a
    decorator when ``fit`` is omitted. ``default=True`` makes it the kind's default method."""
    def add(fn: Callable) -> Callable:
        _REGISTRY[(kind, method.lower())] = fn
        if default or kind not in DEFAULT_METHOD:
            DEFAULT_METHOD[kind] = method
        return fn

    return add if fit is None else add(fit)


def methods(kind: str) -> list[str]:
    """The registered method names for a model kind."""
    return sorted(m for k, m in _REGISTRY if k == kind)


def estimator(kind: str, method: str | None = None) -> Callable:
    """The estimator registered for ``(kind, method)`` (the kind's default method if None)."""
    if method is None:
        if kind not in DEFAULT_METHOD:
            raise ValueError(f"no estimator is registered for {kind!r} models")
        method = DEFAULT_METHOD[kind]
    try:
        return _REGISTRY[(kind, str(method).lower())]
    except KeyError:
        known = ", ".join(methods(kind)) or "none"
        raise ValueError(f"no estimator {method!r} for {kind!r} models; registered: "
                         f"{known}") from None
