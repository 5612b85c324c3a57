"""Centered or non-centered random effects, chosen per grouping factor from the ML fit.

A level's random effect ``b_l ~ N(0, Sigma_g)`` is informed by its prior and by its own data.
When the data dominate (the conditional variance of ``b_l`` given the data and the ML estimates
is small next to the prior variance), the posterior of ``b_l`` barely depends on ``Sigma_g`` and
the centered form (``b_g`` sampled directly) has no funnel; when the prior dominates, ``b_l``
moves with ``Sigma_g`` and the non-centered form (``b = L u``, ``u ~ N(0, I)``) removes the
funnel (Papaspiliopoulos, Roberts and Skold 2007; Betancourt and Girolami 2015).

The ML fit's conditional variances (lme4's ``condVar``) measure exactly this ratio:
``r_gj = mean_l Var(b_lj | y) / Sigma_g,jj``. A factor is centered when ``r_gj < 1/2`` for all
its columns -- the data carry more information than the prior about every level -- and
non-centered otherwise, and always non-centered at a singular (zero-variance) estimate.
"""

from __future__ import annotations

import numpy as np

from ..spec import factor_groups

__all__ = ["choose_centering", "default_centering", "information_ratios", "THRESHOLD"]

THRESHOLD = 0.5  # data and prior equally informative about a level's effect


def information_ratios(result) -> dict[str, np.ndarray]:
    """``{group: r}``: per column, the mean over levels of the conditional variance of the
    random effect divided by its ML variance (NaN where the variance is zero)."""
    from ..datatree.build import group_parameters

    spec = result.spec
    params = group_parameters(spec, result.varcorr.covs)
    out = {}
    for g in factor_groups(spec.reterms):
        var = params[g]["sd"] ** 2
        cv = np.asarray(result.condvar[g])
        diag = np.einsum("ljj->lj", cv).mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[g] = np.where(var > 1e-10 * max(var.max(), 1e-300), diag / var, np.nan)
    return out


def choose_centering(result, threshold: float = THRESHOLD) -> dict[str, bool]:
    """``{group: centered}`` from an ML fit (module docstring)."""
    return {g: bool(np.all(np.isfinite(r)) and np.all(r < threshold))
            for g, r in information_ratios(result).items()}


def default_centering(mm) -> dict[str, bool]:
    """The parametrization of ``mm``'s PyMC model: :func:`choose_centering` of its ML fit
    (fitted once, quietly, when the model has no fit yet); all factors non-centered when no
    fit with conditional variances is available."""
    cached = getattr(mm, "_centering", None)
    if cached is not None:
        return cached
    import warnings

    groups = factor_groups(mm.spec.reterms)
    try:
        res = getattr(mm, "result", None)
        if res is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = mm.fit()
        centering = choose_centering(res)
    except Exception:  # noqa: BLE001  (no ML fit for this kind: the robust default)
        centering = {g: False for g in groups}
    mm._centering = centering
    return centering
