"""SAEM settings with MATLAB nlmefitsa's names and defaults, and their snake-case aliases.

=====================  ======================  ==========================================
nlmefitsa name         ``fit(method="saem")``  meaning (default)
=====================  ======================  ==========================================
``NIterations``        ``n_iterations``        iterations of the three phases: simulated
                                               annealing, full step, decreasing step
                                               ([150, 150, 100])
``NBurnIn``            ``n_burn_in``           first iterations with no parameter update (5)
``NMCMCIterations``    ``n_mcmc_iterations``   sweeps of each MH kernel per iteration ([2, 2, 2])
``NChains``            ``n_chains``            chains per group (about 100 groups simulated
                                               per iteration: ``ceil(100 / G)``)
``Replicates``         ``replicates``          independent SAEM runs (1)
``Cov0``               ``cov0``                starting Psi (identity)
``ErrorParameters``    ``error_parameters``    starting ``a`` (and ``b``) (1)
``ComputeStdErrors``   ``compute_std_errors``  ``True``, ``False``, ``"lin"`` or ``"sa"``
``LogLikMethod``       ``loglik_method``       ``"is"``, ``"gq"``, ``"lin"``, ``"none"``, or a
                                               list ("is")
``OutputFcn``          ``output_fcn``          called every iteration; ``True`` stops
``OptimFun``           ``optim_fun``           numeric M-step: ``"fminsearch"`` (Nelder-Mead)
                                               or ``"fminunc"`` (BFGS)
=====================  ======================  ==========================================

Further (Python-only): ``progressbar``, ``is_samples`` (5000), ``gq_nodes`` (nodes per
dimension), ``mode_kernel`` (a fourth kernel: independent proposals around each group's
conditional mode), ``anneal`` (0.97: variances shrink at most by this factor per annealing
iteration), ``target_accept`` (0.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = ["SAEMOptions", "saem_options"]

_MATLAB = {"NIterations": "n_iterations", "NBurnIn": "n_burn_in",
           "NMCMCIterations": "n_mcmc_iterations", "NChains": "n_chains",
           "Replicates": "replicates", "Cov0": "cov0", "ErrorParameters": "error_parameters",
           "ComputeStdErrors": "compute_std_errors", "LogLikMethod": "loglik_method",
           "OutputFcn": "output_fcn", "OptimFun": "optim_fun"}
_LOGLIK = ("is", "gq", "lin", "none")


@dataclass
class SAEMOptions:
    """Validated SAEM settings (see the module docstring)."""

    n_iterations: tuple = (150, 150, 100)
    n_burn_in: int = 5
    n_mcmc_iterations: tuple = (2, 2, 2)
    n_chains: int | None = None
    replicates: int = 1
    cov0: np.ndarray | None = None
    error_parameters: tuple | None = None
    compute_std_errors: object = True
    loglik_method: object = "is"
    output_fcn: object = None
    optim_fun: str = "fminsearch"
    progressbar: bool = True
    is_samples: int = 5000
    gq_nodes: int | None = None
    mode_kernel: bool = False
    anneal: float = 0.97
    target_accept: float = 0.4
    extra: dict = field(default_factory=dict, repr=False)

    def chains_for(self, G: int) -> int:
        """Chains per group: the option, else enough for about 100 simulated groups."""
        return int(self.n_chains) if self.n_chains else max(1, math.ceil(100 / G))

    @property
    def loglik_methods(self) -> list[str]:
        """The log-likelihood methods asked for, ``[]`` for none."""
        m = self.loglik_method
        ms = [m] if isinstance(m, str) else list(m)
        ms = [str(x).lower() for x in ms]
        return [] if ms == ["none"] else ms

    @property
    def se_method(self) -> str | None:
        """``"lin"``, ``"sa"`` or ``None``."""
        c = self.compute_std_errors
        if c is True or c == "lin":
            return "lin"
        if c == "sa":
            return "sa"
        return None


def _int_tuple(name, value, length) -> tuple:
    vals = np.atleast_1d(np.asarray(value))
    if vals.size == 1:
        vals = np.repeat(vals, length)
    if vals.size != length or np.any(vals < 0) or np.any(vals != np.round(vals)):
        raise ValueError(f"{name} must be {length} whole numbers >= 0, got {value!r}")
    return tuple(int(v) for v in vals)


def saem_options(**kwargs) -> SAEMOptions:
    """Read SAEM settings given by nlmefitsa's names or the snake-case ones; unknown names
    are an error that lists the known ones."""
    known = {f.name for f in fields(SAEMOptions)} - {"extra"}
    opts = {}
    for key, val in kwargs.items():
        name = _MATLAB.get(key, key)
        if name not in known:
            raise TypeError(f"unknown SAEM option {key!r}; known: "
                            f"{', '.join(sorted(known | set(_MATLAB)))}")
        if name in opts:
            raise TypeError(f"SAEM option {name!r} given twice (as {key!r})")
        opts[name] = val
    o = SAEMOptions(**opts)
    o.n_iterations = _int_tuple("NIterations", o.n_iterations, 3)
    o.n_mcmc_iterations = _int_tuple("NMCMCIterations", o.n_mcmc_iterations, 3)
    if sum(o.n_iterations) < 1:
        raise ValueError("NIterations must have at least one iteration")
    if o.n_iterations[2] < 1:
        raise ValueError("NIterations: the decreasing-step phase needs at least one iteration")
    if int(o.replicates) < 1:
        raise ValueError(f"Replicates must be >= 1, got {o.replicates!r}")
    o.replicates = int(o.replicates)
    if o.n_chains is not None and int(o.n_chains) < 1:
        raise ValueError(f"NChains must be >= 1, got {o.n_chains!r}")
    bad = [m for m in o.loglik_methods if m not in _LOGLIK]
    if bad:
        raise ValueError(f"LogLikMethod must be among {', '.join(_LOGLIK)}; got {bad[0]!r}")
    if o.compute_std_errors not in (True, False, "lin", "sa", None):
        raise ValueError("ComputeStdErrors must be True, False, 'lin' or 'sa'; "
                         f"got {o.compute_std_errors!r}")
    if o.optim_fun not in ("fminsearch", "fminunc"):
        raise ValueError(f"OptimFun must be 'fminsearch' or 'fminunc'; got {o.optim_fun!r}")
    if not 0.0 < float(o.anneal) <= 1.0:
        raise ValueError(f"anneal must be in (0, 1], got {o.anneal!r}")
    return o
