"""Predictions from a fitted mixed model with any subset of its random-effect terms
(lme4's ``re.form``), standard errors of population-level predictions and new parameter
values (lme4's ``newparams``)."""

from __future__ import annotations

import re

import numpy as np

from . import _refit

__all__ = ["predict", "select_terms"]

_NONE = (False, "~0", "~ 0", "NA", "~-1", "~ -1")


def _bar_columns(lhs: str) -> tuple[bool, list[str]]:
    """Intercept flag and named columns of a random-effects term's left side."""
    parts = [p.strip() for p in re.split(r"\+", lhs) if p.strip()]
    intercept = not any(p in ("0", "-1") for p in parts)
    names = [p for p in parts if p not in ("0", "1", "-1")]
    return intercept, names


def select_terms(spec, re_form) -> list[bool]:
    """Which of ``spec.reterms`` a ``re_form`` keeps: None/True all, ``"~0"``/``"NA"``/False
    none, or a formula of random-effects terms such as ``"~ (1 | Subject)"``, each of which
    must be a term of the model (matched by grouping factor and columns)."""
    if re_form is None or re_form is True:
        return [True] * len(spec.reterms)
    if re_form in _NONE or (isinstance(re_form, str) and re.fullmatch(r"~\s*0\s*", re_form)):
        return [False] * len(spec.reterms)
    if not isinstance(re_form, str) or "~" not in re_form:
        raise ValueError(f"re_form must be None, '~0' or a formula of random-effects terms "
                         f"like '~(1|g)', got {re_form!r}")
    keep = [False] * len(spec.reterms)
    bars = re.findall(r"\(([^()|]*)(\|\|?)([^()]*)\)", re_form)
    if not bars:
        raise ValueError(f"re_form {re_form!r} has no random-effects term like (1 | g)")
    for lhs, bar, group in bars:
        group = group.strip()
        intercept, names = _bar_columns(lhs)
        cands = [i for i, t in enumerate(spec.reterms) if t.group == group]
        if not cands:
            raise ValueError(f"re_form term ({lhs}{bar}{group}): the model has no random "
                             f"effects for {group!r}")
        wanted = (["(Intercept)"] if intercept else []) + names
        hit = [i for i in cands if _columns_match(spec.reterms[i].cnames, wanted, bar)]
        if len(cands) == 1 and bar == "|":
            hit = cands
        if not hit:
            have = "; ".join(" + ".join(spec.reterms[i].cnames) for i in cands)
            raise ValueError(f"re_form term ({lhs.strip()} {bar} {group}) is not a term of the "
                             f"model; the terms for {group!r} have columns: {have}")
        for i in hit:
            keep[i] = True
    return keep


def _columns_match(cnames, wanted, bar) -> bool:
    """Does a model term's column list come from these formula columns (a factor column
    gives several model columns that start with its name)?"""
    def covers(c):
        return any(c == w or (w != "(Intercept)" and c.startswith(w)) for w in wanted)

    if bar == "||":  # each column its own term: keep every term it is part of
        return all(covers(c) for c in cnames)
    return all(covers(c) for c in cnames) and all(
        any(c == w or (w != "(Intercept)" and c.startswith(w)) for c in cnames) for w in wanted)


def _modes_at(result, beta, theta):
    """Conditional modes ``u`` of the fit's data at other parameter values."""
    spec = result.spec
    if _refit.is_lmm(result):
        red = _refit.spec_with(spec, X=spec.X[:, :0], xnames=[], y=spec.y - spec.X @ beta)
        obj = _refit.lmm_objective(result, red, REML=False)
        obj(theta)
        return obj.system.solve()[0]
    _, obj = _refit.laplace_objective(result, nAGQ=1)
    extra = [np.log(result.dispersion)] if result.dispersion is not None else []
    if not np.isfinite(obj(np.concatenate([theta, beta, extra]))):
        raise ValueError("PIRLS failed at the new parameter values")
    return obj.pirls.u.copy()


def predict(result, newdata=None, re_form=None, se_fit: bool = False, newparams=None,
            allow_new_levels: bool = True, offset=None):
    """Predictions on the link scale (the linear predictor).

    Parameters
    ----------
    newdata : DataFrame, or None for the observations of the fit.
    re_form : None (all random-effect terms), ``"~0"``/``"NA"`` (population level) or a
        formula with a subset of the model's terms, ``"~ (1 | Subject)"``.
    se_fit : also return standard errors, ``sqrt(diag(X V X'))`` with ``V = vcov``; for
        population-level predictions only (the uncertainty of conditional modes is not
        included, as lme4).
    newparams : dict with ``beta`` and/or ``theta``: predict with these values instead of
        the estimates; the random effects are the conditional modes at them.
    allow_new_levels : levels not in the fit get random effects of zero; False raises.
    offset : offset for ``newdata`` (added to the formula's ``offset()`` terms, which are
        re-evaluated on ``newdata``).

    Returns the predictions, or ``(predictions, standard errors)`` with ``se_fit``.
    """
    from ..formula.build import group_labels, level_index

    spec = result.spec
    keep = select_terms(spec, re_form)
    if se_fit and any(keep):
        raise ValueError("se_fit is available for population-level predictions (re_form='~0')")
    newparams = newparams or {}
    unknown = set(newparams) - {"beta", "theta"}
    if unknown:
        raise ValueError(f"newparams takes 'beta' and 'theta', not {sorted(unknown)}")
    beta = np.asarray(newparams.get("beta", result.beta), dtype=float)
    theta = np.asarray(newparams.get("theta", result.theta), dtype=float)
    u = _modes_at(result, beta, theta) if newparams and any(keep) else np.asarray(result.u)
    b_blocks = spec.b_blocks(theta, u)
    if newdata is None:
        # through the spec's mean (the seam nonlinear means plug into); left-out terms at 0
        X = spec.X
        blocks = [b if k else np.zeros_like(b) for b, k in zip(b_blocks, keep)]
        eta = spec.mean.predict_numpy(spec, beta, blocks if any(keep) else None)
    else:
        X = spec.X_on(newdata)
        eta = X @ beta + spec.offset_on(newdata, offset)
        for t, b, k in zip(spec.reterms, b_blocks, keep):
            if not k:
                continue
            idx = level_index(t, newdata)  # by value: 1 matches 1.0, a:b levels are tuples
            if not allow_new_levels and np.any(idx < 0):
                new = sorted(set(group_labels(newdata, t.group)[idx < 0]))
                raise ValueError(f"new levels of {t.group!r} in newdata: {new[:5]}; use "
                                 "allow_new_levels=True to predict them at b = 0")
            bb = np.where(idx[:, None] >= 0, b[np.maximum(idx, 0)], 0.0)
            eta = eta + np.einsum("ij,ij->i", t.design.on(newdata), bb)
    if not se_fit:
        return eta
    V = np.atleast_2d(result.vcov)
    return eta, np.sqrt(np.einsum("ij,jk,ik->i", X, V, X))
