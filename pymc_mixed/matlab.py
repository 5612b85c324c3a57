"""MATLAB's ``nlmefit`` and ``nlmefitsa`` as functional front ends over
:class:`NonlinearMixedModel`.

MATLAB users keep their calls::

    beta, PSI, stats, b = pmm.nlmefit(X, y, group, V, modelfun, beta0, **options)

with MATLAB's option names and defaults (``FEParamsSelect``, ``FEConstDesign``,
``FEGroupDesign``, ``FEObsDesign``, their ``RE*`` counterparts, ``CovPattern`` (default
diagonal), ``ParamTransform``, ``ErrorModel``, ``ErrorParameters``, ``ApproximationType``
(default ``"LME"``), ``RefineBeta0`` (default ``"on"``), ``Options`` with ``TolX``,
``TolFun``, ``MaxIter``, ``Display`` and ``OutputFcn``). The model function is called as
MATLAB calls it, ``modelfun(PHI, XFUN, VFUN)`` (or ``modelfun(PHI, XFUN)`` when ``V`` is
empty), with ``PHI`` an n-by-p matrix of per-observation parameters. It may use NumPy ufuncs
(``np.exp`` works on PyTensor variables): derivatives come from autodiff, not finite
differences.

Where this differs from MATLAB, and why:

* ``PHI[:, j]`` is the j-th parameter of every observation (0-based, as Python indexes).
  Only column indexing is supported on ``PHI``; the function is evaluated for all
  observations at once (MATLAB's ``Vectorization="Full"``).
* A single-column ``X`` or ``V`` is passed as a vector, so ``PHI[:, 0] * X`` has the shape
  MATLAB's ``PHI(:,1).*X`` has (write ``X``, not ``X[:, 0]``); with several columns
  ``X[:, k]`` is column k.
* Group levels are ordered as ``numpy.unique`` orders them (sorted); the rows of ``V`` and
  the columns of ``b`` follow that order (MATLAB's ``grp2idx`` sorts numeric groups alike).
* A fixed or random effect that feeds more than one parameter, and a parameter without a
  fixed effect, are refused with an error: pymc_mixed's parameters each have their own
  coefficients (write a shared coefficient as two).
* ``stats.rmse`` is the root mean squared individual residual on the error model's working
  scale (log scale for the exponential model) with ``dfe`` degrees of freedom; ``bic`` counts
  groups, as MATLAB does (``log(M)``, M groups), where ``result.bic`` counts observations.
* ``ErrorParameters`` and ``Vectorization`` are accepted for compatibility: the estimators
  start the error parameters from their own (profiled) values, and the model function is
  always evaluated for all observations at once.
* The fit itself is pymc_mixed's (LME is nlme's Lindstrom-Bates algorithm, FOCE the Laplace
  approximation): estimates agree with nlme/nlmer to their tolerances, not with MATLAB's
  iterations digit by digit.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["nlmefit", "nlmefitsa", "NlmeStats"]

_METHODS = {"LME": "LME", "RELME": "RELME", "FO": "FO", "FOCE": "FOCE"}
_GROUP = "_group"


@dataclass
class NlmeStats:
    """MATLAB's ``stats`` structure (attribute or key access: ``stats.logl``, ``stats["aic"]``)."""

    dfe: int
    logl: float
    aic: float
    bic: float
    rmse: float
    errorparam: np.ndarray
    sebeta: np.ndarray
    covb: np.ndarray
    ires: np.ndarray = field(repr=False)
    pres: np.ndarray = field(repr=False)
    iwres: np.ndarray = field(repr=False)
    pwres: np.ndarray = field(repr=False)
    cwres: np.ndarray = field(repr=False)
    result: object = field(default=None, repr=False)  # the pymc_mixed result behind it

    def __getitem__(self, key: str):
        return getattr(self, key)


class _PhiMatrix:
    """``PHI`` of the model function: ``PHI[:, j]`` is parameter j of every observation.

    Parameter tensors may carry leading batch axes (the estimators evaluate many parameter
    sets at once), so only column indexing is offered.
    """

    def __init__(self, columns: list):
        self._columns = columns

    @property
    def shape(self):
        return (None, len(self._columns))

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None):
            j = key[1]
            if isinstance(j, (int, np.integer)):
                return self._columns[j]
        raise IndexError("PHI supports column indexing only: PHI[:, j] (0-based)")


# -- designs -----------------------------------------------------------------------------------
def _as_matrix(a, n: int, what: str) -> np.ndarray:
    if a is None or (hasattr(a, "__len__") and len(a) == 0):
        return np.zeros((n, 0))
    a = np.asarray(a, dtype=float)
    a = a.reshape(-1, 1) if a.ndim == 1 else a
    if a.ndim != 2 or a.shape[0] != n:
        raise ValueError(f"{what} must have one row per observation ({n}), got shape {a.shape}")
    return a


def _select(sel, p: int, what: str) -> np.ndarray:
    """``*ParamsSelect`` (1-based indices or a logical mask) -> 0-based parameter indices."""
    sel = np.asarray(sel).ravel()
    if sel.dtype == bool:
        if sel.size != p:
            raise ValueError(f"{what} as a logical vector needs {p} elements, got {sel.size}")
        return np.flatnonzero(sel)
    idx = sel.astype(int) - 1
    if idx.size and (idx.min() < 0 or idx.max() >= p):
        raise ValueError(f"{what} must index parameters 1..{p}, got {sel.tolist()}")
    return idx


def _design(const, grp, obs, select, p: int, k_default: int, codes, n: int, what: str):
    """The (n, p, k) design of one effect type from MATLAB's four ways of giving it."""
    if obs is not None:
        D = np.asarray(obs, dtype=float)
        if D.ndim != 3 or D.shape[0] != p or D.shape[2] != n:
            raise ValueError(f"{what}ObsDesign must be p x k x n = {p} x k x {n}, got {D.shape}")
        return np.transpose(D, (2, 0, 1))
    if grp is not None:
        D = np.asarray(grp, dtype=float)
        if D.ndim != 3 or D.shape[0] != p or D.shape[2] != codes.max() + 1:
            raise ValueError(f"{what}GroupDesign must be p x k x m with m = {codes.max() + 1} "
                             f"groups, got {D.shape}")
        return np.transpose(D, (2, 0, 1))[codes]
    if const is not None:
        D = np.asarray(const, dtype=float)
        if D.ndim != 2 or D.shape[0] != p:
            raise ValueError(f"{what}ConstDesign must be p x k with p = {p}, got {D.shape}")
        return np.broadcast_to(D, (n,) + D.shape)
    idx = np.arange(k_default) if select is None else _select(select, p, f"{what}ParamsSelect")
    return np.broadcast_to(np.eye(p)[:, idx], (n, p, idx.size))


def _param_count(beta0, options) -> int:
    """p, the number of parameters, from whichever design names it (else numel(beta0))."""
    for key in ("FEConstDesign", "FEGroupDesign", "FEObsDesign", "REConstDesign",
                "REGroupDesign", "REObsDesign"):
        if options.get(key) is not None:
            return int(np.asarray(options[key]).shape[0])
    for key in ("FEParamsSelect", "REParamsSelect"):
        sel = options.get(key)
        if sel is not None and np.asarray(sel).dtype == bool:
            return int(np.asarray(sel).size)
    if options.get("ParamTransform") is not None:
        return int(np.asarray(options["ParamTransform"]).size)
    return int(np.asarray(beta0).size)


def _owner(D: np.ndarray, what: str) -> list[int]:
    """For each column of an (n, p, k) design, the one parameter it feeds."""
    owners = []
    for c in range(D.shape[2]):
        used = np.flatnonzero(np.any(D[:, :, c] != 0, axis=0))
        if used.size != 1:
            raise NotImplementedError(
                f"{what} effect {c + 1} feeds {used.size} parameters; pymc_mixed gives every "
                "parameter its own coefficients (write a shared coefficient as two)")
        owners.append(int(used[0]))
    return owners


# -- the model -----------------------------------------------------------------------------------
def _untransform(code: int, x):
    """MATLAB's ``ParamTransform``: the model sees ``f^-1(A beta + B b)``."""
    import pytensor.tensor as pt

    if code == 0:
        return x
    if code == 1:
        return pt.exp(x)
    if code == 2:
        return 0.5 * pt.erfc(-x / np.sqrt(2.0))
    if code == 3:
        return pt.sigmoid(x)
    raise ValueError(f"ParamTransform codes are 0 (none), 1 (log), 2 (probit), 3 (logit); got {code}")


def _wrap(modelfun, params, xcols, vcols, transform):
    """The pymc_mixed model function ``fun(phi, *columns)`` around MATLAB's ``modelfun``."""
    try:
        nargs = len(inspect.signature(modelfun).parameters)
    except (TypeError, ValueError):
        nargs = 3
    with_v = bool(vcols) and nargs >= 3

    def as_block(cols):
        import pytensor.tensor as pt

        if len(cols) == 1:  # a vector, so PHI[:, j] * X keeps the shape of PHI(:,j).*X
            return cols[0]
        return pt.stack(cols, axis=1) if cols else pt.zeros((0,))

    def fun(phi, *cols):
        PHI = _PhiMatrix([_untransform(int(c), phi[nm]) for nm, c in zip(params, transform)])
        XF = as_block(cols[:len(xcols)])
        if with_v:
            return modelfun(PHI, XF, as_block(cols[len(xcols):]))
        return modelfun(PHI, XF)

    sig = [inspect.Parameter("phi", inspect.Parameter.POSITIONAL_ONLY)]
    sig += [inspect.Parameter(c, inspect.Parameter.POSITIONAL_ONLY) for c in xcols + vcols]
    fun.__signature__ = inspect.Signature(sig)
    fun.__name__ = getattr(modelfun, "__name__", "modelfun")
    return fun


def _fixed_parts(A: np.ndarray, names: list[str], data: dict) -> tuple[dict, list]:
    """``fixed=`` formulas per parameter, and for each MATLAB coefficient its name."""
    owner = _owner(A, "fixed")
    missing = [nm for j, nm in enumerate(names) if j not in owner]
    if missing:
        raise NotImplementedError(f"parameter {missing[0]!r} has no fixed effect; pymc_mixed "
                                  "needs one per parameter (FEParamsSelect)")
    fixed, coef = {}, [None] * A.shape[2]
    for j, nm in enumerate(names):
        cols = [c for c in range(A.shape[2]) if owner[c] == j]
        terms = []
        for c in cols:
            col = f"_fe{c + 1}"
            data[col] = A[:, j, c]
            terms.append(col)
        fixed[nm] = "0 + " + " + ".join(terms)
        for c in cols:
            coef[c] = f"{nm}._fe{c + 1}"
    return fixed, coef


def _random_parts(B: np.ndarray, names: list[str], data: dict, cov_blocks):
    """``random=`` statements and ``cov=`` from the random design and ``CovPattern``; for
    each MATLAB random effect, its column name in the fitted term."""
    owner = _owner(B, "random")
    ones = [bool(np.all(B[:, owner[c], c] == 1.0)) for c in range(B.shape[2])]
    if all(ones) and len(set(owner)) == len(owner):
        params = [names[owner[c]] for c in range(B.shape[2])]
        cov = [[params[c] for c in blk] for blk in cov_blocks]
        return f"{' + '.join(params)} ~ 1 | {_GROUP}", cov, params
    if any(len(b) > 1 for b in cov_blocks):
        raise NotImplementedError("CovPattern with correlated random effects needs each random "
                                  "effect to enter one parameter with coefficient 1")
    statements, cnames = [], []
    for c in range(B.shape[2]):
        col = f"_re{c + 1}"
        data[col] = B[:, owner[c], c]
        statements.append(f"{names[owner[c]]} ~ 0 + {col} | {_GROUP}")
        cnames.append(f"{names[owner[c]]}.{col}")
    return statements, "diagonal", cnames


def _cov_blocks(pattern, r: int) -> list[list[int]]:
    """``CovPattern`` (r x r 0/1 matrix or a length-r group vector) -> blocks of effects."""
    if pattern is None:
        return [[c] for c in range(r)]
    P = np.asarray(pattern)
    if P.ndim == 1:
        if P.size != r:
            raise ValueError(f"CovPattern as a vector needs {r} elements, got {P.size}")
        return [list(np.flatnonzero(P == g)) for g in dict.fromkeys(P.tolist())]
    if P.shape != (r, r):
        raise ValueError(f"CovPattern must be {r} x {r}, got {P.shape}")
    linked = (P != 0) | (P.T != 0) | np.eye(r, dtype=bool)
    label = list(range(r))  # connected components: MATLAB completes the pattern to blocks
    for _ in range(r):
        for i in range(r):
            for j in np.flatnonzero(linked[i]):
                label[i] = label[j] = min(label[i], label[j])
    return [[c for c in range(r) if label[c] == g] for g in dict.fromkeys(label)]


# -- the fit -----------------------------------------------------------------------------------
def _refine_beta0(model, beta0: np.ndarray, tol: float) -> np.ndarray:
    """MATLAB's ``RefineBeta0``: pooled nonlinear least squares ignoring the random effects
    (nlinfit), on the error model's working scale."""
    from scipy.optimize import least_squares

    spec, kern = model.spec, model.kernel
    em = spec.error_model
    yw = em.working_response(spec.y)

    def resid(beta):
        f = kern.f(spec.phi_fixed(beta))
        return em.working_mean(f)[0] - yw

    def jac(beta):
        f, J = kern.fj(spec.phi_fixed(beta))
        return em.working_mean(f, spec.fixed_jacobian(J))[1]

    try:
        sol = least_squares(resid, beta0, jac=jac, xtol=tol, ftol=tol, max_nfev=200)
    except Exception:  # a start where the function is not finite: keep the user's beta0
        return beta0
    return sol.x if np.isfinite(sol.cost) and sol.cost <= 0.5 * np.sum(resid(beta0) ** 2) \
        else beta0


def _output_callback(outfun, order):
    """MATLAB's ``OutputFcn(beta, status, state)`` as the estimator's callback."""
    if outfun is None:
        return None

    def callback(beta, theta, it):
        status = {"procedure": "ALT", "iteration": int(it), "theta": np.asarray(theta)}
        return bool(outfun(np.asarray(beta)[order], status, "iter"))

    return callback


def nlmefit(X, y, group, V, modelfun, beta0, **options):
    """Fit a nonlinear mixed-effects model as MATLAB's ``nlmefit`` does.

    Parameters
    ----------
    X : n-by-h predictors (or a vector, or None/[] for none), passed to ``modelfun``.
    y : n responses.
    group : n group labels (any type).
    V : m-by-g group-level predictors, one row per group (groups in sorted order), or None.
    modelfun : ``modelfun(PHI, XFUN, VFUN)`` -> n means; ``PHI[:, j]`` is parameter j.
    beta0 : initial fixed effects (length f).
    **options : MATLAB's name-value arguments (see the module docstring).

    Returns
    -------
    beta : (f,) fixed effects, in MATLAB's order.
    PSI : (r, r) covariance of the random effects.
    stats : :class:`NlmeStats` (``dfe, logl, aic, bic, rmse, errorparam, sebeta, covb,
        ires, pres, iwres, pwres, cwres``).
    b : (r, m) random effects, one column per group.

    Examples
    --------
    >>> import numpy as np, pymc_mixed as pmm
    >>> ind = pmm.datasets.load("Indometh")
    >>> model = lambda PHI, t: PHI[:, 0] * np.exp(-PHI[:, 1] * t) + PHI[:, 2] * np.exp(-PHI[:, 3] * t)
    >>> beta, PSI, stats, b = pmm.nlmefit(ind["time"], ind["conc"], ind["Subject"], None, model,
    ...                                   [2.0, 0.5, 0.5, -1.0], ParamTransform=[0, 1, 0, 1],
    ...                                   REParamsSelect=[1, 2, 3])
    >>> np.round(beta, 2)
    array([ 2.83,  0.77,  0.46, -1.34])
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"nlmefit got unknown option {sorted(unknown)[0]!r}; options: "
                        f"{', '.join(sorted(_OPTIONS))}")
    model, coef, order, re_names, levels, codes = _translate(X, y, group, V, modelfun, beta0,
                                                             options)
    opts = dict(options.get("Options") or {})
    if str(options.get("RefineBeta0", "on")).lower() == "on":
        model.spec.beta0 = _refine_beta0(model, model.spec.beta0, float(opts.get("TolX", 1e-8)))
    method = _METHODS.get(str(options.get("ApproximationType", "LME")).upper())
    if method is None:
        raise ValueError("ApproximationType must be 'LME', 'RELME', 'FO' or 'FOCE'")
    res = model.fit(method=method, callback=_output_callback(opts.get("OutputFcn"), order))
    return _outputs(res, order, re_names, levels, codes)


def nlmefitsa(X, y, group, V, modelfun, beta0, seed=None, **options):
    """Fit a nonlinear mixed-effects model by SAEM, as MATLAB's ``nlmefitsa`` does.

    The model, designs and outputs are those of :func:`nlmefit`; the estimator is SAEM
    (:mod:`pymc_mixed.nonlinear.saem`) with nlmefitsa's options (``NIterations``, ``NBurnIn``,
    ``NMCMCIterations``, ``NChains``, ``Replicates``, ``Cov0``, ``ComputeStdErrors``,
    ``LogLikMethod``, ``OptimFun``, and ``Options`` with ``OutputFcn``). ``seed`` makes the run
    bit-for-bit reproducible (MATLAB uses its global random stream instead).
    ``ApproximationType`` and ``RefineBeta0`` do not apply, as in MATLAB.
    """
    unknown = set(options) - _SA_OPTIONS
    if unknown:
        raise TypeError(f"nlmefitsa got unknown option {sorted(unknown)[0]!r}; options: "
                        f"{', '.join(sorted(_SA_OPTIONS))}")
    design = {k: v for k, v in options.items() if k in _DESIGN_OPTIONS}
    model, coef, order, re_names, levels, codes = _translate(X, y, group, V, modelfun, beta0,
                                                             design)
    saem = {k: v for k, v in options.items() if k not in _DESIGN_OPTIONS and k != "Options"}
    outfun = dict(options.get("Options") or {}).get("OutputFcn")
    if outfun is not None:
        saem["OutputFcn"] = lambda params, status, state: outfun(
            np.array([params[c] for c in coef]), status, state)
    saem.pop("ErrorParameters", None)  # the M-step starts the error parameters itself
    res = model.fit(method="saem", seed=seed, **saem)
    return _outputs(res, order, re_names, levels, codes)


def _translate(X, y, group, V, modelfun, beta0, options):
    """MATLAB's inputs -> (NonlinearMixedModel, coefficient names in MATLAB's order, their
    positions in the model's beta, random-effect names, group levels, group codes)."""
    from .nonlinear.model import NonlinearMixedModel

    y = np.asarray(y, dtype=float).ravel()
    n = y.size
    labels = np.asarray(group).ravel()
    if labels.size != n:
        raise ValueError(f"group has {labels.size} elements, y has {n}")
    levels, codes = np.unique(labels, return_inverse=True)
    Xm = _as_matrix(X, n, "X")
    Vm = np.zeros((levels.size, 0)) if V is None or np.size(V) == 0 else np.asarray(V, float)
    Vm = Vm.reshape(-1, 1) if Vm.ndim == 1 else Vm
    if Vm.shape[0] != levels.size:
        raise ValueError(f"V must have one row per group ({levels.size}), got {Vm.shape[0]}")
    beta0 = np.asarray(beta0, dtype=float).ravel()
    p = _param_count(beta0, options)
    names = [f"phi{j + 1}" for j in range(p)]
    A = _design(options.get("FEConstDesign"), options.get("FEGroupDesign"),
                options.get("FEObsDesign"), options.get("FEParamsSelect"), p, p, codes, n, "FE")
    if A.shape[2] != beta0.size:
        raise ValueError(f"beta0 has {beta0.size} elements; the fixed design has {A.shape[2]} "
                         "fixed effects")
    B = _design(options.get("REConstDesign"), options.get("REGroupDesign"),
                options.get("REObsDesign"), options.get("REParamsSelect"), p, p, codes, n, "RE")
    transform = np.zeros(p, int) if options.get("ParamTransform") is None else \
        np.asarray(options["ParamTransform"], int).ravel()
    if transform.size != p:
        raise ValueError(f"ParamTransform needs {p} elements, got {transform.size}")

    cols: dict = {"_y": y, _GROUP: codes}
    xcols = [f"_x{c + 1}" for c in range(Xm.shape[1])]
    vcols = [f"_v{c + 1}" for c in range(Vm.shape[1])]
    cols.update({c: Xm[:, i] for i, c in enumerate(xcols)})
    cols.update({c: Vm[codes, i] for i, c in enumerate(vcols)})
    fixed, coef = _fixed_parts(A, names, cols)
    random, cov, re_names = _random_parts(B, names, cols, _cov_blocks(options.get("CovPattern"),
                                                                          B.shape[2]))
    data = pd.DataFrame(cols)
    start = dict(zip(coef, beta0))
    fun = _wrap(modelfun, names, xcols, vcols, transform)
    model = NonlinearMixedModel(fun, data, response="_y", fixed=fixed, random=random, cov=cov,
                                start=start, error_model=str(options.get("ErrorModel",
                                                                         "constant")).lower())
    order = [model.spec.xnames.index(c) for c in coef]
    return model, coef, order, re_names, levels, codes


def _outputs(res, order, re_names, levels, codes):
    """(beta, PSI, stats, b) in MATLAB's shapes and orders from a NonlinearResult."""
    beta = np.asarray(res.beta)[order]
    covb = np.asarray(res.vcov_beta)[np.ix_(order, order)]
    r = len(re_names)
    PSI = np.zeros((r, r))
    b = np.zeros((r, levels.size))
    where = {nm: i for i, nm in enumerate(re_names)}
    for t, cov, blk in zip(res.spec.reterms, res.varcorr.covs, res.b_blocks):
        idx = [where[c] for c in t.cnames]
        PSI[np.ix_(idx, idx)] = cov
        rows = np.asarray([int(float(lev)) for lev in t.levels])
        b[np.ix_(idx, rows)] = np.asarray(blk).T
    M = levels.size
    npar = beta.size + int(res.spec.ntheta) + len(res.spec.error_model.param_names)
    n = res.spec.n
    dfe = n - npar
    em = res.spec.error_model
    ires = res.residuals("ires")
    wres = em.working_response(res.spec.y) - em.working_mean(res.fitted("individual"))[0]
    logl = float(res.loglik)
    stats = NlmeStats(
        dfe=int(dfe), logl=logl, aic=-2 * logl + 2 * npar, bic=-2 * logl + np.log(M) * npar,
        rmse=float(np.sqrt(np.sum(wres**2) / max(dfe, 1))),
        errorparam=np.asarray(list(res.error_params.values()), float),
        sebeta=np.sqrt(np.diag(covb)), covb=covb, ires=ires, pres=res.residuals("pres"),
        iwres=res.residuals("iwres"), pwres=res.residuals("pwres"),
        cwres=res.residuals("cwres"), result=res)
    return beta, PSI, stats, b


_DESIGN_OPTIONS = {"FEParamsSelect", "FEConstDesign", "FEGroupDesign", "FEObsDesign",
                   "REParamsSelect", "REConstDesign", "REGroupDesign", "REObsDesign",
                   "CovPattern", "ParamTransform", "ErrorModel", "Vectorization"}
_OPTIONS = _DESIGN_OPTIONS | {"ErrorParameters", "ApproximationType", "RefineBeta0", "Options"}
_SA_OPTIONS = _DESIGN_OPTIONS | {"ErrorParameters", "Options", "NIterations", "NBurnIn",
                                 "NMCMCIterations", "NChains", "Replicates", "Cov0",
                                 "ComputeStdErrors", "LogLikMethod", "OptimFun"}
