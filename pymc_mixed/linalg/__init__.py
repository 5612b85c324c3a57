"""Blocked Cholesky kernels for the penalized least-squares systems of mixed models.

Two kernels with one interface (``set_weights``, ``update``, ``logdet``, ``pwrss``, ``solve``,
``condvar_u``, ``Rxx``): :class:`BlockedSystem` keeps the coupling block sparse and scales to
InstEval; :class:`DenseSchurSystem` keeps it dense, cheaper per PIRLS update on small and
medium models. :func:`make_system` picks one.
"""

from .blocked import BlockedSystem
from .dense_schur import DenseSchurSystem, make_system

__all__ = ["BlockedSystem", "DenseSchurSystem", "make_system"]
