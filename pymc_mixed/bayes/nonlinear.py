"""The nonlinear pieces of the PyMC model of a :class:`~pymc_mixed.nonlinear.NonlinearMixedModel`.

Everything else -- the fixed effects ``beta``, the random effects ``sd_g`` / ``b_g`` (centered
or not), ``theta``, sampling, the tidy posterior -- goes through the same code as a linear
model (:mod:`.model`, :mod:`.sample`); the mean is ``spec.mean.predictor`` (the user's
PyTensor function of ``phi = A beta + B b``). Two things differ, and live here:

Default priors (:func:`nonlinear_default_priors`)
    A mechanistic parameter has no scale the data could give without a fit (``sd(y)`` says
    nothing about a log clearance), so the defaults are weakly informative around the user's
    start values -- the modeller's prior guess, set before seeing the estimates. With ``c_P``
    the start value of parameter ``P``'s intercept and the unit ``u_P = max(|c_P|, 1)``:

    =================  ==================================================================
    intercept of P     ``Normal(c_P, 2.5 u_P)`` (widened as for a linear model when P's
                       fixed part has uncentered covariates: ``* sqrt(1 + sum (m_j/s_j)^2)``)
    covariate j of P   ``Normal(start or 0, 2.5 u_P / sd(x_j))``
    ``sd_g`` of P      ``HalfNormal(u_P / sd(z_j))`` per column
    ``corr_g``         ``LKJCorr(eta=2)``
    ``sigma``          constant and combined (its additive part ``a``): ``Exponential(1 /
                       sd(y))``; proportional (``b``, a coefficient of variation) and
                       exponential (``a``, an SD on the log scale): ``Exponential(1)``
    ``sigma_prop``     combined only, the proportional part ``b``: ``Exponential(1)``
    =================  ==================================================================

    The alternative, priors centred on the FOCE/LME estimates, uses the data twice (an
    empirical-Bayes prior); a start value is the user's own information, and ``2.5 u_P`` is
    wide: on a log parameter a 95% prior interval of ``c_P +- 5`` spans a factor of e^10.

Likelihood (:func:`add_error_model_likelihood`)
    ``y ~ Normal(f, sd)`` with the error model's ``sd``: ``sigma`` (constant), ``sigma |f|``
    (proportional), ``sigma + sigma_prop |f|`` (combined); the exponential model ``y = f
    exp(a e)`` is ``LogNormal(log f, sigma)`` -- ``Normal(log f, sigma)`` on the working
    scale ``log y`` with the Jacobian ``-log y`` included, so its pointwise log-likelihood
    is on the scale of ``y`` as the ML fit's. ``theta`` (relative to ``sigma``) and
    ``sigma`` line up with the ML fit's ``mle`` group (:mod:`pymc_mixed.datatree`).
"""

from __future__ import annotations

import numpy as np

from ..spec import factor_groups

__all__ = ["nonlinear_default_priors", "add_error_model_likelihood", "is_nonlinear",
           "error_parameter_names"]


def is_nonlinear(spec) -> bool:
    """True for the spec of a nonlinear mixed model (kind ``"nlmm"`` with an error model; a
    plain ``ModelSpec`` with a custom mean keeps the family's likelihood)."""
    return getattr(spec, "kind", None) == "nlmm" and hasattr(spec, "error_model")


def error_parameter_names(spec) -> list[str]:
    """The PyMC names of the error model's parameters: ``sigma`` (its scale, as in the ML
    results) and, for the combined model, ``sigma_prop`` (nlmefit's ``b``)."""
    return ["sigma", "sigma_prop"] if spec.error_model.name == "combined" else ["sigma"]


def _units(spec) -> np.ndarray:
    """``u_P = max(|c_P|, 1)`` per parameter, ``c_P`` the start value of its intercept (the
    first coefficient of its fixed part when it has no intercept column)."""
    out = np.ones(spec.P)
    for j, fp in enumerate(spec.fixed):
        icpt = np.flatnonzero(np.all(fp.A == 1.0, axis=0))
        k = fp.cols.start + (int(icpt[0]) if icpt.size else 0)
        out[j] = max(abs(float(spec.beta0[k])), 1.0)
    return out


def _beta_prior(spec, units: np.ndarray):
    from .priors import Prior

    mu = np.asarray(spec.beta0, dtype=float).copy()
    sigma = np.empty(spec.p)
    for j, fp in enumerate(spec.fixed):
        A = np.asarray(fp.A, dtype=float)
        is_icpt = np.all(A == 1.0, axis=0)
        sd = A.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        s = 2.5 * units[j] / sd
        slopes = ~is_icpt
        widen = np.sqrt(1.0 + np.sum((A.mean(axis=0)[slopes] / sd[slopes]) ** 2))
        s[is_icpt] = 2.5 * units[j] * widen
        sigma[fp.cols] = s
    return Prior("Normal", mu=mu, sigma=sigma)


def nonlinear_default_priors(spec) -> dict:
    """The documented defaults for a nonlinear mixed model (module docstring)."""
    from .priors import Prior

    units = _units(spec)
    priors: dict = {"beta": _beta_prior(spec, units)} if spec.p else {}
    for g, info in factor_groups(spec.reterms).items():
        scale = []
        for k in info["terms"]:
            t = spec.reterms[k]
            z_sd = t.z.std(axis=0)
            z_sd = np.where(z_sd > 0, z_sd, 1.0)
            scale += [units[p] / z_sd[c] for c, p in enumerate(spec.term_params[k])]
        priors[f"sd_{g}"] = Prior("HalfNormal", sigma=np.asarray(scale))
        if info["correlated"]:
            priors[f"corr_{g}"] = Prior("LKJCorr", eta=2.0)
    name = spec.error_model.name
    sd_y = float(np.std(spec.y, ddof=1)) if spec.n > 1 else 1.0
    sd_y = sd_y if sd_y > 0 else 1.0
    priors["sigma"] = Prior("Exponential", lam=1.0 / sd_y if name in ("constant", "combined")
                            else 1.0)
    if name == "combined":
        priors["sigma_prop"] = Prior("Exponential", lam=1.0)
    return priors


def add_error_model_likelihood(spec, eta, sigma, name: str, priors: dict | None,
                               observed=None, dims=("obs",)):
    """The observed response of a nonlinear model under its error model (module docstring),
    inside the current model context; ``eta`` is ``spec.mean.predictor`` (``log f`` for the
    exponential model), ``sigma`` the error scale. The combined model's ``sigma_prop`` is
    created here from ``priors``."""
    import pymc as pm
    import pytensor.tensor as pt

    from .priors import _make_var

    obs = np.asarray(spec.y, dtype=float) if observed is None else observed
    em = spec.error_model.name
    if em == "exponential":
        return pm.LogNormal(name, mu=eta, sigma=sigma, observed=obs, dims=dims)
    if em == "proportional":
        sd = sigma * pt.abs(eta)
    elif em == "combined":
        pri = priors if priors is not None else nonlinear_default_priors(spec)
        sd = sigma + _make_var(pri["sigma_prop"], "sigma_prop", None, ()) * pt.abs(eta)
    else:
        sd = sigma
    return pm.Normal(name, mu=eta, sigma=sd, observed=obs, dims=dims)


def nonlinear_centering(mm) -> dict[str, bool]:
    """The default parametrization of a nonlinear model's random effects: non-centered for
    every grouping factor (``b = sd * u``, ``u ~ N(0, 1)``). The ML results of nonlinear
    models carry no conditional variances to choose from (:mod:`.parametrization`), and with
    the few observations per subject of a pharmacokinetic study the prior dominates some
    parameters' effects (absorption), where the centered form has a funnel."""
    return {g: False for g in factor_groups(mm.spec.reterms)}


def _register() -> None:
    from .priors import KIND_DEFAULTS

    KIND_DEFAULTS["nlmm"] = nonlinear_default_priors


_register()
