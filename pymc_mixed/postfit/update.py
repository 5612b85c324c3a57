"""Refits and model updates: a new response (``refit``), a changed formula (``update_spec``,
with R's ``.`` and ``- term``; ``MixedModel.update`` builds a model from it), dropping each
fixed term in turn (``drop1``) and refits without some observations (for
:func:`pymc_mixed.postfit.influence`). Fits go through the estimator the result was made by
(``result.engine``, read by :mod:`._refit`)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import _refit

__all__ = ["refit", "refit_without", "update_formula", "update_args", "update_spec", "drop1"]


def refit(result, y, **kwargs):
    """Refit the model to a new response ``y`` (same length and scale as ``spec.y``:
    proportions for a binomial fit), from the current estimates, with the same estimator.
    The designs and their structure are reused; nothing is re-read from the formula."""
    spec = result.spec
    y = np.asarray(y, dtype=float)
    if y.shape != spec.y.shape:
        raise ValueError(f"the new response has {y.size} values; the model has {spec.n} "
                         "observations")
    kwargs.setdefault("theta0", np.asarray(result.theta_hat, float))
    return _refit.fit_like(result, _refit.spec_with(spec, y=y), **kwargs)


def _subset_spec(spec, keep: np.ndarray):
    """The spec restricted to observations ``keep`` (levels left without observations are
    dropped from their terms, theta's layout is unchanged)."""
    terms = []
    for t in spec.reterms:
        refs = t.refs[keep]
        used, new_refs = np.unique(refs, return_inverse=True)
        keys = None if t.level_keys is None else [t.level_keys[i] for i in used]
        terms.append(_refit.spec_with(t, refs=new_refs.astype(t.refs.dtype),
                                      levels=[t.levels[i] for i in used], z=t.z[keep],
                                      level_keys=keys))
    sub = {"y": spec.y[keep], "X": spec.X[keep], "reterms": terms}
    for name in ("weights", "offset", "trials"):
        if getattr(spec, name) is not None:
            sub[name] = getattr(spec, name)[keep]
    if isinstance(spec.offset_arg, np.ndarray):
        sub["offset_arg"] = spec.offset_arg[keep]
    if spec.data is not None:
        sub["data"] = spec.data.iloc[keep]
    return _refit.spec_with(spec, **sub)


def refit_without(result, drop, **kwargs):
    """Refit without the observations ``drop`` (indices), started at the estimates."""
    keep = np.setdiff1d(np.arange(result.spec.n), np.asarray(drop, dtype=int))
    kwargs.setdefault("theta0", np.asarray(result.theta_hat, float))
    return _refit.fit_like(result, _subset_spec(result.spec, keep), **kwargs)


def _split_terms(rhs: str) -> list[tuple[str, str]]:
    """Top-level ``+``/``-`` separated terms of a formula side, with their signs."""
    out, depth, cur, sign = [], 0, "", "+"
    for ch in rhs:
        if ch in "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and ch in "+-":
            if cur.strip():
                out.append((sign, cur.strip()))
            cur, sign = "", ch
        else:
            cur += ch
    if cur.strip():
        out.append((sign, cur.strip()))
    return out


def _norm(term: str) -> str:
    return re.sub(r"\s+", "", term)


def _key(term: str) -> frozenset:
    """A term as the set of its factors: ``a:b`` and ``b:a`` are one term."""
    return frozenset(_norm(f) for f in _top_split(term, ":"))


def update_formula(old: str, new: str) -> str:
    """R's ``update.formula``: ``.`` stands for the old side; ``- term`` removes a term,
    ``+ term`` adds one. ``update_formula("y ~ a + (1|g)", "~ . - a")`` is
    ``"y ~ 1 + (1|g)"``."""
    if "~" not in old or "~" not in new:
        raise ValueError(f"formulas need a '~': {old!r}, {new!r}")
    old_lhs, old_rhs = (s.strip() for s in old.split("~", 1))
    new_lhs, new_rhs = (s.strip() for s in new.split("~", 1))
    lhs = old_lhs if new_lhs in ("", ".") else new_lhs
    terms: list[str] = []
    for sign, term in _split_terms(new_rhs):
        # "." brings the old terms, a*b written out as a + b + a:b so "- a:b" can remove one
        expand = [e for s, t in _split_terms(old_rhs) if s == "+" for e in _expand_star(t)] \
            if term == "." else [term]
        removed = {_norm(t) for s, t in _split_terms(old_rhs) if s == "-"} if term == "." \
            else set()
        for t in expand:
            if sign == "+":
                if _norm(t) not in {_norm(x) for x in terms} and _norm(t) not in removed:
                    terms.append(t)
            else:
                before = len(terms)
                terms = [x for x in terms if _key(x) != _key(t)]
                if len(terms) == before and t not in ("1", "0"):
                    raise ValueError(f"cannot remove {t!r}: not a term of {old!r}")
                if t == "1":
                    terms.append("0")
    if not any(_norm(t) in ("0", "1") for t in terms) and not any("|" not in t for t in terms):
        terms.insert(0, "1")
    return f"{lhs} ~ {' + '.join(terms)}"


def update_args(spec, formula: str | None = None, data=None, **kwargs) -> dict:
    """The arguments of :class:`~pymc_mixed.model.MixedModel` (``formula``, ``data``, family,
    link, weights, offset) for ``spec`` updated by ``formula`` (``"~ . - Days"``) and/or
    ``data``; other arguments are kept unless given. Without new data the model's own rows
    are reused (missing rows already dropped), with the weights and ``offset=`` argument
    aligned with them; the formula's ``offset()`` terms are re-read from the formula."""
    new = spec.formula if formula is None else update_formula(spec.formula, formula)
    if data is None:
        data = spec.data
        if data is None:
            raise ValueError("the model kept no data; pass data=")
        kwargs.setdefault("weights", spec.weights)
        kwargs.setdefault("offset", spec.offset_arg)
    kwargs.setdefault("family", spec.family)
    return {"formula": new, "data": data, **kwargs}


def update_spec(spec, formula: str | None = None, data=None, **kwargs):
    """The :class:`~pymc_mixed.spec.ModelSpec` of an updated model (see :func:`update_args`)."""
    from ..formula import build_spec

    return build_spec(**update_args(spec, formula, data, **kwargs))


def _top_split(term: str, sep: str) -> list[str]:
    """``term`` split at ``sep`` outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in term:
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch == sep:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + [cur.strip()]


def _expand_star(term: str) -> list[str]:
    """R's ``a*b*c``: every interaction of the factors, lowest order first."""
    from itertools import combinations

    parts = _top_split(term, "*")
    if len(parts) == 1:
        return [term]
    return [":".join(c) for k in range(1, len(parts) + 1) for c in combinations(parts, k)]


def _drop_scope(terms: list[str]) -> list[str]:
    """The terms contained in no other term (R's ``drop.scope``), in order, once each."""
    sets = [_key(t) for t in terms]
    out, seen = [], set()
    for t, st in zip(terms, sets):
        if st in seen or any(st < other for other in sets):
            continue
        seen.add(st)
        out.append(t)
    return out


def drop1(result) -> pd.DataFrame:
    """Likelihood-ratio test for dropping each fixed-effects term (lme4's
    ``drop1(fit, test = "Chisq")``), models fitted by ML. As R's ``drop.scope``: ``a*b`` is
    expanded into ``a``, ``b``, ``a:b``, and only terms contained in no other term are
    dropped (marginality: here just ``a:b``); the intercept is not dropped."""
    from scipy.stats import chi2

    spec = result.spec
    lmm = _refit.is_lmm(result)
    kw = {"REML": False} if lmm else {}
    base = result if not getattr(result, "REML", False) else \
        _refit.fit_like(result, spec, theta0=np.asarray(result.theta_hat, float), **kw)
    written = [t for s, t in _split_terms(spec.formula.split("~", 1)[1]) if s == "+"
               and "|" not in t and t not in ("1", "0")]
    fixed = _drop_scope([e for t in written for e in _expand_star(t)])
    rows = [{"term": "<none>", "npar": np.nan, "AIC": base.aic, "LRT": np.nan,
             "Pr(Chi)": np.nan}]
    for term in fixed:
        r = _refit.fit_like(result, update_spec(spec, f". ~ . - {term}"), **kw)
        df = base.dof - r.dof
        lrt = max(-2 * (r.loglik - base.loglik), 0.0)
        rows.append({"term": term, "npar": df, "AIC": r.aic, "LRT": lrt,
                     "Pr(Chi)": chi2.sf(lrt, df)})
    return pd.DataFrame(rows).set_index("term")
