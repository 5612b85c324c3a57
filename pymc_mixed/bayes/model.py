"""The model graph as a ``pm.Model``: built from the same :class:`~pymc_mixed.spec.ModelSpec`
and the same predictor (``spec.mean``) as the maximum-likelihood estimators.

free variables
    ``beta`` (dim ``coef``); the dispersion (``sigma`` for a Gaussian response, the
    family's ``dispersion_name`` otherwise); per grouping factor ``g`` the standard
    deviations ``sd_g`` (dim ``g_coef``) and, for a correlated term such as
    ``(1 + Days | g)``, its LKJ correlation through the canonical partial correlations
    ``cpc_g`` (see :func:`_lkj`). The random effects are either centered -- ``b_g`` itself
    is free, ``N(0, Sigma_g)`` per level -- or non-centered -- ``u_g ~ N(0, I)`` (dims
    ``g_coef``, ``g``) is free and ``b_g`` derived; :mod:`.parametrization` chooses per
    factor from the ML fit.
deterministics
    ``b_g`` (non-centered; dims ``g``, ``g_coef``, factor levels as coordinates),
    ``corr_g`` (dim ``g_corr``: each pair of columns once, ``"Days,(Intercept)"``) and
    ``theta`` (dim ``theta_par``: lme4's relative Cholesky factor, ``chol(cov_g) / sigma``
    for a linear mixed model, in lme4's order), so a posterior lines up with the ``mle``
    group of a maximum-likelihood fit (:mod:`pymc_mixed.datatree`).
likelihood
    the observed response (named after the response column, dim ``obs``) as the family's
    PyMC distribution (:mod:`.likelihood`: ``pm.Normal``, ``pm.Binomial``, ...), so prior
    and posterior predictive sampling and ``pm.model_to_graphviz`` work as for any PyMC model.

The latents ``u_g`` and ``cpc_g`` are sampled but kept out of the ``posterior`` group
(:mod:`.sample` stores them in ``latent_posterior``). PyMC is imported inside the functions.
"""

from __future__ import annotations

import numpy as np

from ..datatree.build import corr_dim, corr_pairs
from ..spec import coef_dim, factor_groups, level_dim
from .priors import Prior, _check_priors, _make_var, default_priors, dispersion_name, make_beta

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
        pairs = corr_pairs(spec, g)
        if pairs:
            coords[corr_dim(g)] = [lab for _, _, lab in pairs]
        n_corr = 0
        for k in info["terms"]:
            t = spec.reterms[k]
            if t.p > 1:
                n_corr += 1
                key = g if n_corr == 1 else f"{g}_{n_corr}"
                coords[f"{key}_cpc"] = [f"{t.cnames[i]},{t.cnames[j]}"
                                        for j in range(t.p) for i in range(j + 1, t.p)]
    return coords


def cached_pymc_model(mm, centered: dict | None = None):
    """``mm.pymc_model``: built on first use, rebuilt when ``mm.priors`` changed (by
    assignment or in place) or when another parametrization is asked for. ``centered``
    defaults to :func:`~.parametrization.choose_centering` of the model's ML fit."""
    from .parametrization import default_centering

    if centered is None:
        centered = default_centering(mm)
    key = ({k: id(v) for k, v in mm.priors.items()}, dict(centered))
    cache = getattr(mm, "_pymc_model_cache", None)
    if cache is None or cache[0] != key:
        cache = (key, build_pymc_model(mm.spec, mm.priors, centered=centered))
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

_CHECK_BOUNDS = False  # parameters of the default priors are valid by construction; the
# bound checks PyMC would add to every log density are graph nodes to compile for nothing


def build_pymc_model(spec, priors: dict | None = None, centered: dict | None = None):
    """The ``pm.Model`` of ``spec`` (see the module docstring for its variables).

    ``priors`` override :func:`default_priors` by name. ``centered`` maps grouping factors
    to True (the random effects ``b_g`` are the free variable) or False (non-centered:
    ``u_g ~ N(0, I)`` free, ``b_g`` derived); unnamed factors are non-centered
    (:func:`pymc_mixed.bayes.parametrization.choose_centering` picks them from an ML fit).
    The pointwise log-likelihood expression (PyMC's own ``logp`` of the observed variable,
    in terms of the model's random variables) is kept on the model as
    ``model.pmm_pointwise_loglik``; the latent variables that do not belong in a tidy
    posterior (``u_g``, ``cpc_g``) are listed in ``model.pmm_latents``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from .. import graph
    from .likelihood import add_likelihood

    priors = dict(priors or {})
    _check_priors(spec, priors)
    pri = {**default_priors(spec), **priors}
    groups = factor_groups(spec.reterms)
    centered = dict(centered or {})
    disp_name = dispersion_name(spec)

    with pm.Model(coords=_coords(spec), check_bounds=_CHECK_BOUNDS) as model:
        beta = make_beta(spec, pri) if spec.p else pt.zeros((0,))
        disp = _make_var(pri[disp_name], disp_name, None, ()) if disp_name else None
        if disp is not None and disp_name != "sigma" and \
                getattr(spec.family, "dispersion_kind", None) == "scale":
            # as the ML result: sigma = sqrt(phi) next to the dispersion phi (gamma family)
            pm.Deterministic("sigma", pt.sqrt(spec.family.phi(disp)))

        factors: list = [None] * len(spec.reterms)
        b: list = [None] * len(spec.reterms)
        for g, info in groups.items():
            _group(spec, pri, g, info, b, factors, bool(centered.get(g, False)))
        _theta_deterministic(spec, factors, disp if graph.theta_is_relative(spec) else 1.0)

        eta = spec.mean.predictor(spec, beta, b)  # the spec's mean, as the ML graph
        obs = add_likelihood(spec, eta, disp, spec.response_name, priors=pri)
    model.pmm_pointwise_loglik = (spec.response_name, pm.logp(obs, obs.tag.observations)
                                  if hasattr(obs.tag, "observations") else
                                  model.logp(vars=[obs], sum=False)[0])
    model.pmm_spec = spec
    model.pmm_centered = {g: bool(centered.get(g, False)) for g in groups}
    model.pmm_latents = [v.name for v in model.free_RVs
                         if v.name.startswith(("u_", "cpc_", "beta_"))]
    return model


def _group(spec, pri, g: str, info: dict, b: list, factors: list, centered: bool) -> None:
    """One grouping factor's variables: ``sd_g``, the LKJ ``cpc`` of its correlated terms,
    ``corr_g`` (each pair once) and the random effects -- ``b_g`` free (centered) or
    ``u_g ~ N(0, I)`` free with ``b_g`` derived (non-centered). Fills ``b[k]`` (list of
    columns) and ``factors[k]`` (``Lambda_k`` as nested lists of scalars, or a scalar)."""
    import pymc as pm
    import pytensor.tensor as pt

    ncol = len(info["cnames"])
    cd = coef_dim(g)
    sd = _make_var(pri[f"sd_{g}"], f"sd_{g}", (cd,), (ncol,))
    chols, col, n_corr = [], 0, 0
    for k in info["terms"]:
        t = spec.reterms[k]
        if t.p > 1:
            n_corr += 1
            C = _rows(_lkj(pri[f"corr_{g}"], g if n_corr == 1 else f"{g}_{n_corr}", t.p), t.p)
            factors[k] = [[sd[col + i] * C[i][j] for j in range(t.p)] for i in range(t.p)]
            chols.append(C)
        else:
            factors[k] = sd[col]
            chols.append([[pt.constant(1.0)]])
        col += t.p
    C_full = _block_rows(chols, ncol)
    pairs = corr_pairs(spec, g)
    if pairs:
        pm.Deterministic(f"corr_{g}", pt.stack([sum(C_full[i][m] * C_full[j][m]
                                                    for m in range(ncol)) for i, j, _ in pairs]),
                         dims=(corr_dim(g),))
    if centered:
        if pairs:
            L = _stack([[sd[i] * C_full[i][j] for j in range(ncol)] for i in range(ncol)])
            bg = pm.MvNormal(f"b_{g}", mu=pt.zeros(ncol), chol=L, dims=(level_dim(g), cd))
        else:
            bg = pm.Normal(f"b_{g}", 0.0, sd, dims=(level_dim(g), cd))
        cols = [bg[:, j] for j in range(ncol)]
    else:
        # stored (columns, levels): each column's effects contiguous
        u_g = pm.Normal(f"u_{g}", 0.0, 1.0, dims=(cd, level_dim(g)))
        cols = [sum(sd[i] * C_full[i][j] * u_g[j] for j in range(i + 1)
                    if not _is_zero(C_full[i][j])) for i in range(ncol)]
        pm.Deterministic(f"b_{g}", pt.stack(cols, axis=1), dims=(level_dim(g), cd))
    col = 0
    for k in info["terms"]:
        b[k] = cols[col:col + spec.reterms[k].p]
        col += spec.reterms[k].p


def _is_zero(x) -> bool:
    from pytensor.tensor.variable import TensorConstant

    return isinstance(x, TensorConstant) and float(x.data) == 0.0


def _block_rows(chols: list, n: int) -> list:
    """Block-diagonal nested lists of scalar expressions from the per-term blocks."""
    import pytensor.tensor as pt

    zero = pt.constant(0.0)
    rows = [[zero] * n for _ in range(n)]
    off = 0
    for C in chols:
        p = len(C)
        for i in range(p):
            for j in range(p):
                rows[off + i][off + j] = C[i][j]
        off += p
    return rows


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
