"""Post-fit results against the independent lme4 references of bench/make_postfit_refs.R
(tests/reference/lme4_postfit.json, branch refs): predictions with each random-effect term
of a two-term model, whole-data predictions and Cook's distance of subject deletion."""

import json
import pathlib

import numpy as np
import pytest

import pymc_mixed as pmm

REF = json.loads((pathlib.Path(__file__).parent / "reference" /
                  "lme4_postfit.json").read_text())


@pytest.fixture(scope="module")
def sleep():
    return pmm.datasets.load("sleepstudy")


def test_two_term_predictions_by_re_form(sleep):
    ref = REF["sleepstudy_twoterm_ml"]
    r = pmm.MixedModel(ref["formula"], sleep).fit(REML=False)
    cases = {"predict_intercept_only": "~ (1 | Subject)",
             "predict_slope_only": "~ (0 + Days | Subject)",
             "predict_population": "~0", "predict_full": None}
    for key, form in cases.items():
        np.testing.assert_allclose(r.predict(sleep, re_form=form), ref[key], rtol=5e-6,
                                   err_msg=key)


def test_full_and_population_predictions_and_subject_cooks(sleep):
    ref = REF["sleepstudy_ml"]
    r = pmm.MixedModel(ref["formula"], sleep).fit(REML=False)
    np.testing.assert_allclose(r.predict(), ref["predict_full"], rtol=5e-6)
    np.testing.assert_allclose(r.predict(re_form="~0"), ref["predict_population"], rtol=1e-7)
    inf = r.influence(groups="Subject", refit=True)
    cooks = ref["cooks_distance_subject"]
    np.testing.assert_allclose(inf["cooks"].to_numpy(),
                               [cooks[str(g)] for g in inf.index], rtol=1e-3)
