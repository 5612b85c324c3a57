import numpy as np
import pytest

import pymc_mixed as pmm
from pymc_mixed.postfit.bootstrap import parametric_bootstrap, simulate


@pytest.fixture(scope="module")
def fit():
    df = pmm.datasets.load("sleepstudy")
    return pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)", df).fit(REML=False)


def test_simulate_moments(fit):
    ys = simulate(fit, nsim=400, seed=1)
    assert ys.shape == (400, 180)
    # the marginal mean is X beta; the marginal variance of day 0 is sd_int^2 + sigma^2
    np.testing.assert_allclose(ys.mean(axis=0)[::10], (fit.spec.X @ fit.beta)[::10], rtol=0.02)
    day0 = ys[:, fit.spec.X[:, 1] == 0].ravel()
    want = fit.varcorr.as_frame()["vcov"].iloc[0] + fit.sigma**2
    assert day0.var() == pytest.approx(want, rel=0.1)
    np.testing.assert_array_equal(simulate(fit, 2, seed=3), simulate(fit, 2, seed=3))


def test_bootstrap_recovers_estimates(fit):
    boot = parametric_bootstrap(fit, n=60, seed=7, progressbar=False)
    reps = boot.replicates
    assert reps.shape == (60, 2 + 1 + 3)
    # bootstrap means near the estimates, spread near the standard errors
    assert abs(reps["Days"].mean() - fit.fixef["Days"]) < 4 * fit.se["Days"] / np.sqrt(60)
    assert reps["Days"].std() == pytest.approx(fit.se["Days"], rel=0.35)
    ci = boot.confint()
    assert ci.loc["Days"].iloc[0] < fit.fixef["Days"] < ci.loc["Days"].iloc[1]
