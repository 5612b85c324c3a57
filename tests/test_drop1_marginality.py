"""drop1 follows R's drop.scope: a*b is a + b + a:b and only terms contained in no other term
are dropped. Numbers from lme4 1.1-31 (tests/reference/drop1_marginality_lme4.R)."""

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm


def _data():
    d = pmm.datasets.load("sleepstudy")
    d["g3"] = pd.Categorical(np.array(["a", "b", "c"])[(d["Days"] % 3).astype(int)])
    return d


def test_drop1_interaction_only_by_marginality():
    r = pmm.MixedModel("Reaction ~ Days * g3 + (1|Subject)", _data()).fit(REML=False)
    t = pmm.drop1(r)
    assert list(t.index) == ["<none>", "Days:g3"]
    assert t.loc["<none>", "AIC"] == pytest.approx(1807.945151806, rel=1e-8)
    assert t.loc["Days:g3", "AIC"] == pytest.approx(1805.3, abs=0.05)
    assert t.loc["Days:g3", "LRT"] == pytest.approx(1.3784, abs=1e-4)
    assert t.loc["Days:g3", "Pr(Chi)"] == pytest.approx(0.502, abs=1e-3)


def test_drop1_main_effects_and_update_removes_an_interaction():
    d = _data()
    r = pmm.MixedModel("Reaction ~ Days + g3 + (1|Subject)", d).fit(REML=False)
    t = pmm.drop1(r)
    assert t.loc["Days", "LRT"] == pytest.approx(114.627, abs=1e-3)
    assert t.loc["g3", "LRT"] == pytest.approx(0.755, abs=1e-3)
    m = pmm.MixedModel("Reaction ~ Days * g3 + (1|Subject)", d).update("~ . - g3:Days")
    assert m.fit(REML=False).fixef.index.tolist() == ["(Intercept)", "Days", "g3b", "g3c"]
