"""Blocked Cholesky kernels for the penalized least-squares systems of mixed models."""

from .blocked import BlockedSystem

__all__ = ["BlockedSystem"]
