"""The package's seams: imports run one way (walked with ``ast``, imports inside functions
included), estimators are found in a registry, and a custom mean held by the spec flows through
both the maximum-likelihood graph and the PyMC model."""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import numpy as np
import pytest
from scipy.stats import norm

import pymc_mixed as pmm

PKG = pathlib.Path(pmm.__file__).parent

# Layers, lowest first: a module may import modules of its own layer or of lower ones only.
# (Longest matching prefix wins.) Results hold what they need after the fit as values, so
# nothing below ``fit`` imports an estimator.
# A model kind with a package of its own (nonlinear/) places each module in its layer.
LAYERS = [
    ["errors", "datasets", "families", "nonlinear.error_models"],
    ["spec"],
    ["linalg", "formula", "graph", "nonlinear.spec", "nonlinear.mean", "nonlinear.kernel",
     "nonlinear.linearize"],
    ["datatree"],
    ["bayes", "postfit", "plots"],
    ["results", "nonlinear.result", "nonlinear.saem.result"],
    ["fit", "nonlinear.pnls", "nonlinear.grouped", "nonlinear.lme",
     "nonlinear.laplace", "nonlinear.laplace_grad", "nonlinear.estimators", "nonlinear.saem"],
    ["model", "nonlinear.model", "matlab"],
    ["cli", "__main__", "", "nonlinear"],
]


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)  # "" is the package itself


def _is_module(name: str) -> bool:
    base = PKG.joinpath(*name.split(".")) if name else PKG
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: pathlib.Path, name: str) -> set[str]:
    """Every pymc_mixed module ``path`` imports, at any depth of the file."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if name else []
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "pymc_mixed" or a.name.startswith("pymc_mixed."):
                    out.add(a.name[len("pymc_mixed."):] if "." in a.name else "")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + (node.module.split(".") if node.module else []))
            elif node.module and node.module.split(".")[0] == "pymc_mixed":
                target = node.module[len("pymc_mixed."):] if "." in node.module else ""
            else:
                continue
            subs = [f"{target}.{a.name}" if target else a.name for a in node.names]
            subs = [s for s in subs if _is_module(s)]
            out.update(subs if subs and len(subs) == len(node.names) else [target] + subs)
    return {m for m in out if m != name}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p, _module_name(p)) for p in PKG.rglob("*.py")}


def _rank(name: str) -> int:
    best, rank = -1, None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if name == prefix or (prefix and name.startswith(prefix + ".")) or prefix == "":
                length = len(prefix)
                if length > best:
                    best, rank = length, i
    return rank


def test_import_walk_sees_imports_inside_functions():
    graph = _graph()
    assert "datatree" in graph["results.base"]              # inside to_datatree()
    assert "postfit.approx" in graph["results.base"]        # inside to_datatree()
    assert "graph" in graph["bayes.model"]                 # inside build_pymc_model()


def test_imports_follow_the_layers():
    bad = [f"{a or 'pymc_mixed'} ({_rank(a)}) imports {b} ({_rank(b)})"
           for a, deps in _graph().items() for b in deps if _rank(b) > _rank(a)]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    graph = _graph()
    # importing a.b.c runs a/__init__ and a/b/__init__ first: count those edges too
    for a, deps in graph.items():
        for b in list(deps):
            parts = b.split(".")
            for k in range(1, len(parts)):
                parent = ".".join(parts[:k])
                if not (a == parent or a.startswith(parent + ".")):
                    deps.add(parent)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


# -- the estimator registry ---------------------------------------------------------------------

def test_fit_looks_the_estimator_up_by_kind_and_method():
    from pymc_mixed.fit import base

    df = pmm.datasets.load("sleepstudy")
    m = pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)", df)
    assert m.spec.kind == "lmm" and base.methods("lmm") == ["ml", "reml"]
    assert m.fit(method="ML").objective == m.fit(REML=False).objective
    assert m.fit().method == "REML"
    calls = []
    base.register("lmm", "spy", lambda spec, **kw: calls.append(kw) or m.fit(REML=False))
    try:
        m.fit(method="spy", tol=3)
    finally:
        base._REGISTRY.pop(("lmm", "spy"))
    assert calls == [{"tol": 3}]
    with pytest.raises(ValueError, match="no estimator 'PQL' for 'lmm' models"):
        m.fit(method="PQL")
    cb = pmm.MixedModel("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                        pmm.datasets.load("cbpp"), family="binomial")
    assert cb.spec.kind == "glmm"
    assert set(base.methods("glmm")) == {"laplace", "agq", "nagq0"}
    fast = cb.fit(nAGQ=0)
    assert fast.nAGQ == 0 and cb.fit(method="nAGQ0").objective == fast.objective


# -- the mean seam --------------------------------------------------------------------------------

class ExpDecayMean:
    """``beta0 * exp(beta1 * Days / 10) + b_Subject``: a trivially nonlinear mean."""

    kind = "nlmm"
    linear = False

    @staticmethod
    def _b0(b):
        return b[0] if isinstance(b, (list, tuple)) else b[:, 0]

    def predictor(self, spec, beta, b_blocks):
        import pytensor.tensor as pt

        days = spec.X[:, 1]
        return beta[0] * pt.exp(beta[1] * days / 10) + self._b0(b_blocks[0])[spec.reterms[0].refs]

    def predict_numpy(self, spec, beta, b_blocks):
        days = spec.X[:, 1]
        return beta[0] * np.exp(beta[1] * days / 10) + b_blocks[0][:, 0][spec.reterms[0].refs]


@pytest.fixture(scope="module")
def nl_spec():
    m = pmm.MixedModel("Reaction ~ 1 + Days + (1 | Subject)", pmm.datasets.load("sleepstudy"))
    return dataclasses.replace(m.spec, mean=ExpDecayMean())


def _numpy_logp(spec, beta, theta, sigma, u):
    b = [(sigma * theta[0] * u)[:, None]]  # LMM convention: Lambda = sigma T
    mu = spec.mean.predict_numpy(spec, beta, b)
    return norm.logpdf(spec.y, mu, sigma).sum() + norm.logpdf(u).sum()


def test_custom_mean_flows_through_compile_joint_logp(nl_spec):
    from pymc_mixed.graph import compile_joint_logp

    rng = np.random.default_rng(1)
    beta, theta, sigma = np.array([250.0, 0.4]), np.array([0.8]), 30.0
    u = rng.standard_normal(nl_spec.q)
    got = compile_joint_logp(nl_spec)(beta, theta, sigma, u)
    assert got == pytest.approx(_numpy_logp(nl_spec, beta, theta, sigma, u), rel=1e-12)
    linear = dataclasses.replace(nl_spec, mean=pmm.spec.LinearMean())
    assert compile_joint_logp(linear)(beta, theta, sigma, u) != pytest.approx(got, rel=1e-3)
    # the kind's estimators are the nonlinear package's, found by the registry
    from pymc_mixed.fit import estimator, methods

    assert nl_spec.kind == "nlmm" and {"lme", "foce"} <= set(methods("nlmm"))
    assert estimator("nlmm") is estimator("nlmm", "LME")


def test_custom_mean_flows_through_the_pymc_model(nl_spec):
    import xarray as xr

    from pymc_mixed.bayes import build_pymc_model, evaluate_over_draws

    model = build_pymc_model(nl_spec)
    beta, sd, sigma = np.array([250.0, 0.4]), 24.0, 30.0
    u = np.random.default_rng(2).standard_normal(nl_spec.q)
    post = xr.Dataset({"beta": (("chain", "draw", "coef"), beta[None, None]),
                       "sigma": (("chain", "draw"), [[sigma]]),
                       "sd_Subject": (("chain", "draw", "sd_dim"), [[[sd]]]),
                       "u_Subject": (("chain", "draw", "c", "lev"), u[None, None, None, :])})
    out = evaluate_over_draws(model, post)
    ll = out["__pointwise_loglik__"].values[0, 0]
    mu = nl_spec.mean.predict_numpy(nl_spec, beta, [(sd * u)[:, None]])
    np.testing.assert_allclose(ll, norm.logpdf(nl_spec.y, mu, sigma), rtol=1e-10)
    np.testing.assert_allclose(out["b_Subject"].values[0, 0, :, 0], sd * u, rtol=1e-12)


def test_results_with_their_handed_over_curvature_pickle():
    import pickle

    cb = pmm.MixedModel("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                        pmm.datasets.load("cbpp"), family="binomial").fit()
    again = pickle.loads(pickle.dumps(cb))
    np.testing.assert_array_equal(again.vcov_hessian().to_numpy(), cb.vcov_hessian().to_numpy())
    ml = pmm.MixedModel("Reaction ~ 1 + Days + (1 | Subject)",
                        pmm.datasets.load("sleepstudy")).fit(REML=False)
    again = pickle.loads(pickle.dumps(ml))
    assert again.curvature.deviance(again.curvature.x_hat) == pytest.approx(ml.objective,
                                                                            rel=1e-10)
