"""Issue 11, formulas: R's ``.`` and ordered factors' polynomial contrasts on every path.

Reference numbers: tests/reference/dot_ordered_lme4.R (R 4.2.2, lme4 1.1-31), output committed
as dot_ordered_lme4.json; the data columns below are built exactly as the R script builds them.
"""

import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm
from pymc_mixed.formula import FormulaError
from pymc_mixed.formula.design import _design

REF = json.loads((pathlib.Path(__file__).parent / "reference" /
                  "dot_ordered_lme4.json").read_text())


@pytest.fixture(scope="module")
def data():
    d = pmm.datasets.load("sleepstudy")
    i = np.arange(len(d))
    d["x"], d["z"] = np.cos(i), np.sin(i)
    levels = ["lo", "mid", "hi", "top"]
    d["o"] = pd.Categorical(np.array(levels)[np.minimum(d["Days"].to_numpy() // 3, 3)
                                             .astype(int)], categories=levels, ordered=True)
    d["o2"] = pd.Categorical(np.array(list("abc"))[i % 3], ordered=True)
    d["u"] = pd.Categorical(np.array(list("pq"))[(i // 2) % 2])
    return d


def _fit(formula, frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R's rank-deficiency/boundary notes, checked elsewhere
        return pmm.MixedModel(formula, frame).fit(REML=False)


@pytest.mark.parametrize("case", REF["matrices"], ids=lambda c: c["rhs"])
def test_ordered_model_matrix_matches_r(case, data):
    if case["rhs"] == "0 + o + x:o":  # R relabels x:o as o:x (o came first): not done
        pytest.xfail("R orders an interaction's variables by first appearance in the formula")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "treatment contrasts instead" warning any more
        d = _design(case["rhs"], data)
    assert d.names == case["names"]
    np.testing.assert_allclose(d.matrix, np.array(case["X"]), rtol=0, atol=1e-10)
    # the same columns on new data (predict), rows in another order
    rows = data.iloc[::-7]
    np.testing.assert_allclose(d.on(rows), np.array(case["X"])[::-7], rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", REF["fits"], ids=lambda c: c["formula"])
def test_ordered_fits_match_lme4(case, data):
    frame = pmm.datasets.load("cake") if case["formula"].startswith("angle") else data
    r = _fit(case["formula"], frame)
    assert r.spec.xnames == case["fixef_names"]
    cnms = case["cnms"]
    assert [t.cnames for t in r.spec.reterms] == [[v] if isinstance(v, str) else v
                                                  for v in cnms.values()]
    assert r.objective == pytest.approx(case["deviance"], abs=1e-6)
    # random slopes on o2: lme4's bobyqa stops ~1e-7 short in deviance, so fixef agree to ~1e-4
    tol = 1e-7 if len(r.spec.reterms[0].cnames) == 1 else 5e-4
    np.testing.assert_allclose(r.fixef.to_numpy(), case["fixef"], rtol=0, atol=tol)


@pytest.mark.parametrize("case", REF["dots"], ids=lambda c: c["formula"])
def test_dot_matches_lmer(case, data):
    r = _fit(case["formula"], data[["Reaction", "Days", "Subject", "x", "z"]])
    # lme4 backquotes I(Days^2) when it comes through '.' (a quirk of its name deparsing)
    assert r.spec.xnames == [n.strip("`") for n in case["fixef_names"]]
    assert r.objective == pytest.approx(case["deviance"], abs=1e-8)
    np.testing.assert_allclose(r.fixef.to_numpy(), case["fixef"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r.spec.X, np.array(case["X"]), rtol=0, atol=1e-10)


def test_dot_excludes_the_response_columns_and_keeps_plain_fast_path(data):
    frame = data[["Reaction", "Days", "Subject", "x"]]
    spec = pmm.MixedModel("log(Reaction) ~ . + (1 | Subject)", frame).spec
    assert spec.fixed_rhs == "Days + Subject + x"  # plain columns: the SimpleDesign path
    assert type(spec.fixed_design).__name__ == "SimpleDesign"
    spec = pmm.MixedModel("Reaction ~ . - 1 - Subject + (1 | Subject)", frame).spec
    assert spec.xnames == ["Days", "x"]


def test_dot_quotes_column_names_and_is_never_evaluated(data):
    frame = data[["Reaction", "Days", "Subject"]].rename(columns={"Days": "my days"})
    spec = pmm.MixedModel("Reaction ~ . - Subject + (1 | Subject)", frame).spec
    assert spec.xnames == ["(Intercept)", "my days"]
    for bad in ("Reaction ~ log(.) + (1 | Subject)", "Reaction ~ Days + (. | Subject)"):
        with pytest.raises(FormulaError, match=r"'\.'"):
            pmm.MixedModel(bad, data[["Reaction", "Days", "Subject"]])


def test_update_dot_still_means_the_old_formula(data):
    m = pmm.MixedModel("Reaction ~ Days + x + (1 | Subject)", data)
    assert m.update("~ . - x").spec.xnames == ["(Intercept)", "Days"]
    m1 = pmm.MixedModel("Reaction ~ . + (1 | Subject)", data[["Reaction", "Days", "Subject"]])
    assert m1.update("~ . + I(Days^2)").spec.xnames[-1] == "I(Days^2)"


@pytest.mark.xfail(strict=True, reason="postfit.update.update_formula drops the old formula's "
                   "'- term' pieces (outside the formula package; open)")
def test_update_keeps_removals_of_a_dot_formula(data):
    m2 = pmm.MixedModel("Reaction ~ . - Subject + (1 | Subject)",
                        data[["Reaction", "Days", "Subject", "x"]])
    assert m2.update("~ . + I(Days^2)").spec.xnames == ["(Intercept)", "Days", "x",
                                                        "I(Days^2)"]
