"""The post-fit functions as methods of results and models, and the GLMM bootstrap through
``pymc_mixed.parametric_bootstrap`` / ``simulate`` (the lme4 user's spelling)."""

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm
from pymc_mixed import postfit as pf


@pytest.fixture(scope="module")
def lmm():
    m = pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)",
                       pmm.datasets.load("sleepstudy"))
    return m, m.fit(REML=False)


@pytest.fixture(scope="module")
def glmm():
    d = pmm.datasets.load("cbpp")
    return pmm.MixedModel("cbind(incidence, size - incidence) ~ period + (1 | herd)", d,
                          family="binomial").fit()


def test_lmm_methods_delegate(lmm):
    m, r = lmm
    np.testing.assert_array_equal(r.hatvalues(), pf.hatvalues(r))
    np.testing.assert_array_equal(r.cooks_distance(), pf.cooks_distance(r))
    np.testing.assert_array_equal(r.rstudent(), pf.rstudent(r))
    pd.testing.assert_frame_equal(r.coef()["Subject"], pf.coef(r)["Subject"])
    assert list(r.rePCA()) == ["Subject"]
    ci = r.confint(parm=["Days"], method="profile")
    assert ci.loc["Days", "2.5 %"] == pytest.approx(7.358653, abs=1e-3)
    assert r.profile(which="sigma").names == ["sigma"]
    assert r.influence(groups="Subject").shape == (18, 5)
    assert r.refit(r.spec.y).objective == pytest.approx(r.objective, abs=1e-8)
    m2 = m.update("~ . - Days")
    assert m2.spec.xnames == ["(Intercept)"]
    assert list(pmm.drop1(r).index) == ["<none>", "Days"]
    nd = pd.DataFrame({"Days": [1.0, 2.0], "Subject": ["308", "308"]})
    fit, se = r.predict(nd, re_form="~0", se_fit=True)
    assert fit.shape == se.shape == (2,)
    assert r.simulate(2, seed=1).shape == (2, r.nobs)


def test_glmm_simulate_and_bootstrap_via_package(glmm):
    ys = pmm.simulate(glmm, nsim=3, seed=5)
    assert ys.shape == (3, glmm.nobs) and np.all((ys >= 0) & (ys <= 1))
    boot = pmm.parametric_bootstrap(glmm, n=20, seed=2, progressbar=False)
    again = pmm.parametric_bootstrap(glmm, n=20, seed=2, progressbar=False)
    pd.testing.assert_frame_equal(boot.replicates, again.replicates)
    assert list(boot.estimate.index) == list(boot.replicates.columns)
    assert boot.confint().shape == (5, 2)


def test_glmm_predict_response_scale_se_by_delta_method(glmm):
    eta, se = glmm.predict(re_form="~0", se_fit=True)
    mu, se_mu = glmm.predict(re_form="~0", se_fit=True, type="response")
    fam = glmm.spec.family
    np.testing.assert_allclose(mu, fam.linkinv(eta), rtol=1e-12)
    np.testing.assert_allclose(se_mu, se * fam.mu_eta(eta), rtol=1e-12)


def test_summary_lme4_additions(lmm, glmm):
    m, r = lmm
    reml = m.fit()
    text = reml.summary()
    assert f"REML criterion at convergence: {reml.objective:.1f}" in text
    assert "Correlation of Fixed Effects:" in text
    C = reml.vcov.to_numpy()
    corr = C[1, 0] / np.sqrt(C[0, 0] * C[1, 1])
    assert f"Days        {corr:6.3f}" in text
    assert "AIC" in r.summary()            # ML fits keep the information criteria
    g = glmm.summary()
    from scipy.stats import norm

    z = glmm.beta / glmm.se.to_numpy()
    assert "Pr(>|z|)" in g and f"{2 * norm.sf(abs(z[1])):.4f}" in g
    pearson = glmm.resid("pearson")
    assert "Scaled residuals:" in g and f"{pearson.min():.4f}" in g
