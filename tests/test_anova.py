import numpy as np
import pytest

import pymc_mixed as pmm


def test_lrt_against_known_deviances(ref):
    df = pmm.datasets.load("sleepstudy")
    full = pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)", df).fit(REML=False)
    zc = pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days || Subject)", df).fit(REML=False)
    tab = pmm.anova(zc, full, names=["zerocorr", "full"])
    assert list(tab.index) == ["zerocorr", "full"]
    want = ref["sleepstudy_zerocorr_ml"]["objective"] - ref["sleepstudy_ml"]["objective"]
    assert tab.loc["full", "Chisq"] == pytest.approx(want, abs=1e-5)
    assert tab.loc["full", "Df"] == 1
    assert 0.7 < tab.loc["full", "Pr(>Chisq)"] < 0.9


def test_reml_fits_are_refitted_by_ml(ref):
    df = pmm.datasets.load("sleepstudy")
    a = pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)", df).fit()
    b = pmm.MixedModel("Reaction ~ 1 + (1 + Days | Subject)", df).fit()
    tab = pmm.anova(a, b)
    assert tab["refitted"].all()
    assert tab.loc["model1", "deviance"] == pytest.approx(ref["sleepstudy_ml"]["objective"], rel=1e-8)
