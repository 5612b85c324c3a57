"""Full Bayesian inference: the model graph as a ``pm.Model``, sampled with NUTS.

The PyMC model is built from the same :class:`~pymc_mixed.spec.ModelSpec` and the same graph
steps (:mod:`pymc_mixed.graph`) as the maximum-likelihood estimators, non-centered:

free variables
    ``beta`` (dim ``coef``); the dispersion (``sigma`` for a Gaussian response, the
    family's ``dispersion_name`` otherwise); per grouping factor ``g`` the standard
    deviations ``sd_g`` (dim ``g_coef``), for a correlated term such as ``(1 + Days | g)``
    its LKJ correlation through the canonical partial correlations ``cpc_g`` (dim ``g_cpc``,
    see :func:`_lkj`), and the spherical random effects ``u_g ~ N(0, I)`` (dims ``g_coef``,
    ``g``: the blocks of the spherical ``u`` of :mod:`pymc_mixed.graph`, one row per column
    of the term).
deterministics
    ``b_g = u_g' (diag(sd_g) L_g)'`` with ``L_g`` the Cholesky factor of the correlation
    (dims ``g``, ``g_coef``; factor levels as coordinates), ``corr_g`` (dims ``g_coef``,
    ``g_coef_bis``) and ``theta`` (dim ``theta_par``: lme4's relative Cholesky factor,
    ``chol(cov_g) / sigma`` for a linear mixed model, in lme4's order), so a posterior lines
    up with the ``mle`` group of a maximum-likelihood fit (:mod:`pymc_mixed.datatree`).
likelihood
    the observed response (named after the response column, dim ``obs``) with the family's
    own log density (``family.logp_graph``), so any family the graph knows can be sampled.

Priors: :mod:`pymc_mixed.bayes.priors`; sampling: :mod:`pymc_mixed.bayes.sample`. PyMC, nutpie
and ArviZ are imported only inside the functions.
"""

from __future__ import annotations

import numpy as np

from ..spec import coef_dim, corr_dims, factor_groups, level_dim
from .priors import Prior, _check_priors, _make_var, default_priors, dispersion_name

__all__ = ["build_pymc_model", "cached_pymc_model"]


def _coords(spec) -> dict[str, list]:
    coords: dict[str, list] = {
        "coef": list(spec.xnames),
        "theta_par": list(spec.theta_names),
        "obs": list(range(spec.n)),
    }
    for g, info in factor_groups(spec.reterms).items():
        coords[level_dim(g)] = [str(v) for v in info["levels"]]
        coords[coef_dim(g)] = info["cnames"]
        if info["correlated"]:
            coords[corr_dims(g)[1]] = info["cnames"]
        n_corr = 0
        for k in info["terms"]:
            t = spec.reterms[k]
            if t.p > 1:
                n_corr += 1
                key = g if n_corr == 1 else f"{g}_{n_corr}"
                coords[f"{key}_cpc"] = [f"{t.cnames[i]},{t.cnames[j]}"
                                        for j in range(t.p) for i in range(j + 1, t.p)]
    return coords


def cached_pymc_model(mm):
    """``mm.pymc_model``: built on first use, rebuilt when ``mm.priors`` changed (by
    assignment or in place)."""
    key = {k: id(v) for k, v in mm.priors.items()}
    cache = getattr(mm, "_pymc_model_cache", None)
    if cache is None or cache[0] != key:
        cache = (key, build_pymc_model(mm.spec, mm.priors))
        mm._pymc_model_cache = cache
    return cache[1]


def _cpc_to_chol(z, n: int):
    """Cholesky factor of a correlation matrix from its canonical partial correlations ``z``
    (in (-1, 1), column by column below the diagonal):
    ``L[i, j] = z_ij sqrt(1 - sum_{k<j} L[i, k]^2)``, ``L[i, i] = sqrt(1 - sum_{k<i} L[i, k]^2)``.

    Written with scalar operations because ``n`` is small: a handful of elementwise ops compile
    in a fraction of the time of a generic triangular transform. Returns nested lists of
    scalar expressions (rows first); :func:`_stack` makes the matrix.
    """
    import pytensor.tensor as pt

    zero, one = pt.constant(0.0), pt.constant(1.0)
    idx = {}
    for j in range(n):
        for i in range(j + 1, n):
            idx[i, j] = len(idx)
    rows = [[one] + [zero] * (n - 1)]
    for i in range(1, n):
        row, rest = [], one
        for j in range(i):
            lij = z[idx[i, j]] * (pt.sqrt(rest) if j else one)
            row.append(lij)
            rest = rest - lij**2
        row.append(pt.sqrt(rest))
        row += [zero] * (n - 1 - i)
        rows.append(row)
    return rows


def _rows(C, n: int) -> list:
    """A matrix as nested lists of its scalar entries (rows first)."""
    if isinstance(C, (list, tuple)):
        return [list(r) for r in C]
    return [[C[i, j] for j in range(n)] for i in range(n)]


def _stack(rows):
    import pytensor.tensor as pt

    return pt.stack([pt.stack(r) for r in rows])


def _lkj(prior, group: str, n: int):
    """The Cholesky factor of an LKJ-distributed ``n x n`` correlation matrix.

    An ``LKJCorr(eta)`` prior is sampled through its canonical partial correlations, which are
    independent: ``(z_ij + 1) / 2 ~ Beta(b_j, b_j)`` with ``b_j = eta + (n - 2 - j) / 2`` for
    column ``j`` (Lewandowski, Kurowicka and Joe 2009, sec. 3.2) -- the free variable
    ``cpc_<group>`` holds ``(z + 1) / 2``. Any other prior is a callable ``f(name, n=n)``
    returning the Cholesky factor itself.
    """
    import pymc as pm

    if isinstance(prior, Prior) and prior.dist == "LKJCorr":
        eta = float(prior.params.get("eta", 1.0))
        if eta <= 0:
            raise ValueError(f"LKJCorr eta must be positive, got {eta}")
        b = np.array([eta + (n - 2 - j) / 2.0 for j in range(n) for _ in range(j + 1, n)])
        w = pm.Beta(f"cpc_{group}", alpha=b, beta=b, dims=(f"{group}_cpc",))
        return _cpc_to_chol(2.0 * w - 1.0, n)
    if isinstance(prior, Prior) or not callable(prior):
        raise ValueError(f"the correlation prior of {group!r} must be Prior('LKJCorr', eta=...) "
                         f"or a callable f(name, n=n) returning a Cholesky factor; got {prior}")
    return prior(f"chol_corr_{group}", n=n)


# -- the model ---------------------------------------------------------------------------------

class _FamilyLogp:
    """The observed variable's log density: the family's ``logp_graph`` through
    :func:`pymc_mixed.graph.pointwise_loglik`. A module-level class rather than a closure so
    that the model pickles (PyMC's multiprocess sampler needs it)."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, value, eta, *disp):
        from ..graph import pointwise_loglik

        return pointwise_loglik(self.spec, eta, disp[0] if disp else None, y=value)


_CHECK_BOUNDS = False  # parameters of the default priors are valid by construction; the
# bound checks PyMC would add to every log density are graph nodes to compile for nothing


def build_pymc_model(spec, priors: dict | None = None):
    """The non-centered ``pm.Model`` of ``spec`` (see the module docstring for its variables).

    ``priors`` override :func:`default_priors` by name. The pointwise log-likelihood
    expression (in terms of the model's random variables) is kept on the model as
    ``model.pmm_pointwise_loglik`` (not a Deterministic, so that samplers do not store an
    n-vector per draw); :func:`sample_model` evaluates it after sampling.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from .. import graph

    priors = dict(priors or {})
    _check_priors(spec, priors)
    pri = {**default_priors(spec), **priors}
    groups = factor_groups(spec.reterms)
    resp = spec.response_name
    disp_name = dispersion_name(spec)

    with pm.Model(coords=_coords(spec), check_bounds=_CHECK_BOUNDS) as model:
        beta = (_make_var(pri["beta"], "beta", ("coef",), (spec.p,)) if spec.p
                else pt.zeros((0,)))
        disp = _make_var(pri[disp_name], disp_name, None, ()) if disp_name else None
        if disp is not None and disp_name != "sigma" and \
                getattr(spec.family, "dispersion_kind", None) == "scale":
            # as the ML result: sigma = sqrt(phi) next to the dispersion phi (gamma family)
            pm.Deterministic("sigma", pt.sqrt(spec.family.phi(disp)))

        factors: list = [None] * len(spec.reterms)
        u_blocks: list = [None] * len(spec.reterms)
        for g, info in groups.items():
            _group_factors(spec, pri, g, info, u_blocks, factors)

        b = graph.scale_ranef(spec, u_blocks, factors, as_columns=True)
        for g, info in groups.items():
            pm.Deterministic(f"b_{g}", pt.stack([c for k in info["terms"] for c in b[k]], axis=1),
                             dims=(level_dim(g), coef_dim(g)))
        _theta_deterministic(spec, factors, disp if graph.theta_is_relative(spec) else 1.0)

        eta = spec.mean.predictor(spec, beta, b)  # the spec's mean, as the ML graph
        params = (eta,) if disp is None else (eta, disp)
        pm.CustomDist(resp, *params, logp=_FamilyLogp(spec),
                      observed=np.asarray(spec.y, dtype=float), dims=("obs",))
    model.pmm_pointwise_loglik = (resp, graph.pointwise_loglik(spec, eta, disp))
    model.pmm_spec = spec
    return model


def _group_factors(spec, pri, g: str, info: dict, u_blocks: list, factors: list) -> None:
    """One grouping factor's free variables (``sd_g``, ``u_g``, LKJ ``cpc``) and ``corr_g``;
    fills ``u_blocks[k]`` (columns of u) and ``factors[k]`` (``Lambda_k`` as nested lists of
    scalars, or a scalar) for each of its terms ``k``."""
    import pymc as pm
    import pytensor.tensor as pt

    ncol = len(info["cnames"])
    sd = _make_var(pri[f"sd_{g}"], f"sd_{g}", (coef_dim(g),), (ncol,))
    # stored (columns, levels): each column's effects contiguous, taken as rows below
    u_g = pm.Normal(f"u_{g}", 0.0, 1.0, dims=(coef_dim(g), level_dim(g)))
    corr_blocks = []
    col = 0
    n_corr = 0
    for k in info["terms"]:
        t = spec.reterms[k]
        u_blocks[k] = [u_g[col + j] for j in range(t.p)]
        if t.p > 1:
            n_corr += 1
            C = _rows(_lkj(pri[f"corr_{g}"], g if n_corr == 1 else f"{g}_{n_corr}", t.p), t.p)
            factors[k] = [[sd[col + i] * C[i][j] for j in range(t.p)] for i in range(t.p)]
            corr_blocks.append(_stack([[sum(C[i][m] * C[j][m] for m in range(t.p))
                                        for j in range(t.p)] for i in range(t.p)]))
        else:
            factors[k] = sd[col]
            corr_blocks.append(pt.ones((1, 1)))
        col += t.p
    if info["correlated"]:
        corr = corr_blocks[0] if len(corr_blocks) == 1 else pt.linalg.block_diag(*corr_blocks)
        pm.Deterministic(f"corr_{g}", corr, dims=corr_dims(g))


def _theta_deterministic(spec, factors: list, scale) -> None:
    """``theta``: lme4's relative factor (``Lambda_k / scale``), lower triangles column by
    column, terms in spec order, so a posterior lines up with an ML fit."""
    import pymc as pm
    import pytensor.tensor as pt

    parts = []
    for t, F in zip(spec.reterms, factors):
        if t.p == 1:
            parts.append((F / scale)[None])
        else:
            rows, cols = t.tril_index
            parts.append(pt.stack([F[i][j] for i, j in zip(rows, cols)]) / scale)
    pm.Deterministic("theta", pt.concatenate(parts) if len(parts) > 1 else parts[0],
                     dims=("theta_par",))
