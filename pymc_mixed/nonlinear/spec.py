"""NonlinearSpec: a nonlinear mixed model in numbers (MATLAB nlmefit's form).

    phi_ij = A_ij beta + B_ij b_i            (one row per observation, one column per parameter)
    y_ij   = f(phi_ij, x_ij) + e_ij          (e from the error model)

Each parameter ``P`` has a fixed part, a formula whose model matrix ``A_P`` multiplies that
parameter's slice of ``beta``; random effects are ordinary :class:`~pymc_mixed.spec.ReTerm`
objects whose columns each feed one parameter (``term_params``). Covariance patterns map to
terms as lme4's ``||`` does: ``"full"`` is one term per grouping factor, ``"diagonal"`` one
term per parameter, blocks one term per block. theta and Lambda follow lme4: per term a
lower-triangular ``T_k``, relative to the residual SD for the constant error model.

The spec also exposes what :func:`pymc_mixed.graph.joint_logp_graph` reads from a
``ModelSpec`` (``p``, ``q``, ``ntheta``, ``reterms``, ``theta_slices``, ``family``, ``y``), so the
plain graph with ``predictor=NonlinearMean()`` is the same model.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..formula import FormulaError, fixed_design
from ..formula.factors import factor_codes, level_index
from ..spec import ModelSpec, ReTerm
from .error_models import ErrorModel, get_error_model

__all__ = ["FixedPart", "NonlinearSpec", "build_nonlinear_spec", "parse_random"]


@dataclass
class FixedPart:
    """The fixed part of one parameter: ``phi[:, P] = A @ beta[cols] + ...``."""

    param: str
    rhs: str
    A: np.ndarray
    names: list[str]       # coefficient names in beta (nlme's: "lCl.(Intercept)", or "lka")
    cols: slice            # where the coefficients sit in beta


@dataclass
class NonlinearSpec:
    """Everything the nonlinear estimators, the graph and the results read."""

    fun: object
    params: list[str]
    argnames: list[str]               # data columns the function takes after phi
    columns: dict                     # argname -> (n,) float array
    response: str
    y: np.ndarray
    fixed: list[FixedPart]
    reterms: list[ReTerm]
    term_params: list[list[int]]      # per term, the parameter index each column feeds
    error_model: ErrorModel
    beta0: np.ndarray
    data: pd.DataFrame | None = None
    n_dropped: int = 0
    cov: object = "full"
    term_rhs: list = field(default_factory=list)   # per term, the formula of its z columns
    family: object = field(default=None, repr=False)
    weights: None = None
    offset: None = None
    trials: None = None

    mean: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.family is None:
            from ..families import get_family

            self.family = get_family("gaussian")
        if self.mean is None:
            from .mean import NonlinearMean

            self.mean = NonlinearMean()

    @property
    def X(self) -> np.ndarray:
        """The fixed designs ``A_P`` of all parameters side by side (n, p), beta's order."""
        return np.concatenate([fp.A for fp in self.fixed], axis=1)

    @property
    def formula(self) -> str:
        """A one-line description: ``conc ~ one_compartment(lka, lV, lCl)``."""
        name = getattr(self.fun, "__name__", "f")
        return f"{self.response} ~ {name}({', '.join(self.params)})"

    @property
    def kind(self) -> str:
        """``"nlmm"``: the kind nonlinear estimators are registered under."""
        return "nlmm"

    @property
    def is_gaussian_identity(self) -> bool:
        """theta is relative to the error model's scale ``sigma`` in every error model (as
        nlme does with variance functions), so the graph scales Lambda by sigma."""
        return True

    @property
    def layout(self):
        """The parameter layout ``(theta, beta, sigma)`` (see :class:`pymc_mixed.spec.ParamLayout`)."""
        from ..spec import ParamLayout

        return ParamLayout.of(self)

    # -- the ModelSpec-like surface the graph reads ------------------------------------------
    n = ModelSpec.n
    q = ModelSpec.q
    ntheta = ModelSpec.ntheta
    theta_slices = ModelSpec.theta_slices
    theta_lower = ModelSpec.theta_lower
    theta_init = ModelSpec.theta_init
    Ts = ModelSpec.Ts
    b_blocks = ModelSpec.b_blocks
    response_name = ModelSpec.response_name

    @property
    def p(self) -> int:
        """Number of fixed-effects coefficients (all parameters)."""
        return sum(fp.A.shape[1] for fp in self.fixed)

    @property
    def P(self) -> int:
        """Number of nonlinear parameters (columns of phi)."""
        return len(self.params)

    @property
    def xnames(self) -> list[str]:
        """Names of the fixed-effects coefficients, in beta order."""
        return [nm for fp in self.fixed for nm in fp.names]

    @property
    def theta_names(self) -> list[str]:
        """lme4-style names of theta's elements (``Subject.lka``, ``Subject.lV.lka``)."""
        return ModelSpec.theta_names.fget(self)

    @property
    def groups(self) -> list[str]:
        """The distinct grouping factors, in term order."""
        return list(dict.fromkeys(t.group for t in self.reterms))

    # -- phi -----------------------------------------------------------------------------
    def phi_fixed(self, beta: np.ndarray) -> np.ndarray:
        """``A beta``: (n, P) population parameters."""
        out = np.empty((self.n, self.P))
        for j, fp in enumerate(self.fixed):
            out[:, j] = fp.A @ beta[fp.cols]
        return out

    def phi(self, beta: np.ndarray, b_blocks: list[np.ndarray]) -> np.ndarray:
        """``A beta + B b``: (n, P) individual parameters; ``b_blocks[k]`` is (levels, p_k)."""
        out = self.phi_fixed(beta)
        for t, idx, b in zip(self.reterms, self.term_params, b_blocks):
            zb = t.z * np.asarray(b)[t.refs]
            for c, j in enumerate(idx):  # idx may repeat (random slopes): add column by column
                out[:, j] += zb[:, c]
        return out

    def on(self, newdata: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Designs of new data: (n_new, p) fixed ``A`` blocks side by side, per term the
        (n_new, p_t) ``z`` and each row's level index in the fitted levels (-1: a new level)."""
        A = np.concatenate([fixed_design(fp.rhs, newdata)[0] for fp in self.fixed], axis=1)
        zs, refs = [], []
        for t, rhs, idx in zip(self.reterms, self.term_rhs, self.term_params):
            Z = fixed_design(rhs, newdata)[0]
            zs.append(np.tile(Z, (1, len(idx) // Z.shape[1])))
            refs.append(level_index(t, newdata))  # by value: 1 matches 1.0
        return A, zs, refs

    def fixed_jacobian(self, J: np.ndarray) -> np.ndarray:
        """``d f / d beta = J A``: (n, p) from the (n, P) Jacobian in phi."""
        return np.concatenate([J[:, [j]] * fp.A for j, fp in enumerate(self.fixed)], axis=1)

    def random_jacobians(self, J: np.ndarray) -> list[np.ndarray]:
        """Per term, ``d f / d b_k`` on each observation's own level: ``J[:, params] * z``."""
        return [J[:, idx] * t.z for t, idx in zip(self.reterms, self.term_params)]


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def parse_random(random: str) -> tuple[list[str], str, str]:
    """``"lka + lCl ~ 1 | Subject"`` -> (["lka", "lCl"], "1", "Subject")."""
    if "|" not in random or "~" not in random.split("|")[0]:
        raise FormulaError(f"random {random!r} should read 'p1 + p2 ~ 1 | group'")
    lhs, group = random.rsplit("|", 1)
    names, rhs = lhs.split("~", 1)
    params = [s.strip() for s in names.split("+")]
    bad = [s for s in params if not _NAME.match(s)]
    if bad:
        raise FormulaError(f"random {random!r}: {bad[0]!r} is not a parameter name")
    group = group.strip()
    if not all(_NAME.match(g.strip()) for g in group.split(":")):
        raise FormulaError(f"random {random!r}: grouping factor {group!r} is not a column name")
    return params, rhs.strip() or "1", group


def _function_args(fun, data: pd.DataFrame, params: list[str]) -> list[str]:
    """Names of the data columns the model function takes after ``phi`` (by argument name)."""
    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError) as err:
        raise TypeError(f"cannot read the arguments of the model function {fun!r}") from err
    names = list(sig.parameters)[1:]
    missing = [a for a in names if a not in data.columns]
    if missing:
        raise FormulaError(
            f"the model function takes {missing[0]!r}, which is not a column of data "
            f"(columns: {', '.join(map(str, data.columns))})")
    return names


def _check_names(where: str, names, params: list[str]) -> None:
    unknown = [nm for nm in names if nm not in params]
    if unknown:
        raise ValueError(f"{where} names {unknown[0]!r}, which is not a parameter of the model; "
                         f"parameters: {', '.join(params)}")


def _fixed_parts(fixed: dict, data: pd.DataFrame) -> list[FixedPart]:
    parts, start = [], 0
    for param, rhs in fixed.items():
        A, names = fixed_design(str(rhs), data)
        if A.shape[1] == 0:
            raise FormulaError(f"fixed part of {param!r} ({rhs!r}) has no columns")
        coef = [param] if names == ["(Intercept)"] else [f"{param}.{nm}" for nm in names]
        parts.append(FixedPart(param, str(rhs), np.asarray(A, float), coef,
                               slice(start, start + A.shape[1])))
        start += A.shape[1]
    return parts


def _cov_blocks(cov, params: list[str], where: str) -> list[list[str]]:
    """Partition the parameters of one random part into covariance blocks."""
    if cov == "full":
        return [list(params)]
    if cov == "diagonal":
        return [[p] for p in params]
    if isinstance(cov, (list, tuple)):
        blocks = [[p for p in blk if p in params] for blk in cov]
        blocks = [b for b in blocks if b]
        covered = sum(blocks, [])
        extra = [p for p in params if p not in covered]
        dup = {p for p in covered if covered.count(p) > 1}
        if dup:
            raise ValueError(f"cov blocks name {sorted(dup)[0]!r} twice")
        return blocks + [[p] for p in extra]  # parameters in no block: independent
    raise ValueError(f"cov must be 'full', 'diagonal' or a list of blocks, got {cov!r} ({where})")


def _reterms(random, cov, data, params) -> tuple[list[ReTerm], list[list[int]]]:
    randoms = [random] if isinstance(random, str) else list(random or [])
    terms = []
    for r in randoms:
        rparams, rhs, group = parse_random(r)
        _check_names(f"random {r!r}", rparams, params)
        Z, znames = fixed_design(rhs, data)
        refs, levels, keys = factor_codes(data, group)
        for blk in _cov_blocks(cov, rparams, r):
            cols, cn, idx = [], [], []
            for prm in blk:
                for j, zn in enumerate(znames):
                    cols.append(Z[:, j])
                    cn.append(prm if zn == "(Intercept)" and len(znames) == 1 else f"{prm}.{zn}")
                    idx.append(params.index(prm))
            terms.append((ReTerm(group, refs, levels, np.column_stack(cols), cn, level_keys=keys),
                          idx, rhs))
    # lme4's order: decreasing number of levels, stable
    terms.sort(key=lambda ti: -ti[0].nlevels)
    return [t for t, _, _ in terms], [i for _, i, _ in terms], [r for _, _, r in terms]


def _beta0(start, fixed: list[FixedPart], params) -> np.ndarray:
    if start is None:
        raise ValueError("a nonlinear model needs start values: start={'param': value, ...}")
    beta0 = np.zeros(sum(fp.A.shape[1] for fp in fixed))
    names = {nm: i for i, nm in enumerate(nm for fp in fixed for nm in fp.names)}
    for key, val in dict(start).items():
        if key in names:
            beta0[names[key]] = float(val)
        elif key in params:  # the intercept (or the first coefficient) of that parameter
            beta0[fixed[params.index(key)].cols.start] = float(val)
        else:
            raise ValueError(f"start names {key!r}, which is neither a parameter "
                             f"({', '.join(params)}) nor a coefficient ({', '.join(names)})")
    unset = [p for p in params if p not in start and fixed[params.index(p)].names[0] not in start]
    if unset:
        raise ValueError(f"start has no value for parameter {unset[0]!r}")
    return beta0


def build_nonlinear_spec(fun, data: pd.DataFrame, response: str, fixed: dict, random,
                         cov="full", start=None, error_model="constant") -> NonlinearSpec:
    """Read the model pieces against ``data`` and return the numeric :class:`NonlinearSpec`.

    ``fixed`` maps each parameter to the formula of its fixed part (``"1"``, ``"1 + Wt"``);
    ``random`` is one or a list of ``"p1 + p2 ~ 1 | group"``; ``cov`` is ``"full"``,
    ``"diagonal"`` or a list of parameter blocks; ``start`` maps parameters (their intercepts)
    or coefficient names to starting values. Rows with a missing value in a used column are
    dropped (``n_dropped``).
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(fixed, dict) or not fixed:
        raise ValueError("fixed must map every parameter to a formula, e.g. {'lka': '1'}")
    params = list(fixed)
    if response not in data.columns:
        raise FormulaError(f"response {response!r} is not a column of data")
    argnames = _function_args(fun, data, params)
    data = data.reset_index(drop=True)
    used = [response, *argnames]
    nrow = len(data)
    keep = data[used].notna().all(axis=1).to_numpy()
    data = data.loc[keep].reset_index(drop=True)
    fparts = _fixed_parts(fixed, data)
    reterms, term_params, term_rhs = _reterms(random, cov, data, params)
    if start is not None:
        bad = [k for k in dict(start) if k not in params
               and k not in [nm for fp in fparts for nm in fp.names]]
        if bad:
            _check_names("start", bad, params)
    beta0 = _beta0(start, fparts, params)
    y = pd.to_numeric(data[response], errors="raise").to_numpy(dtype=float)
    em = get_error_model(error_model)
    em.check_response(y, response)
    columns = {a: pd.to_numeric(data[a]).to_numpy(dtype=float) for a in argnames}
    return NonlinearSpec(fun=fun, params=params, argnames=argnames, columns=columns,
                         response=response, y=y, fixed=fparts, reterms=reterms,
                         term_params=term_params, error_model=em, beta0=beta0, data=data,
                         n_dropped=int(nrow - keep.sum()), cov=cov, term_rhs=term_rhs)
