"""Post-fit analysis of linear mixed models: profile intervals, influence, coef, predict,
update/drop1, rePCA. Reference numbers: lme4 1.1-31 (bench/make_postfit_post_refs.R ->
tests/reference/lme4_postfit_post.json); the sleepstudy ML profile intervals are also the ones
quoted in issue 11."""

import json
import pathlib
import time

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm
from pymc_mixed import postfit as pf
from pymc_mixed.fit.pls import LMMObjective, fit_lmm
from pymc_mixed.postfit import _refit
from pymc_mixed.postfit.update import _subset_spec

REF = json.loads((pathlib.Path(__file__).parent / "reference" /
                  "lme4_postfit_post.json").read_text())
FORMULA = "Reaction ~ 1 + Days + (1 + Days | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return pmm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def ml(sleep):
    return pmm.MixedModel(FORMULA, sleep).fit(REML=False)


@pytest.fixture(scope="module")
def ml_profile(ml):
    t0 = time.perf_counter()
    prof = pf.profile(ml)
    return prof, time.perf_counter() - t0


def test_profile_intervals_match_lme4(ml_profile):
    prof, seconds = ml_profile
    ci = prof.confint(0.95)
    ref = REF["sleepstudy_ml_profile"]
    assert list(ci.index) == ref["names"]
    # the numbers, to 1e-3 (lme4 interpolates a spline; ours are exact roots)
    np.testing.assert_allclose(ci.iloc[:, 0], ref["lower"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(ci.iloc[:, 1], ref["upper"], atol=1e-3, rtol=0)
    assert seconds < 2.0


def test_profile_zeta_is_signed_root_of_deviance_increase(ml, ml_profile):
    prof, _ = ml_profile
    for p in prof.params.values():
        assert np.all(np.diff(p.values) > 0)
        assert np.all(np.diff(p.zeta) > 0)           # monotone in the parameter
        assert p.zeta.min() < -3 and p.zeta.max() > 3 or p.values[0] in (0.0, -1.0)
    # zeta of a fixed effect is the square root of an exact ML refit with it in the offset
    v = 12.0
    spec = ml.spec
    red = _refit.spec_with(spec, X=spec.X[:, :1], xnames=["(Intercept)"],
                           y=spec.y - v * spec.X[:, 1])
    dev = fit_lmm(red, REML=False).objective
    assert prof.zeta("Days", v) == pytest.approx(np.sqrt(dev - ml.objective), rel=1e-6)


def test_profile_of_reml_fit_uses_ml_deviance_like_lme4(sleep):
    reml = pmm.MixedModel(FORMULA, sleep).fit()
    ci = pf.confint(reml, method="profile")
    ref = REF["sleepstudy_reml_profile"]
    np.testing.assert_allclose(ci.to_numpy(), np.c_[ref["lower"], ref["upper"]], atol=1e-3)


def test_profile_parallel_equals_serial(ml, ml_profile):
    prof, _ = ml_profile
    par = pf.profile(ml, which=["sigma", "Days"], n_jobs=2)
    for n in ("sigma", "Days"):
        np.testing.assert_allclose(par.params[n].zeta, prof.params[n].zeta, atol=1e-8)


def test_profile_plot_and_bad_name(ml_profile, ml):
    import matplotlib

    matplotlib.use("Agg")
    prof, _ = ml_profile
    axes = prof.plot()
    assert axes[0].get_xlabel() == "sd_(Intercept)|Subject"
    with pytest.raises(KeyError, match="no parameter 'Dayz'"):
        pf.profile(ml, which="Dayz")


def test_wald_and_boot_intervals(ml):
    w = pf.confint(ml, method="wald")
    ref = REF["sleepstudy_ml_wald"]
    np.testing.assert_allclose(w.loc[["(Intercept)", "Days"]].to_numpy(),
                               np.c_[ref["lower"][-2:], ref["upper"][-2:]], rtol=1e-5)
    assert w.loc["sigma"].isna().all()
    b1 = pf.confint(ml, method="boot", nsim=40, seed=3)
    b2 = pf.confint(ml, method="boot", nsim=40, seed=3)
    pd.testing.assert_frame_equal(b1, b2)
    assert b1.loc["Days", "2.5 %"] < ml.beta[1] < b1.loc["Days", "97.5 %"]
    with pytest.raises(ValueError, match="method must be"):
        pf.confint(ml, method="bayes")


def _brute_hat(result):
    """Diagonal of the full hat matrix from dense matrices (no factor reuse)."""
    spec = result.spec
    Z = np.zeros((spec.n, spec.q))
    start = 0
    Lam = np.zeros((spec.q, spec.q))
    for t, T in zip(spec.reterms, spec.Ts(np.asarray(result.theta, float))):
        Z[np.repeat(np.arange(spec.n), t.p), (start + t.columns).ravel()] = t.z.ravel()
        for j in range(t.nlevels):
            s = start + j * t.p
            Lam[s:s + t.p, s:s + t.p] = T
        start += t.q
    sw = np.sqrt(spec.prior_weights)[:, None]
    A = sw * np.hstack([Z @ Lam, spec.X])
    M = A.T @ A
    M[:spec.q, :spec.q] += np.eye(spec.q)
    return np.diag(A @ np.linalg.solve(M, A.T))


def test_hatvalues_equal_brute_force_and_lme4(ml):
    h = pf.hatvalues(ml)
    np.testing.assert_allclose(h, _brute_hat(ml), atol=1e-10, rtol=0)
    # lme4's estimates differ from ours in the 5th digit; the hat values follow
    np.testing.assert_allclose(h, REF["sleepstudy_ml_hat"], atol=2e-5)


def test_hatvalues_crossed_and_weighted():
    pen = pmm.datasets.load("Penicillin")
    r = pmm.MixedModel("diameter ~ 1 + (1 | plate) + (1 | sample)", pen).fit()
    np.testing.assert_allclose(pf.hatvalues(r), _brute_hat(r), atol=1e-10, rtol=0)
    w = np.linspace(0.5, 2.0, len(pen))
    rw = pmm.MixedModel("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, weights=w).fit()
    np.testing.assert_allclose(pf.hatvalues(rw), _brute_hat(rw), atol=1e-10, rtol=0)


def test_cooks_distance_and_rstudent_match_lme4(ml):
    np.testing.assert_allclose(pf.cooks_distance(ml), REF["sleepstudy_ml_cooks"], rtol=2e-3,
                               atol=1e-7)
    np.testing.assert_allclose(pf.rstudent(ml), REF["sleepstudy_ml_rstudent"], rtol=1e-3,
                               atol=1e-6)


def test_influence_closed_form_equals_refit_at_fixed_theta(ml):
    inf = pf.influence(ml, groups="Subject")
    spec, theta = ml.spec, np.asarray(ml.theta, float)
    for g in ["308", "335", "372"]:
        keep = np.nonzero(spec.data["Subject"].astype(str).to_numpy() != g)[0]
        obj = LMMObjective(_subset_spec(spec, keep), REML=False)
        obj(theta)
        beta_g = obj.solve()[1]  # beta of X (the system works in an orthonormal basis)
        row = inf.loc[[i for i in inf.index if str(i) == g][0]]
        np.testing.assert_allclose(row.iloc[:2].to_numpy(), beta_g, rtol=1e-10)
    cases = pf.influence(ml)
    assert len(cases) == spec.n


def test_influence_refit_matches_lme4(ml):
    inf = pf.influence(ml, groups="Subject", refit=True)
    ref = REF["sleepstudy_ml_influence_subject"]
    assert [str(i) for i in inf.index] == ref["groups"]
    np.testing.assert_allclose(inf.iloc[:, :2].to_numpy(), ref["fixef"], rtol=1e-5)
    np.testing.assert_allclose(inf.iloc[:, 2:4].to_numpy(), ref["dfbeta"], atol=2e-3)
    np.testing.assert_allclose(inf["cooks"], ref["cooks"], rtol=1e-3)


def test_coef_rebuilds_fixef_plus_ranef_and_matches_lme4(ml):
    c = pf.coef(ml)["Subject"]
    ref = REF["sleepstudy_ml_coef"]
    assert [str(i) for i in c.index] == ref["levels"]
    # lme4's optimum is ~1e-4 away from ours (our ML objective is lower): absolute tolerance
    np.testing.assert_allclose(c.to_numpy(), np.c_[ref["intercept"], ref["days"]], atol=2e-3)
    np.testing.assert_allclose(c.to_numpy() - ml.beta, ml.ranef["Subject"].to_numpy(),
                               atol=1e-12)


def test_predict_re_form_se_fit_and_newparams(ml, sleep):
    nd = pd.DataFrame({"Days": [0, 5, 9, 3], "Subject": ["308", "309", "999", "372"]})
    ref = REF["sleepstudy_ml_predict"]
    np.testing.assert_allclose(pf.predict(ml, nd), ref["all"], rtol=2e-6)
    np.testing.assert_allclose(pf.predict(ml, nd, re_form="~0"), ref["none"], rtol=1e-8)
    zcp = pmm.MixedModel("Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)",
                         sleep).fit(REML=False)
    np.testing.assert_allclose(pf.predict(zcp, nd, re_form="~ (1 | Subject)"),
                               REF["sleepstudy_zcp_predict_int_only"], rtol=2e-6)
    fit, se = pf.predict(ml, nd, re_form="~0", se_fit=True)
    X = np.c_[np.ones(4), nd["Days"]]
    np.testing.assert_allclose(se**2, np.diag(X @ ml.vcov.to_numpy() @ X.T), rtol=1e-12)
    same = pf.predict(ml, newparams={"beta": ml.beta, "theta": ml.theta.to_numpy()})
    np.testing.assert_allclose(same, ml.fitted, rtol=1e-9)
    with pytest.raises(ValueError, match="no random effects for 'Days'"):
        pf.predict(ml, nd, re_form="~(1|Days)")
    with pytest.raises(ValueError, match="se_fit"):
        pf.predict(ml, nd, se_fit=True)


def test_update_refit_drop1_repca(ml, sleep):
    assert pf.update_formula(FORMULA, "~ . - Days") == "Reaction ~ 1 + (1 + Days | Subject)"
    assert pf.update_formula("y ~ a + b + (1|g)", "log(y) ~ . + c - a") == \
        "log(y) ~ b + (1|g) + c"
    with pytest.raises(ValueError, match="cannot remove 'x'"):
        pf.update_formula(FORMULA, "~ . - x")
    s2 = pf.update_spec(ml.spec, "~ . - Days")
    assert s2.xnames == ["(Intercept)"]
    same = pf.refit(ml, ml.spec.y)
    assert same.objective == pytest.approx(ml.objective, abs=1e-8)
    y2 = ml.spec.y + 10 * ml.spec.X[:, 1]
    r2 = pf.refit(ml, y2)
    assert r2.beta[1] == pytest.approx(ml.beta[1] + 10, abs=1e-4)
    d = pf.drop1(ml)
    ref = REF["sleepstudy_ml_drop1"]
    np.testing.assert_allclose(d["AIC"], ref["AIC"], rtol=1e-8)
    assert d.loc["Days", "LRT"] == pytest.approx(ref["LRT"][1], rel=1e-6)
    assert d.loc["Days", "Pr(Chi)"] == pytest.approx(ref["p"][1], rel=1e-5)
    pca = pf.repca(ml)["Subject"]
    np.testing.assert_allclose(pca.loc["Standard deviation"], REF["sleepstudy_ml_repca_sdev"],
                               rtol=1e-4)
