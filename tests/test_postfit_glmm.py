"""Post-fit analysis of GLMMs: Laplace profile intervals, simulate for every family,
parametric bootstrap. lme4 1.1-31 numbers from bench/make_postfit_post_refs.R."""

import json
import pathlib
import time
import types
import warnings

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm
from pymc_mixed import postfit as pf
from pymc_mixed.formula import build_spec
from pymc_mixed.fit.glmm import fit_glmm
from pymc_mixed.postfit import _refit

REF = json.loads((pathlib.Path(__file__).parent / "reference" /
                  "lme4_postfit_post.json").read_text())


@pytest.fixture(scope="module")
def cbpp():
    d = pmm.datasets.load("cbpp")
    return pmm.MixedModel("cbind(incidence, size - incidence) ~ period + (1 | herd)", d,
                          family="binomial").fit()


def test_cbpp_profile_intervals_match_lme4(cbpp):
    ci = pf.confint(cbpp, method="profile")
    ref = REF["cbpp_profile"]
    assert list(ci.index) == ref["names"]
    np.testing.assert_allclose(ci.to_numpy(), np.c_[ref["lower"], ref["upper"]], atol=1e-3)


def test_cbpp_bootstrap_1000_fast_reproducible_and_exact(cbpp):
    t0 = time.perf_counter()
    rows, names = pf.bootstrap_glmm(cbpp, n=1000, seed=1)
    assert time.perf_counter() - t0 < 60
    assert names == ["herd.(Intercept)", "(Intercept)", "period2", "period3", "period4"]
    again, _ = pf.bootstrap_glmm(cbpp, n=5, seed=1)
    np.testing.assert_array_equal(again, rows[:5])
    # a warm-started replicate is the full two-stage fit of the simulated response
    ys = pf.simulate_glmm(cbpp, nsim=2, seed=1)
    for i in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = fit_glmm(_refit.spec_with(cbpp.spec, y=ys[i]))
        np.testing.assert_allclose(rows[i], np.r_[full.theta, full.beta], atol=2e-5)
    # the bootstrap distribution is centred near the estimates
    assert abs(np.median(rows[:, 1]) - cbpp.beta[0]) < 0.1


def _fake(family, y, beta, dispersion=None, offset=None, trials=None, n=400):
    """A result-like object to simulate from, without fitting (family checks only)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.repeat(np.arange(8), n // 8).astype(str),
                       "x": rng.uniform(-1, 1, n), "y": y(rng, n)})
    if trials is not None:
        df["t"] = trials
        df["y"] = np.minimum(df["y"], trials)
        lhs = "cbind(y, t - y)"
    else:
        lhs = "y"
    link = "log" if family == "gamma" else None
    spec = build_spec(f"{lhs} ~ x + (1 | g)", df, family=family, link=link, offset=offset)
    return types.SimpleNamespace(spec=spec, beta=np.asarray(beta, float),
                                 theta_hat=np.zeros(1), dispersion=dispersion, u=np.zeros(8))


@pytest.mark.parametrize("family,disp,var", [
    ("poisson", None, lambda mu, d: mu),
    ("negativebinomial", 2.5, lambda mu, d: mu + mu**2 / d),
    ("gamma", 0.3, lambda mu, d: d * mu**2),
    ("bernoulli", None, lambda mu, d: mu * (1 - mu)),
    ("binomial", None, lambda mu, d: mu * (1 - mu) / 7),
])
def test_simulate_every_family_moments(family, disp, var):
    n = 400
    pos = family in ("gamma",)
    trials = np.full(n, 7) if family == "binomial" else None
    ygen = (lambda r, k: r.gamma(2.0, 1.0, k)) if pos else (lambda r, k: r.integers(0, 2, k))
    offset = np.linspace(-0.2, 0.2, n) if family in ("poisson", "gamma") else None
    beta = [0.3, -0.4]
    res = _fake(family, ygen, beta, disp, offset=offset, trials=trials, n=n)
    sims = pf.simulate_glmm(res, nsim=3000, seed=7)
    eta = res.spec.X @ res.beta + res.spec.offset_or_zero
    mu = res.spec.family.linkinv(eta)
    se = np.sqrt(var(mu, disp) / 3000)
    assert np.all(np.abs(sims.mean(0) - mu) < 5 * se)
    np.testing.assert_allclose(sims.var(0).mean(), var(mu, disp).mean(), rtol=0.05)
    np.testing.assert_array_equal(pf.simulate_glmm(res, 2, seed=3), pf.simulate_glmm(res, 2, seed=3))


def test_glmm_predict_subsets_and_se(cbpp):
    pop, se = pf.predict(cbpp, re_form="~0", se_fit=True)
    np.testing.assert_allclose(pop, cbpp.spec.X @ cbpp.beta, rtol=1e-12)
    assert np.all(se > 0)
    np.testing.assert_allclose(pf.predict(cbpp, re_form="~(1|herd)"), cbpp.fitted_link,
                               rtol=1e-12)
