"""Linear mixed models against lme4 1.1-31 (tests/reference): objective, theta, beta, sigma, se,
and the derived quantities (ranef, condVar, VarCorr, fitted values)."""

import json
import pathlib

import numpy as np
import pytest

import pymc_mixed as pmm

REF = json.loads((pathlib.Path(__file__).parent / "reference" / "lme4_nlme_fits.json").read_text())
LMM_CASES = [k for k, v in REF.items() if v["kind"] == "LMM"]


def _fit(case, ref):
    df = pmm.datasets.load(case["dataset"])
    return pmm.MixedModel(case["formula"], df).fit(REML=case["REML"])


@pytest.mark.parametrize("case_id", LMM_CASES)
def test_lmm_matches_lme4(case_id, ref):
    case = ref[case_id]
    res = _fit(case, ref)
    # objective within 1e-6 relative of lme4's, or lower
    assert res.objective <= case["objective"] * (1 + 1e-6)
    assert abs(res.objective - case["objective"]) <= 1e-6 * abs(case["objective"])
    np.testing.assert_allclose(res.theta.to_numpy(), np.atleast_1d(case["theta"]), atol=1e-3)
    np.testing.assert_allclose(res.fixef[list(case["beta"])].to_numpy(),
                               list(case["beta"].values()), rtol=1e-4)
    np.testing.assert_allclose(res.sigma, case["sigma"], rtol=1e-4)
    np.testing.assert_allclose(res.se[list(case["se"])].to_numpy(), list(case["se"].values()),
                               rtol=1e-3)
    assert res.nobs == case["nobs"]
    assert res.issingular() == case["singular"]
    assert np.isclose(res.loglik, case["logLik"], rtol=1e-6)
    assert res.converged


@pytest.mark.parametrize("case_id", ["machines_ml", "machines_reml", "orthodont_ml"])
def test_more_lmms_match_lme4(case_id, ref_extra):
    case = ref_extra[case_id]
    ds = {"machines": "Machines", "orthodont": "Orthodont"}[case_id.split("_")[0]]
    res = pmm.MixedModel(case["formula"], pmm.datasets.load(ds)).fit(REML=case["REML"])
    assert abs(res.objective - case["objective"]) <= 1e-6 * case["objective"]
    np.testing.assert_allclose(res.theta.to_numpy(), case["theta"], atol=1e-3)
    assert list(res.theta.index) == case["theta_names"]
    np.testing.assert_allclose(res.fixef[list(case["fixef"])], list(case["fixef"].values()),
                               rtol=1e-4)
    np.testing.assert_allclose(res.se[list(case["se"])], list(case["se"].values()), rtol=1e-3)


@pytest.fixture(scope="module")
def sleep_ml():
    df = pmm.datasets.load("sleepstudy")
    return pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)", df).fit(REML=False)


def test_sleepstudy_derived_quantities(sleep_ml, ref_extra):
    r, e = sleep_ml, ref_extra["sleepstudy_ml"]
    ranef = r.ranef["Subject"]
    want = e["ranef"]["Subject"]["values"]
    got = ranef.loc[list(want)].to_numpy()
    np.testing.assert_allclose(got, np.array(list(want.values())), rtol=2e-3, atol=5e-3)
    # conditional variances: [var_intercept, var_Days, cov] per level
    cv = r.condvar["Subject"]
    levels = list(ranef.index)
    want_cv = e["ranef"]["Subject"]["condVar"]
    for lev, (v0, v1, c01) in want_cv.items():
        blk = cv[levels.index(lev)]
        np.testing.assert_allclose([blk[0, 0], blk[1, 1], blk[0, 1]], [v0, v1, c01], rtol=2e-3)
    np.testing.assert_allclose(r.vcov.to_numpy(), e["vcov"]["matrix"], rtol=2e-3)
    np.testing.assert_allclose([r.aic, r.bic, r.loglik], [e["AIC"], e["BIC"], e["logLik"]],
                               rtol=1e-8)
    np.testing.assert_allclose(r.fitted[:5], e["fitted_1_5"], rtol=1e-5)
    np.testing.assert_allclose(r.residuals[:5], e["residuals_1_5"], atol=2e-3)
    vc = r.varcorr.as_frame()
    sd = e["VarCorr"]["Subject"]["sd"]
    np.testing.assert_allclose(vc["sdcor"].iloc[:2], [sd["(Intercept)"], sd["Days"]], rtol=1e-3)
    np.testing.assert_allclose(vc["sdcor"].iloc[2], e["VarCorr"]["Subject"]["corr"]["matrix"][0][1],
                               atol=2e-3)


def test_reml_condvar_and_ranef(ref_extra):
    e = ref_extra["sleepstudy_reml"]
    r = pmm.MixedModel(e["formula"], pmm.datasets.load("sleepstudy")).fit()
    assert r.REML
    want = e["ranef"]["Subject"]["values"]
    np.testing.assert_allclose(r.ranef["Subject"].loc[list(want)].to_numpy(),
                               np.array(list(want.values())), rtol=2e-3, atol=5e-3)


def test_nested_names_and_ranef_match_lme4(ref_extra):
    e = ref_extra["pastes_ml"]
    r = pmm.MixedModel(e["formula"], pmm.datasets.load("Pastes")).fit(REML=False)
    assert [t.group for t in r.spec.reterms] == e["flist_names"] == ["cask:batch", "batch"]
    for grp in ("cask:batch", "batch"):
        want = e["ranef"][grp]["values"]
        got = r.ranef[grp].loc[list(want)].to_numpy()
        np.testing.assert_allclose(got, np.array(list(want.values())), rtol=2e-3, atol=2e-3)


def test_summary_and_optsum(sleep_ml):
    text = str(sleep_ml)
    for piece in ("Linear mixed model fit by maximum likelihood", "Random effects:", "Subject",
                  "Residual", "Fixed effects:", "(Intercept)", "Days", "Number of obs: 180"):
        assert piece in text
    o = sleep_ml.optsum
    assert o.feval == len(o.fitlog) or o.feval <= len(o.fitlog)
    assert o.returnvalue in ("FTOL_REACHED", "XTOL_REACHED", "SUCCESS")
    assert "Final objective value" in str(o)
    assert np.isclose(o.fmin, sleep_ml.objective)


def test_singular_fit_is_reported(ref):
    with pytest.warns(pmm.SingularFitWarning, match="boundary \\(singular\\) fit"):
        r = pmm.MixedModel("Yield ~ 1 + (1 | Batch)", pmm.datasets.load("Dyestuff2")).fit(
            REML=False)
    assert r.issingular()
    assert "singular" in r.summary()


def test_weights_scale_like_lme4():
    # weights w mean var(e_i) = sigma^2 / w_i: doubling every weight doubles sigma^2, leaves the
    # random-effect SD (theta * sigma) and beta alone, and (with -sum(log w)) the deviance too
    df = pmm.datasets.load("sleepstudy")
    f = "Reaction ~ 1 + Days + (1 | Subject)"
    r1 = pmm.MixedModel(f, df).fit(REML=False)
    r2 = pmm.MixedModel(f, df, weights=np.full(len(df), 2.0)).fit(REML=False)
    np.testing.assert_allclose(r2.sigma, np.sqrt(2) * r1.sigma, rtol=1e-5)
    np.testing.assert_allclose(r2.fixef, r1.fixef, rtol=1e-6)
    np.testing.assert_allclose(r2.theta * r2.sigma, r1.theta * r1.sigma, rtol=1e-4)
    np.testing.assert_allclose(r2.objective, r1.objective, rtol=1e-9)


def test_offset_shifts_intercept():
    df = pmm.datasets.load("sleepstudy")
    f = "Reaction ~ 1 + Days + (1 | Subject)"
    r1 = pmm.MixedModel(f, df).fit()
    r2 = pmm.MixedModel(f, df, offset=np.full(len(df), 100.0)).fit()
    np.testing.assert_allclose(r2.fixef["(Intercept)"] + 100, r1.fixef["(Intercept)"], rtol=1e-6)
    assert np.isclose(r2.objective, r1.objective, rtol=1e-9)


def test_predict_matches_fitted_and_handles_new_levels(sleep_ml):
    df = pmm.datasets.load("sleepstudy")
    np.testing.assert_allclose(sleep_ml.predict(df), sleep_ml.fitted, rtol=1e-12)
    np.testing.assert_allclose(sleep_ml.predict(), sleep_ml.fitted, rtol=1e-12)
    pop = sleep_ml.predict(df, re_form="~0")
    np.testing.assert_allclose(pop, sleep_ml.fixef["(Intercept)"] + sleep_ml.fixef["Days"] * df["Days"])
    new = df.iloc[:3].assign(Subject=["999", "308", "999"])
    p = sleep_ml.predict(new)
    assert np.isclose(p[0], pop[0]) and np.isclose(p[1], sleep_ml.fitted[1])
    with pytest.raises(ValueError, match="new levels of 'Subject'"):
        sleep_ml.predict(new, allow_new_levels=False)


# lme4 1.1-31 on R 4.2.2, computed here with bench/read_typed.R:
# lmer(angle ~ recipe + temperature + (1|recipe:replicate), cake, REML = FALSE);
# temperature is an ordered factor, so R uses polynomial contrasts (.L .Q .C ^4 ^5)
CAKE_ML = {"objective": 1689.58224831766, "theta": 1.39379531949022,
           "fixef": {"(Intercept)": 33.1222222222216, "recipeB": -1.4777777777772,
                     "recipeC": -1.52222222222159, "temperature.L": 6.61094224140736,
                     "temperature.Q": -0.385518272750254, "temperature.C": -0.548250741149948,
                     "temperature^4": -1.29767802399835, "temperature^5": -0.914114077314911},
           "se_temperature": 0.667027060601642}


def test_ordered_factor_gets_polynomial_contrasts_as_in_r():
    r = pmm.MixedModel("angle ~ recipe + temperature + (1|recipe:replicate)",
                       pmm.datasets.load("cake")).fit(REML=False)
    assert list(r.fixef.index) == list(CAKE_ML["fixef"])
    assert abs(r.objective - CAKE_ML["objective"]) < 1e-6 * CAKE_ML["objective"]
    np.testing.assert_allclose(r.fixef.to_numpy(), list(CAKE_ML["fixef"].values()), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(r.theta.iloc[0], CAKE_ML["theta"], atol=1e-4)
    np.testing.assert_allclose(r.se["temperature.L"], CAKE_ML["se_temperature"], rtol=1e-4)
