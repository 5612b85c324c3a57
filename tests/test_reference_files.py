"""Consistency of the R reference files that the NLMM, SAEM and post-fit tests copy numbers from.

The files are made by bench/make_nlme_refs.R (nlme_extra.json) and bench/make_postfit_refs.R
(lme4_postfit.json); these checks catch a regenerated file that no longer reproduces the shared
reference fits, or whose per-observation arrays are not in the data's row order."""

import json
import math
import pathlib

import numpy as np
import pytest

from pymc_mixed import datasets

REF_DIR = pathlib.Path(__file__).parent / "reference"

Z975 = 1.959963984540054  # qnorm(0.975)


@pytest.fixture(scope="module")
def nlme_extra():
    return json.loads((REF_DIR / "nlme_extra.json").read_text())


@pytest.fixture(scope="module")
def postfit():
    return json.loads((REF_DIR / "lme4_postfit.json").read_text())


@pytest.mark.parametrize("case", ["theoph_nlme_ml", "orange_nlme_ml", "theoph_nlmer_laplace"])
def test_nlme_extra_reproduces_shared_fits(nlme_extra, ref, case):
    new, old = nlme_extra[case], ref[case]
    assert new["logLik"] == pytest.approx(old["logLik"], rel=1e-12)
    assert new["sigma"] == pytest.approx(old["sigma"], rel=1e-12)
    for name, value in old["beta"].items():
        assert new["fixef"][name] == pytest.approx(value, rel=1e-12)
        assert new["se"][name] == pytest.approx(old["se"][name], rel=1e-9)


def test_nlme_extra_internal_consistency(nlme_extra):
    for key, case in nlme_extra.items():
        if key.startswith("_") or "error" in case:
            continue
        assert case["minus2logLik"] == pytest.approx(-2 * case["logLik"], rel=1e-14), key
        vc = np.array(case["vcov"]["matrix"])
        assert case["vcov"]["names"] == list(case["fixef"]), key
        np.testing.assert_allclose(np.sqrt(np.diag(vc)), list(case["se"].values()),
                                   rtol=1e-12, err_msg=key)


def _ssfol(dose, t, lke, lka, lcl):
    ke, ka = np.exp(lke), np.exp(lka)
    return dose * np.exp(lke + lka - lcl) * (np.exp(-ke * t) - np.exp(-ka * t)) / (ka - ke)


def test_nlme_extra_fitted_in_data_row_order(nlme_extra):
    """fitted_population/individual follow the CSV rows; ranef is keyed by level name."""
    th = datasets.load("Theoph")
    case = nlme_extra["theoph_nlme_ml"]
    b = case["fixef"]
    dose, t = th["Dose"].to_numpy(float), th["Time"].to_numpy(float)
    pop = _ssfol(dose, t, b["lKe"], b["lKa"], b["lCl"])
    np.testing.assert_allclose(case["fitted_population"], pop, rtol=1e-10)
    assert case["ranef"]["columns"] == ["lKa", "lCl"]
    re = np.array([case["ranef"]["values"][str(s)] for s in th["Subject"]])
    ind = _ssfol(dose, t, b["lKe"], b["lKa"] + re[:, 0], b["lCl"] + re[:, 1])
    np.testing.assert_allclose(case["fitted_individual"], ind, rtol=1e-10)


def test_postfit_cbpp_wald_and_z(postfit):
    cb = postfit["cbpp_laplace"]
    cols = cb["summary_coef"]["columns"]
    vc = np.array(cb["vcov_hessian"]["matrix"])
    for i, name in enumerate(cb["vcov_hessian"]["names"]):
        est, se, z, p = (cb["summary_coef"]["values"][name][cols.index(c)]
                         for c in ("Estimate", "Std. Error", "z value", "Pr(>|z|)"))
        assert se == pytest.approx(math.sqrt(vc[i, i]), rel=1e-12)
        assert z == pytest.approx(est / se, rel=1e-12)
        assert p == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)
        lo, hi = cb["confint_wald"][name]
        assert (lo, hi) == pytest.approx((est - Z975 * se, est + Z975 * se), rel=1e-12)


def test_postfit_sleepstudy_profile_rows(postfit):
    ci = postfit["sleepstudy_ml"]["confint_profile"]
    assert list(ci) == ["sd_(Intercept)|Subject", "cor_Days.(Intercept)|Subject",
                        "sd_Days|Subject", "sigma", "(Intercept)", "Days"]
    for name, (lo, hi) in ci.items():
        assert lo < hi, name
