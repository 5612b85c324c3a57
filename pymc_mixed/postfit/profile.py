"""Profile likelihood of a fitted mixed model (lme4's ``profile``, MixedModels.jl's
``profile``): for each parameter the signed square root of the deviance increase,

    zeta(v) = sign(v - v_hat) sqrt(min_{other parameters} dev(v, .) - dev_min),

traced outwards from the estimate on both sides until ``|zeta|`` passes ``zmax`` or the
parameter hits a bound (an SD at zero, a correlation at +-1). Each point warm-starts the
optimization of the other parameters at the previous point's optimum. Interval endpoints are
the roots of ``zeta(v) = +-z``, found by Brent's method on the exact profile (not a spline), so
they are accurate to the optimizer's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .problems import problem_for

__all__ = ["profile", "Profile", "ParameterProfile"]


@dataclass
class ParameterProfile:
    """The traced profile of one parameter: ``values`` (increasing) and their ``zeta``."""

    name: str
    estimate: float
    values: np.ndarray
    zeta: np.ndarray
    warm: list = field(default_factory=list, repr=False)  # nuisance optimum at each value


class Profile:
    """Profiles of the parameters of one fit; :meth:`confint` and :meth:`plot` read them."""

    def __init__(self, problem, params: dict[str, ParameterProfile]):
        self._problem = problem
        self.params = params

    @property
    def names(self) -> list[str]:
        """Names of the profiled parameters (lme4's ``oldNames = FALSE`` spelling)."""
        return list(self.params)

    def as_frame(self) -> pd.DataFrame:
        """Long table: parameter, value, zeta."""
        return pd.concat([pd.DataFrame({"parameter": p.name, "value": p.values,
                                        "zeta": p.zeta}) for p in self.params.values()],
                         ignore_index=True)

    def zeta(self, name: str, value: float) -> float:
        """The exact profile zeta of parameter ``name`` at ``value`` (one optimization)."""
        k = self._problem.names.index(name)
        return _zeta_at(self._problem, k, value, _nearest_warm(self.params[name], value))[0]

    def confint(self, level: float = 0.95, parm=None) -> pd.DataFrame:
        """Profile-likelihood intervals: the values where ``zeta = -+ qnorm((1 + level)/2)``.
        An interval that reaches a parameter's bound before ``zeta`` does (an SD whose
        profile stays low down to zero) is closed at the bound."""
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + level / 2))
        names = self.names if parm is None else _as_list(parm)
        rows = [[self._endpoint(n, -z), self._endpoint(n, z)] for n in names]
        a = (1 - level) / 2
        return pd.DataFrame(rows, index=names,
                            columns=[f"{100 * a:.1f} %", f"{100 * (1 - a):.1f} %"])

    def _endpoint(self, name: str, z: float) -> float:
        from scipy.optimize import brentq

        prob, pp = self._problem, self.params[name]
        k = prob.names.index(name)
        side = pp.values > pp.estimate if z > 0 else pp.values < pp.estimate
        vals, zs = pp.values[side], pp.zeta[side]
        order = np.argsort(np.abs(vals - pp.estimate))
        vals, zs = vals[order], zs[order]
        beyond = np.nonzero(np.abs(zs) >= abs(z))[0]
        if not len(beyond):
            bound = prob.upper[k] if z > 0 else prob.lower[k]
            if len(vals) and np.isclose(vals[-1], bound):
                return float(bound)
            vals, zs = _extend(prob, pp, k, z)
            beyond = np.nonzero(np.abs(zs) >= abs(z))[0]
            if not len(beyond):
                return float("nan")
        i = beyond[0]
        a, za = (vals[i - 1], zs[i - 1]) if i > 0 else (pp.estimate, 0.0)
        b = vals[i]
        warm = _nearest_warm(pp, a)

        def f(v):
            return _zeta_at(prob, k, v, warm)[0] - z

        return float(brentq(f, a, b, xtol=1e-9 * max(1.0, abs(b)), rtol=1e-12))

    def plot(self, ax=None, level: float = 0.95):
        """Zeta plots per parameter (lme4's ``xyplot(profile)``, MixedModels' zeta plot):
        zeta against the parameter, with the ``level`` interval marked. Returns the axes."""
        import matplotlib.pyplot as plt
        from scipy.stats import norm

        names = self.names
        if ax is None:
            ncol = min(3, len(names))
            nrow = -(-len(names) // ncol)
            _, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow),
                                   squeeze=False)
            ax = axes.ravel()
        z = norm.ppf(0.5 + level / 2)
        for a, n in zip(ax, names):
            pp = self.params[n]
            a.plot(pp.values, pp.zeta, "-o", ms=2.5)
            a.axhline(0, color="0.6", lw=0.6)
            for s in (-z, z):
                a.axhline(s, color="0.6", ls="--", lw=0.6)
            a.set_xlabel(n)
            a.set_ylabel("zeta")
        for a in list(ax)[len(names):]:
            a.set_visible(False)
        return ax

    def __repr__(self) -> str:
        return f"Profile({', '.join(self.names)})"


def _as_list(parm) -> list[str]:
    return [parm] if isinstance(parm, str) else list(parm)


def _nearest_warm(pp: ParameterProfile, value: float):
    i = int(np.argmin(np.abs(pp.values - value)))
    return pp.warm[i]


def _zeta_at(prob, k: int, value: float, warm):
    dev, new_warm = prob.point(k, value, warm)
    inc = max(dev - prob.devmin, 0.0)
    return float(np.sign(value - prob.estimates[k]) * np.sqrt(inc)), new_warm


def _trace_side(prob, k: int, direction: int, zmax: float, maxpts: int = 30):
    """Points of the profile of ``k`` on one side, until ``|zeta| >= zmax`` or a bound."""
    est, lo, hi = prob.estimates[k], prob.lower[k], prob.upper[k]
    warm, v, z = prob.start(k), est, 0.0
    step = prob.scale[k]
    out = []
    for _ in range(maxpts):
        v_new = float(np.clip(v + direction * step, lo, hi))
        if v_new == v:
            break
        z_new, warm = _zeta_at(prob, k, v_new, warm)
        out.append((v_new, z_new, warm))
        if abs(z_new) >= zmax or v_new in (lo, hi):
            break
        # aim the next step at a zeta increase of about 0.6 (zeta is close to linear)
        slope = abs(z_new - z) / abs(v_new - v)
        step = float(np.clip(0.6 / slope if slope > 0 else 4 * step, 0.25 * step, 4 * step))
        v, z = v_new, z_new
    return out


def _profile_one(prob, k: int, zmax: float) -> ParameterProfile:
    est = prob.estimates[k]
    pts = _trace_side(prob, k, -1, zmax)[::-1] + [(est, 0.0, prob.start(k))] + \
        _trace_side(prob, k, 1, zmax)
    return ParameterProfile(name=prob.names[k], estimate=float(est),
                            values=np.array([p[0] for p in pts]),
                            zeta=np.array([p[1] for p in pts]), warm=[p[2] for p in pts])


def _extend(prob, pp: ParameterProfile, k: int, z: float):
    """Continue a trace beyond its end on the side of ``z`` (a level beyond ``zmax``)."""
    more = _trace_side(prob, k, 1 if z > 0 else -1, abs(z) + 0.5, maxpts=60)
    vals = np.array([p[0] for p in more])
    zs = np.array([p[1] for p in more])
    return vals, zs


_SHARED: dict = {}  # the problem, inherited by forked workers instead of pickled


def _profile_worker(args):
    k, zmax = args
    return _profile_one(_SHARED["problem"], k, zmax)


def profile(result, which=None, zmax: float = 3.0, n_jobs: int = 1) -> Profile:
    """Profile the deviance of a fitted LMM (exact) or GLMM (Laplace/AGQ).

    Parameters
    ----------
    result : a fitted LMM or GLMM (``nAGQ >= 1``).
    which : parameter names to profile (default all: SDs and correlations of the random
        effects, sigma for an LMM, fixed effects, the GLMM dispersion if any).
    zmax : trace each profile until ``|zeta|`` passes this (3 covers 99.7 % intervals;
        :meth:`Profile.confint` extends a trace when a higher level asks for it).
    n_jobs : profile parameters in this many worker processes (fork; 1 = in this process).
    """
    prob = problem_for(result)
    names = prob.names if which is None else _as_list(which)
    for n in names:
        if n not in prob.names:
            raise KeyError(f"no parameter {n!r} to profile; parameters: {', '.join(prob.names)}")
    ks = [prob.names.index(n) for n in names]
    with _single_thread():
        if n_jobs > 1 and len(ks) > 1:
            import multiprocessing as mp

            import warnings

            _SHARED["problem"] = prob
            try:
                with warnings.catch_warnings():
                    # the workers only run NumPy/NLopt on the inherited problem
                    warnings.simplefilter("ignore", DeprecationWarning)
                    with mp.get_context("fork").Pool(min(n_jobs, len(ks))) as pool:
                        profs = pool.map(_profile_worker, [(k, zmax) for k in ks])
            finally:
                _SHARED.clear()
        else:
            profs = [_profile_one(prob, k, zmax) for k in ks]
    return Profile(prob, {p.name: p for p in profs})


def _single_thread():
    from ..linalg.threads import single_threaded_blas

    return single_threaded_blas()
