"""ML fits as ArviZ data: the normal approximation at the optimum, compare() and the plots."""

import numpy as np
import pytest

import pymc_mixed as pmm
from pymc_mixed.fit.pls import ml_deviance as lmm_deviance
from pymc_mixed.postfit.approx import laplace_covariance, normal_approximation

pytestmark = pytest.mark.filterwarnings("ignore")

SLEEP = "Reaction ~ 1 + Days + (1 + Days | Subject)"


@pytest.fixture(scope="module")
def sleep_ml():
    m = pmm.MixedModel(SLEEP, pmm.datasets.load("sleepstudy"))
    return m, m.fit(REML=False)


def test_lmm_deviance_is_the_graph_marginal_likelihood(sleep_ml):
    """The closed-form non-profiled deviance equals -2 log of the Laplace integral of the
    graph's joint density (exact for an LMM) away from the optimum too."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode
    from pytensor.gradient import jacobian
    from pytensor.graph.replace import clone_replace

    from pymc_mixed.graph import joint_logp_graph

    m, ml = sleep_ml
    spec = m.spec
    dev = lmm_deviance(spec)
    assert dev(ml._theta, ml.beta, ml.sigma) == pytest.approx(ml.objective, rel=1e-10)

    g = joint_logp_graph(spec)
    u = g.inputs["u"]
    grad = pytensor.grad(g.logp, u)
    H = jacobian(grad, u, vectorize=True)
    u_hat = u - pt.linalg.solve(H, grad)
    _, logdet = pt.linalg.slogdet(-H)
    obj = -2.0 * (clone_replace(g.logp, {u: u_hat}) - 0.5 * logdet
                  + 0.5 * spec.q * np.log(2 * np.pi))
    fn = pytensor.function(g.input_list, obj, mode=Mode(linker="py", optimizer="fast_compile"))
    theta, beta, sigma = ml._theta * [1.2, 1.0, 0.8], ml.beta + [3.0, -1.0], ml.sigma * 1.1
    assert dev(theta, beta, sigma) == pytest.approx(
        float(fn(beta, theta, sigma, np.zeros(spec.q))), rel=1e-9)


def test_laplace_covariance_of_beta_is_the_ml_vcov(sleep_ml):
    _, ml = sleep_ml
    names, psi, cov, _ = laplace_covariance(ml)
    assert names == ["log(Subject.(Intercept))", "Subject.Days.(Intercept)",
                     "log(Subject.Days)", "(Intercept)", "Days", "log(sigma)"]
    np.testing.assert_allclose(cov[3:5, 3:5], ml._vcov_beta, rtol=1e-5)
    np.testing.assert_allclose(psi[3:5], ml.beta)


def test_normal_approximation_matches_the_mle_group(sleep_ml):
    _, ml = sleep_ml
    ds = normal_approximation(ml, draws=2000, chains=2, seed=1)
    mle = ml.to_datatree()["mle"].to_dataset()
    for v in mle.data_vars:
        if v in ("vcov_beta", "se_beta"):
            continue
        assert v in ds, v
        assert ds[v].dims == ("chain", "draw") + mle[v].dims, v
        for d in mle[v].dims:
            assert list(ds[d].values) == list(mle[d].values)
    assert ds.sizes["chain"] == 2 and ds.sizes["draw"] == 2000
    sd = ds["beta"].std(("chain", "draw")).values
    np.testing.assert_allclose(sd, ml.se.values, rtol=0.05)
    np.testing.assert_allclose(ds["beta"].mean(("chain", "draw")).values, ml.beta,
                               atol=0.1 * ml.se.values.max())
    # b is drawn around the conditional modes with the conditional variances
    b = ds["b_Subject"].values.reshape(-1, 18, 2)
    np.testing.assert_allclose(b.mean(0), ml.ranef["Subject"].to_numpy(),
                               atol=0.1 * np.sqrt(ml.condvar["Subject"][:, 0, 0].max()))
    np.testing.assert_allclose(b[:, :, 1].std(0), np.sqrt(ml.condvar["Subject"][:, 1, 1]),
                               rtol=0.08)
    # theta and sd agree draw by draw
    th = ds["theta"].values.reshape(-1, 3)
    np.testing.assert_allclose(ds["sd_Subject"].values.reshape(-1, 2)[:, 0],
                               th[:, 0] * ds["sigma"].values.ravel())
    # seeded
    again = normal_approximation(ml, draws=2000, chains=2, seed=1)
    np.testing.assert_array_equal(again["beta"].values, ds["beta"].values)


def test_result_to_datatree_with_draws(sleep_ml):
    import arviz as az

    from pymc_mixed.datatree import result_to_datatree

    _, ml = sleep_ml
    tree = ml.to_datatree(draws=300, chains=2, seed=3)
    assert "posterior" not in result_to_datatree(ml).children
    assert "posterior" in tree.children and "mle" in tree.children
    summary = az.summary(tree, var_names=["beta", "sigma", "sd_Subject"])
    assert len(summary) == 5


def test_glmm_normal_approximation():
    m = pmm.MixedModel("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                       pmm.datasets.load("cbpp"), family="binomial")
    res = m.fit()
    names, psi, cov, _ = laplace_covariance(res)
    assert names[0] == "log(herd.(Intercept))"
    np.testing.assert_allclose(cov[1:5, 1:5], res.vcov_hessian().to_numpy(), rtol=1e-6)
    ds = normal_approximation(res, draws=500, chains=2, seed=0)
    assert "sigma" not in ds and {"beta", "theta", "sd_herd", "b_herd"} <= set(ds.data_vars)


def test_singular_fit_holds_the_boundary():
    m = pmm.MixedModel("Yield ~ 1 + (1 | Batch)", pmm.datasets.load("Dyestuff2"))
    res = m.fit(REML=False)
    assert res.issingular()
    names, _, cov, _ = laplace_covariance(res)
    assert names == ["(Intercept)", "log(sigma)"]
    ds = normal_approximation(res, draws=100, seed=0)
    assert np.all(ds["sd_Batch"].values == 0)


def test_compare_table(sleep_ml):
    import xarray as xr

    _, ml = sleep_ml
    fake = normal_approximation(ml, draws=500, chains=2, seed=5)
    tree = xr.DataTree.from_dict({"posterior": fake})
    tab = pmm.compare({"ML": ml, "draws": tree})
    assert list(tab.columns.get_level_values(0).unique()) == ["ML", "draws"]
    assert list(tab.columns.get_level_values(1)[:4]) == ["estimate", "se", "lower", "upper"]
    assert tab.loc["beta[Days]", ("ML", "estimate")] == pytest.approx(ml.fixef["Days"])
    assert tab.loc["beta[Days]", ("ML", "se")] == pytest.approx(ml.se["Days"])
    assert tab.loc["sigma", ("ML", "estimate")] == pytest.approx(ml.sigma)
    assert "corr_Subject[Days,(Intercept)]" in tab.index
    assert "corr_Subject[(Intercept),Days]" not in tab.index
    lo, hi = tab.loc["sd_Subject[Days]", ("draws", "lower")], \
        tab.loc["sd_Subject[Days]", ("draws", "upper")]
    assert lo < ml.varcorr["Subject"].to_numpy()[1, 1] ** 0.5 < hi
    with pytest.raises(TypeError):
        pmm.compare([ml])


def test_plots(sleep_ml):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, ml = sleep_ml
    fig = pmm.plot_ranef(ml)
    assert len(fig.axes) == 2
    plt.close(fig)
    import xarray as xr

    post = xr.DataTree.from_dict({"posterior": normal_approximation(ml, draws=200, chains=2,
                                                                    seed=1)})
    pc = pmm.plot_compare({"ML": ml, "other": post})
    assert pc is not None
    plt.close("all")


def test_lazy_exports_stay_lazy():
    import subprocess
    import sys

    code = ("import sys, pymc_mixed as pmm; "
            "print(any(m in sys.modules for m in ('matplotlib', 'arviz_plots', "
            "'pymc_mixed.postfit.compare', 'pymc_mixed.plots'))); "
            "pmm.compare; print('pymc_mixed.postfit.compare' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


def test_ml_and_posterior_trees_name_the_response_alike():
    import pymc_mixed as pmm

    df = pmm.datasets.load("sleepstudy")
    tree = pmm.MixedModel("Reaction ~ 1 + Days + (1 | Subject)", df).fit().to_datatree()
    assert list(tree["observed_data"].data_vars) == ["Reaction"]
    cb = pmm.MixedModel("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                        pmm.datasets.load("cbpp"), family="binomial").fit()
    assert list(cb.to_datatree()["observed_data"].data_vars) == ["y"]


def test_glmm_normal_approximation_with_a_dispersion_uses_the_log_scale():
    """The chain rule for log(dispersion): the curvature in psi equals finite differences of
    the deviance taken in psi itself (a gamma GLMM; before the one-layout move the dispersion
    row was scaled by log(phi) instead of phi)."""
    cake = pmm.datasets.load("cake").assign(temp_c=lambda d: d["temp"] - 200)
    res = pmm.MixedModel("angle ~ recipe + temp_c + (1 | replicate)", cake, family="gamma",
                         link="log").fit()
    names, psi_hat, cov, par = laplace_covariance(res)
    assert names[-1] == "log(dispersion)"
    dev = res.curvature.deviance
    H = res.curvature.hessian(lambda psi: dev(par.to_natural(psi)), psi_hat, 1e-4)
    np.testing.assert_allclose(2.0 * np.linalg.inv(H), cov, rtol=2e-3, atol=1e-8)
