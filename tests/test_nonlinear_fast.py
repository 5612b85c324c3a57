"""The fast paths of the nonlinear fits against the slow, plain ones and against tightly
converged nlme fits.

References: tests/reference/nlme_extra.json (a copy of ../shared's, produced by
bench/make_nlme_refs.R), cases ``theoph_nlme_ml_tight`` and ``orange_nlme_ml_tight``: nlme
3.1-162, method = "ML", nlmeControl(tolerance = 1e-8, pnlsTol = 1e-6, msTol = 1e-10).
"""

import json
import pathlib

import numpy as np
import pytest

import pymc_mixed as pmm

from test_nonlinear import ssfol, sslogis

pytestmark = pytest.mark.xdist_group("nonlinear")

REF = json.loads((pathlib.Path(__file__).parent / "reference" / "nlme_extra.json").read_text())


def _theoph(cov="diagonal"):
    return pmm.NonlinearMixedModel(ssfol, pmm.datasets.load("Theoph"), "conc",
                                   {"lKe": "1", "lKa": "1", "lCl": "1"},
                                   "lKa + lCl ~ 1 | Subject", cov=cov,
                                   start={"lKe": -2.5, "lKa": 0.5, "lCl": -3})


def _orange():
    return pmm.NonlinearMixedModel(sslogis, pmm.datasets.load("Orange"), "circumference",
                                   {"Asym": "1", "xmid": "1", "scal": "1"}, "Asym ~ 1 | Tree",
                                   start={"Asym": 192, "xmid": 727, "scal": 348})


@pytest.mark.parametrize("make, case", [(_theoph, "theoph_nlme_ml_tight"),
                                        (_orange, "orange_nlme_ml_tight")])
def test_lme_matches_tightly_converged_nlme(make, case):
    c = REF[case]
    res = make().fit("LME")
    assert res.converged
    assert res.loglik == pytest.approx(c["logLik"], abs=2e-6)
    names = list(c["fixef"])
    np.testing.assert_allclose(res.fixef[names], [c["fixef"][k] for k in names], rtol=1e-6)
    np.testing.assert_allclose(res.se[names], [c["se"][k] for k in names], rtol=2e-6)
    np.testing.assert_allclose(res.vcov.loc[names, names], c["vcov"]["matrix"], rtol=5e-6)
    vc = res.varcorr.as_frame()
    sds = [vc.loc[vc.var1 == k, "sdcor"].item() for k in c["re_sd"]]
    np.testing.assert_allclose(sds, list(c["re_sd"].values()), rtol=3e-6)
    assert res.sigma == pytest.approx(c["sigma"], rel=1e-6)
    re = res.ranef[c["group"]]
    levels = list(c["ranef"]["values"])
    ref_re = np.array([c["ranef"]["values"][lv] for lv in levels])
    scale = np.abs(ref_re).max(axis=0)
    np.testing.assert_allclose(re.loc[levels, c["ranef"]["columns"]].to_numpy() / scale,
                               ref_re / scale, atol=1e-6)
    fit = np.asarray(c["fitted_individual"])
    np.testing.assert_allclose(res.fitted(), fit, atol=1e-7 * np.abs(fit).max() * 10)


def test_grouped_lmm_equals_the_blocked_lmm_kernel():
    """Per-level blocks give the blocked LMM kernel's solution and its deviance up to the
    weights' constant (here none), at any theta."""
    from pymc_mixed.fit.pls import LMMObjective
    from pymc_mixed.nonlinear.grouped import U_to_u
    from pymc_mixed.nonlinear.lme import _Steps, _penalized
    from pymc_mixed.nonlinear.linearize import linearized_lmm

    m = _theoph(cov="full")
    spec = m.spec
    beta, theta = np.array([-2.4, 0.45, -3.2]), np.array([0.8, 0.1, 0.3])
    u = np.random.default_rng(0).normal(0, 0.3, spec.q)
    _, f, J, b = _penalized(spec, m.kernel, beta, u, theta)
    steps = _Steps(spec)
    g = steps.grouped(f, J, beta, b)
    lin = linearized_lmm(spec, f, J, beta, b)
    for REML in (False, True):
        slow = LMMObjective(lin, REML)
        for th in (theta, np.array([1.3, -0.2, 0.05])):
            assert g.deviance(th, REML) == pytest.approx(slow(th), rel=1e-12)
            beta_g, U = g.solve(th)
            u_s, beta_s = slow.solve()  # beta of X as given
            np.testing.assert_allclose(beta_g, beta_s, rtol=1e-10)
            np.testing.assert_allclose(U_to_u(steps.lay, U), u_s, atol=1e-10)


def test_newton_and_gauss_newton_find_the_same_modes():
    from pymc_mixed.nonlinear.pnls import FactorLayout, conditional_modes

    m = _theoph(cov="full")
    lay = FactorLayout(m.spec)
    beta, theta = np.array([-2.45, 0.47, -3.23]), np.array([0.9, 0.1, 0.25])
    gn = conditional_modes(lay, m.kernel, beta, theta, newton=False)
    nt = conditional_modes(lay, m.kernel, beta, theta, newton=True)
    assert gn.converged and nt.converged
    np.testing.assert_allclose(nt.U, gn.U, atol=1e-9)
    assert nt.iterations < gn.iterations / 3


def test_warm_started_foce_objective_is_the_cold_one():
    """Along a path of evaluations the guarded warm start gives nlmer's objective (modes from
    u = 0) to round-off, so the optimizer's path cannot change the function it minimizes."""
    from pymc_mixed.nonlinear.laplace import LaplaceObjective

    m = _theoph()
    warm, cold = LaplaceObjective(m.spec, m.kernel), LaplaceObjective(m.spec, m.kernel)
    cold.warm = False
    rng = np.random.default_rng(3)
    x = np.r_[0.9, 0.25, -2.46, 0.48, -3.23]
    for _ in range(25):
        x = x + rng.normal(0, 0.05, x.size)
        x[:2] = np.abs(x[:2])
        # the modes are converged to round-off of pen, so log|L| agrees to ~1e-11 relative
        assert warm.foce(x) == pytest.approx(cold.foce(x), rel=1e-10)


@pytest.mark.parametrize("which", ["theoph_full", "orange_exponential"])
def test_foce_gradient_is_the_derivative_of_the_deviance(which):
    """The analytic FOCE gradient (implicit modes, exact Jacobian) against central differences
    of the deviance itself."""
    from pymc_mixed.nonlinear.laplace import LaplaceObjective
    from pymc_mixed.nonlinear.laplace_grad import FoceGradient

    if which == "theoph_full":
        m = _theoph(cov="full")
        x = np.r_[0.5, 0.1, 0.5, -2.46, 0.48, -3.23]
    else:
        m = pmm.NonlinearMixedModel(sslogis, pmm.datasets.load("Orange"), "circumference",
                                    {"Asym": "1", "xmid": "1", "scal": "1"}, "Asym ~ 1 | Tree",
                                    start={"Asym": 192, "xmid": 727, "scal": 348},
                                    error_model="exponential")
        x = np.r_[1.5, 190.0, 720.0, 350.0]
    obj = LaplaceObjective(m.spec, m.kernel)
    obj.warm = False
    val, grad = FoceGradient(obj).value_and_grad(x)
    assert val == obj.foce(x)
    fd = []
    for i in range(len(x)):
        h = 1e-5 * max(1.0, abs(x[i]))
        e = np.zeros(len(x))
        e[i] = h
        fd.append((obj.foce(x + e) - obj.foce(x - e)) / (2 * h))
    np.testing.assert_allclose(grad, fd, rtol=2e-6, atol=1e-6 * np.abs(fd).max())


def test_grouped_lmm_stats_equal_the_blocked_kernel():
    """deviance (with the weights' constant), sigma and vcov(beta) of the per-level path,
    proportional error model (weights 1 / f^2)."""
    from pymc_mixed.fit.pls import LMMObjective
    from pymc_mixed.nonlinear.lme import _penalized, _Steps
    from pymc_mixed.nonlinear.linearize import linearized_lmm

    m = pmm.NonlinearMixedModel(sslogis, pmm.datasets.load("Orange"), "circumference",
                                {"Asym": "1", "xmid": "1", "scal": "1"}, "Asym ~ 1 | Tree",
                                start={"Asym": 192, "xmid": 727, "scal": 348},
                                error_model="proportional")
    spec = m.spec
    beta, theta, u = np.array([190.0, 720.0, 350.0]), np.array([3.0]), np.linspace(-1, 1, 5)
    _, f, J, b = _penalized(spec, m.kernel, beta, u, theta)
    g = _Steps(spec).grouped(f, J, beta, b)
    for REML in (False, True):
        slow = LMMObjective(linearized_lmm(spec, f, J, beta, b), REML)
        dev, sigma, vcov = g.stats(theta, REML)
        assert dev == pytest.approx(slow(theta), rel=1e-12)
        assert sigma == pytest.approx(slow.sigma(), rel=1e-12)
        Linv = np.linalg.inv(slow.Rxx())
        np.testing.assert_allclose(vcov, slow.sigma()**2 * Linv.T @ Linv, rtol=1e-10)


def test_foce_se_from_the_exact_gradient_agree_with_the_deviance_hessian():
    """FOCE's vcov(beta) comes from differences of the exact gradient (stated in the result);
    the central-difference Hessian of the deviance itself gives the same to ~1e-4."""
    from pymc_mixed.nonlinear.laplace import LaplaceObjective, _fd_hessian

    m = _theoph()
    res = m.fit("FOCE")
    assert res.optsum.optimizer.startswith("LD_LBFGS") and res.converged
    assert "exact gradient" in res.se_method
    obj = LaplaceObjective(m.spec, m.kernel)
    obj.warm = False     # cold modes: a smooth function of x to ~1e-12 for the differences
    x = np.r_[res.theta_, res.beta]
    H = _fd_hessian(obj.foce, x)
    idx = slice(m.spec.ntheta, None)
    vcov = 2.0 * np.linalg.inv(H)[idx, idx]
    np.testing.assert_allclose(res.vcov_beta, vcov, rtol=1e-3)
    np.testing.assert_allclose(res.se, np.sqrt(np.diag(vcov)), rtol=3e-4)
