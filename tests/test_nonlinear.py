"""Nonlinear mixed models against nlme 3.1-162 and lme4 1.1-31 (nlmer).

Reference numbers: tests/reference/lme4_nlme_fits.json (a copy of
../shared/reference/lme4_nlme_fits.json), cases ``theoph_nlme_ml``, ``orange_nlme_ml`` (nlme,
method = "ML") and ``theoph_nlmer_laplace``; the R calls are in tests/reference/R/nlme_fits.R.
"""

import numpy as np
import pytensor.tensor as pt
import pytest

import pymc_mixed as pmm

pytestmark = pytest.mark.xdist_group("nonlinear")


def ssfol(phi, Dose, Time):
    """R's SSfol(Dose, Time, lKe, lKa, lCl)."""
    lKe, lKa, lCl = phi["lKe"], phi["lKa"], phi["lCl"]
    return (Dose * pt.exp(lKe + lKa - lCl) * (pt.exp(-pt.exp(lKe) * Time)
                                              - pt.exp(-pt.exp(lKa) * Time))
            / (pt.exp(lKa) - pt.exp(lKe)))


def sslogis(phi, age):
    """R's SSlogis(age, Asym, xmid, scal)."""
    return phi["Asym"] / (1 + pt.exp((phi["xmid"] - age) / phi["scal"]))


@pytest.fixture(scope="module")
def theoph():
    th = pmm.datasets.load("Theoph")
    return pmm.NonlinearMixedModel(ssfol, th, "conc", {"lKe": "1", "lKa": "1", "lCl": "1"},
                                   "lKa + lCl ~ 1 | Subject", cov="diagonal",
                                   start={"lKe": -2.5, "lKa": 0.5, "lCl": -3})


@pytest.fixture(scope="module")
def orange():
    return pmm.NonlinearMixedModel(sslogis, pmm.datasets.load("Orange"), "circumference",
                                   {"Asym": "1", "xmid": "1", "scal": "1"}, "Asym ~ 1 | Tree",
                                   start={"Asym": 192, "xmid": 727, "scal": 348})


def _check_nlme(res, case):
    assert res.loglik == pytest.approx(case["logLik"], abs=1e-3)
    names = list(case["beta"])
    np.testing.assert_allclose(res.fixef[names], [case["beta"][k] for k in names], rtol=1e-3)
    np.testing.assert_allclose(res.se[names], [case["se"][k] for k in names], rtol=1e-2)
    vc = res.varcorr.as_frame()
    re_names = case["re_names"] if isinstance(case["re_names"], list) else [case["re_names"]]
    sds = [vc.loc[vc.var1 == nm, "sdcor"].item() for nm in re_names]
    np.testing.assert_allclose(sds, case["re_sd"], rtol=1e-2)
    assert res.sigma == pytest.approx(case["sigma"], rel=1e-2)


def test_theoph_lme_matches_nlme(theoph, ref):
    res = theoph.fit("LME")
    assert res.converged
    _check_nlme(res, ref["theoph_nlme_ml"])


def test_orange_lme_matches_nlme(orange, ref):
    res = orange.fit()
    assert res.method == "LME"
    _check_nlme(res, ref["orange_nlme_ml"])


def test_theoph_foce_matches_nlmer(theoph, ref):
    case = ref["theoph_nlmer_laplace"]
    res = theoph.fit("FOCE")
    assert res.deviance <= case["minus2logLik"] + 1e-3
    assert res.deviance == pytest.approx(case["minus2logLik"], abs=1e-3)
    names = list(case["beta"])
    # lme4's Laplace value at its own optimum is 2.4e-4 below this exact GN-Laplace deviance
    # evaluated there (its Jacobian is not taken at the final modes), so the optima differ by
    # up to 8e-4 in lKa: fixed effects agree within 1e-3 absolute.
    np.testing.assert_allclose(res.fixef[names], [case["beta"][k] for k in names], atol=1e-3)
    assert res.sigma == pytest.approx(case["sigma"], rel=1e-3)
    np.testing.assert_allclose(res.theta, case["theta"], rtol=5e-3)
    # "laplace" is an alias
    assert theoph.fit("laplace").deviance == res.deviance


def test_nagq1_is_foce_exactly(theoph):
    from pymc_mixed.nonlinear.laplace import LaplaceObjective

    spec, k = theoph.spec, theoph.kernel
    foce, agq = LaplaceObjective(spec, k), LaplaceObjective(spec, k, nAGQ=1)
    x = np.r_[0.9, 0.25, -2.46, 0.48, -3.23]
    val = foce.foce(x)
    assert agq.agq(np.r_[x, np.log(foce.sigma())]) == pytest.approx(val, rel=1e-13)
    assert theoph.fit(nAGQ=1).deviance == theoph.fit("FOCE").deviance


def test_agq25_matches_brute_force_quadrature_of_the_graph(orange):
    """Scalar random effect: nAGQ = 25 against a dense-grid integral of the plain graph."""
    import pytensor

    from pymc_mixed.nonlinear.laplace import LaplaceObjective

    spec = orange.spec
    theta, beta, sigma = np.array([4.0]), np.array([191.0, 722.0, 344.0]), 7.8
    g = orange.graph()
    ll = pytensor.function(g.input_list, g.loglik)
    grid = np.linspace(-12, 12, 6001)
    refs = spec.reterms[0].refs
    G = spec.reterms[0].nlevels
    vals = np.array([np.bincount(refs, ll(beta, theta, sigma, np.full(G, t)), minlength=G)
                     for t in grid])                            # (grid, G)
    logdens = vals - 0.5 * grid[:, None]**2 - 0.5 * np.log(2 * np.pi)
    top = logdens.max(axis=0)
    brute = -2 * np.sum(top + np.log(np.trapezoid(np.exp(logdens - top), grid, axis=0)))
    agq = LaplaceObjective(spec, orange.kernel, nAGQ=25)
    assert agq.agq(np.r_[theta, beta, np.log(sigma)]) == pytest.approx(brute, abs=1e-6)


def test_batched_laplace_equals_plain_graph_dense_hessian():
    """The batched kernel's Laplace deviance equals the one built from the plain graph: its
    joint log density at the modes and the dense autodiff Jacobian of the mean in u."""
    import pytensor
    from pytensor.gradient import jacobian

    from pymc_mixed.nonlinear.laplace import LaplaceObjective

    th = pmm.datasets.load("Theoph")
    th = th[th["Subject"].astype(str).isin(["1", "2", "3", "4"])]
    m = pmm.NonlinearMixedModel(ssfol, th, "conc", {"lKe": "1", "lKa": "1", "lCl": "1"},
                                "lKa + lCl ~ 1 | Subject", cov="full",
                                start={"lKe": -2.5, "lKa": 0.5, "lCl": -3})
    spec = m.spec
    theta, beta, sigma = np.array([0.9, 0.1, 0.3]), np.array([-2.4, 0.45, -3.2]), 0.7
    lo = LaplaceObjective(spec, m.kernel, nAGQ=1)
    fast = lo.agq(np.r_[theta, beta, np.log(sigma)])
    # u in the graph is spherical and term-ordered (level-major), b = sigma T u
    v = (lo.modes.U / sigma).ravel()
    g = m.graph()
    fn = pytensor.function(g.input_list, [g.logp, pytensor.grad(g.logp, g.inputs["u"]),
                                          jacobian(g.eta, g.inputs["u"])])
    logp, grad, Jeta = fn(beta, theta, sigma, v)
    assert np.max(np.abs(grad)) < 1e-6
    H = np.eye(spec.q) + Jeta.T @ Jeta / sigma**2
    plain = -2 * logp - spec.q * np.log(2 * np.pi) + np.linalg.slogdet(H)[1]
    assert fast == pytest.approx(plain, abs=1e-8)


def test_group_loglik_batches_proposals(theoph):
    spec, k = theoph.spec, theoph.kernel
    phi0 = spec.phi_fixed(spec.beta0)
    rng = np.random.default_rng(1)
    phis = phi0[None] + 0.1 * rng.standard_normal((3, spec.n, spec.P))
    out = k.group_loglik(phis, 0.7)
    assert out.shape == (3, 12)
    f = k.f(phis[1])
    ll = -0.5 * np.log(2 * np.pi * 0.49) - 0.5 * (spec.y - f)**2 / 0.49
    refs = spec.reterms[0].refs
    np.testing.assert_allclose(out[1], np.bincount(refs, ll), rtol=1e-12)


def test_result_pieces(theoph):
    res = theoph.fit("FOCE")
    assert list(res.ranef["Subject"].columns) == ["lKa", "lCl"]
    assert list(res.varcorr.as_frame().var1[:2]) == ["lKa", "lCl"]
    np.testing.assert_allclose(res.predict(theoph.spec.data), res.fitted(), rtol=1e-12)
    for kind in ("ires", "pres", "iwres", "pwres", "cwres"):
        assert np.all(np.isfinite(res.residuals(kind)))
    assert res.aic == pytest.approx(res.deviance + 2 * 6)
    assert "FOCE" in res.summary()


def test_covariate_names_follow_nlme():
    th = pmm.datasets.load("Theoph")
    m = pmm.NonlinearMixedModel(ssfol, th, "conc",
                                {"lKe": "1", "lKa": "1", "lCl": "1 + Wt"},
                                "lKa + lCl ~ 1 | Subject", cov="diagonal",
                                start={"lKe": -2.5, "lKa": 0.5, "lCl": -3})
    assert m.spec.xnames == ["lKe", "lKa", "lCl.(Intercept)", "lCl.Wt"]


def test_bad_input_is_named():
    from pymc_mixed.nonlinear import ModelFunctionError

    th = pmm.datasets.load("Theoph")
    fixed = {"lKe": "1", "lKa": "1", "lCl": "1"}
    start = {"lKe": -2.5, "lKa": 0.5, "lCl": -3}
    with pytest.raises(ValueError, match="'lka'.*not a parameter"):
        pmm.NonlinearMixedModel(ssfol, th, "conc", fixed, "lka ~ 1 | Subject", start=start)
    with pytest.raises(ValueError, match="'lV'"):
        pmm.NonlinearMixedModel(ssfol, th, "conc", fixed, "lKa ~ 1 | Subject",
                                start={**start, "lV": 1})
    with pytest.raises(ModelFunctionError, match="row 0 .*lKe=-2.*lKa=-2"):
        pmm.NonlinearMixedModel(ssfol, th, "conc", fixed, "lKa ~ 1 | Subject",
                                start={"lKe": -2.5, "lKa": -2.5, "lCl": -3})
    with pytest.raises(ModelFunctionError, match="one value per observation"):
        pmm.NonlinearMixedModel(lambda phi, Time: pt.sum(phi["lKe"] * Time), th, "conc",
                                fixed, "lKa ~ 1 | Subject", start=start)
    with pytest.raises(ValueError, match="exponential.*row 11 has 0.0"):
        pmm.NonlinearMixedModel(ssfol, th, "conc", fixed, "lKa ~ 1 | Subject", start=start,
                                error_model="exponential")
