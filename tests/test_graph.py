"""The PyTensor model graph agrees with the fast PLS kernel (DESIGN.md: every fast kernel is
checked against the plain graph).

For a linear mixed model the joint density is Gaussian in ``u``, so the Laplace approximation
of ``integral p(y, u) du`` is exact: one Newton step from any point gives the mode, and
``-2 (logp(u_hat) - logdet(-H)/2 + q/2 log 2 pi)`` is the deviance. At
``(beta_hat(theta), sigma_hat(theta))`` it must equal the profiled deviance of the kernel.
"""

import numpy as np
import pytest

import pymc_mixed as pmm
from pymc_mixed.fit.pls import LMMObjective, fit_lmm

CASES = {
    "sleepstudy": ("Reaction ~ 1 + Days + (1 + Days | Subject)", "sleepstudy"),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    "sleepstudy_zerocorr": ("Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)",
                            "sleepstudy"),
}


def _py_mode():
    from pytensor.compile.mode import Mode

    # Python implementations: nothing to compile, and the numbers are plain NumPy/LAPACK.
    return Mode(linker="py", optimizer="fast_compile")


def _laplace_objective(spec):
    """Compile ``(beta, theta, sigma) -> -2 log integral p(y, u) du`` from the graph alone."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.gradient import jacobian
    from pytensor.graph.replace import clone_replace

    from pymc_mixed.graph import joint_logp_graph

    g = joint_logp_graph(spec)
    u = g.inputs["u"]
    grad = pytensor.grad(g.logp, u)
    # The Hessian by autodiff: the Jacobian of the gradient, vectorized. (pytensor.gradient.
    # hessian builds the same matrix row by row through a Scan, whose inner function costs
    # ~15 s of C compilation on a cold cache.)
    H = jacobian(grad, u, vectorize=True)
    # Newton step from u = 0 (exact for a quadratic).
    u_hat = u - pt.linalg.solve(H, grad)
    logp_hat = clone_replace(g.logp, {u: u_hat})
    H_hat = clone_replace(H, {u: u_hat})
    _, logdet = pt.linalg.slogdet(-H_hat)
    q = spec.q
    obj = -2.0 * (logp_hat - 0.5 * logdet + 0.5 * q * np.log(2 * np.pi))
    fn = pytensor.function([g.inputs["beta"], g.inputs["theta"], g.inputs["sigma"], u],
                           [obj, u_hat, H_hat], mode=_py_mode())
    return lambda beta, theta, sigma: fn(beta, theta, sigma, np.zeros(q))


@pytest.mark.parametrize("case", list(CASES))
def test_graph_laplace_equals_profiled_deviance(case):
    formula, data = CASES[case]
    m = pmm.MixedModel(formula, pmm.datasets.load(data))
    spec = m.spec
    res = fit_lmm(spec, REML=False)
    laplace = _laplace_objective(spec)

    # At the optimum ...
    obj, u_hat, _ = laplace(res.beta, res._theta, res.sigma)
    kernel = LMMObjective(spec, REML=False)(res._theta)
    assert obj == pytest.approx(kernel, rel=1e-8)
    assert obj == pytest.approx(res.objective, rel=1e-8)
    # the graph's conditional mode is the kernel's u (lme4's u is on the sigma scale).
    np.testing.assert_allclose(u_hat * res.sigma, res.u, rtol=1e-6, atol=1e-6 * res.sigma)

    # ... and away from it: the profiled deviance at another theta, with beta and sigma at
    # their conditional estimates for that theta.
    theta = res._theta * 1.3 + 0.05 * (spec.theta_lower != 0)
    kobj = LMMObjective(spec, REML=False)
    dev = kobj(theta)
    u_k, beta_k = kobj.solve()  # beta for X as given (the kernel works in a basis of X)
    obj2, _, _ = laplace(beta_k, theta, kobj.sigma())
    assert obj2 == pytest.approx(dev, rel=1e-8)


def test_graph_pointwise_and_b_match_result():
    m = pmm.MixedModel(CASES["sleepstudy"][0], pmm.datasets.load("sleepstudy"))
    res = m.fit(REML=False)
    from pymc_mixed.graph import joint_logp_graph

    g = joint_logp_graph(m.spec)
    fn = g.compile([g.eta, *g.b], mode=_py_mode())
    u_sph = res.u / res.sigma
    eta, b = fn(res.beta, res._theta, res.sigma, u_sph)
    np.testing.assert_allclose(eta, res.linear_predictor(), rtol=1e-10)
    np.testing.assert_allclose(b, res.ranef["Subject"].to_numpy(), rtol=1e-10)


def test_compiled_helper_gradient():
    from pymc_mixed.graph import compile_joint_logp

    m = pmm.MixedModel(CASES["penicillin"][0], pmm.datasets.load("Penicillin"))
    spec = m.spec
    f = compile_joint_logp(spec)
    fg = compile_joint_logp(spec, grad=True)
    rng = np.random.default_rng(0)
    beta, theta, sigma, u = np.array([23.0]), np.array([1.5, 3.0]), 0.6, rng.normal(size=spec.q)
    val, *grads = fg(beta, theta, sigma, u)
    assert val == pytest.approx(f(beta, theta, sigma, u))
    eps = 1e-6
    e = np.zeros(spec.q)
    e[3] = eps
    num = (f(beta, theta, sigma, u + e) - f(beta, theta, sigma, u - e)) / (2 * eps)
    assert grads[3][3] == pytest.approx(num, rel=1e-5)


def test_graph_is_family_generic_binomial():
    """The same graph with the binomial family: its pointwise log-likelihood at the GLMM
    estimates equals the family's NumPy log-likelihood (normalizing constants included)."""
    m = pmm.MixedModel("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                       pmm.datasets.load("cbpp"), family="binomial")
    res = m.fit()
    from pymc_mixed.graph import joint_logp_graph

    g = joint_logp_graph(m.spec)
    assert "sigma" not in g.inputs
    fn = g.compile([g.eta, g.loglik], mode=_py_mode())
    eta, ll = fn(res.beta, res._theta, res.u)  # glmer: u is spherical, b = T u
    np.testing.assert_allclose(eta, res.linear_predictor(), rtol=1e-10)
    fam = m.spec.family
    r = fam.prepare(m.spec.y, trials=m.spec.trials, weights=m.spec.weights)
    np.testing.assert_allclose(ll, fam.loglik_obs(r, fam.linkinv(eta)), rtol=1e-10)
