"""Bad input gets a clear error naming the culprit, or a documented drop with a count."""

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm
from pymc_mixed.formula import FormulaError, parse_formula


@pytest.fixture
def sleep():
    return pmm.datasets.load("sleepstudy")


def test_missing_column_is_named(sleep):
    with pytest.raises(FormulaError, match="'Dayz'"):
        pmm.MixedModel("Reaction ~ Dayz + (1 | Subject)", sleep)
    with pytest.raises(FormulaError, match="grouping factor 'Subj'"):
        pmm.MixedModel("Reaction ~ Days + (1 | Subj)", sleep)
    with pytest.raises(FormulaError, match="'Reactio'"):
        pmm.MixedModel("Reactio ~ Days + (1 | Subject)", sleep)


def test_nan_rows_dropped_with_count(sleep):
    df = sleep.copy()
    df.loc[[3, 10, 50], "Reaction"] = np.nan
    df.loc[60, "Days"] = np.nan
    with pytest.warns(UserWarning, match="dropped 4 of 180 rows"):
        m = pmm.MixedModel("Reaction ~ Days + (1 | Subject)", df)
    assert m.spec.n == 176 and m.spec.n_dropped == 4
    res = m.fit()
    assert res.nobs == 176
    assert "4 rows with missing values were dropped" in res.summary()


def test_unused_column_nan_is_not_a_reason_to_drop(sleep):
    df = sleep.assign(other=np.nan)
    m = pmm.MixedModel("Reaction ~ Days + (1 | Subject)", df)
    assert m.spec.n == 180


def test_one_level_grouping_factor(sleep):
    df = sleep.assign(g="only")
    with pytest.raises(FormulaError, match="'g'.*only 1 level"):
        pmm.MixedModel("Reaction ~ Days + (1 | g)", df)


def test_as_many_levels_as_observations(sleep):
    df = sleep.assign(obs=np.arange(len(sleep)).astype(str))
    with pytest.raises(FormulaError, match="'obs' has 180 levels for 180 observations"):
        pmm.MixedModel("Reaction ~ Days + (1 | obs)", df)


def test_non_numeric_response(sleep):
    with pytest.raises(ValueError, match="response 'Subject' is not numeric"):
        pmm.MixedModel("Subject ~ Days + (1 | Subject)", sleep)


def test_empty_data(sleep):
    with pytest.raises(FormulaError, match="no rows"):
        pmm.MixedModel("Reaction ~ Days + (1 | Subject)", sleep.iloc[:0])


def test_formula_without_random_effects(sleep):
    with pytest.raises(FormulaError, match="no random-effects terms"):
        pmm.MixedModel("Reaction ~ Days", sleep)


def test_rank_deficient_fixed_effects_dropped_by_name(sleep):
    df = sleep.assign(Days2=2 * sleep["Days"] + 1)
    with pytest.warns(UserWarning, match="dropping 1 column.*Days2"):
        m = pmm.MixedModel("Reaction ~ Days + Days2 + (1 | Subject)", df)
    assert m.spec.xnames == ["(Intercept)", "Days"]
    assert m.spec.aliased == ["Days2"]
    ref = pmm.MixedModel("Reaction ~ Days + (1 | Subject)", sleep).fit()
    assert np.isclose(m.fit().objective, ref.objective, rtol=1e-10)


def test_bad_formula_text(sleep):
    with pytest.raises(ValueError, match="formula"):
        pmm.MixedModel("Reaction Days (1|Subject)", sleep)
    with pytest.raises(ValueError, match="unbalanced"):
        pmm.MixedModel("Reaction ~ Days + (1 | Subject", sleep)


def test_data_must_be_a_frame():
    with pytest.raises(TypeError, match="DataFrame"):
        pmm.MixedModel("y ~ 1 + (1|g)", {"y": [1, 2], "g": ["a", "b"]})


def test_unknown_dataset_lists_available():
    with pytest.raises(KeyError, match="sleepstudy"):
        pmm.datasets.load("sleepstduy")


def test_parse_expands_bars():
    p = parse_formula("y ~ x + (1 + x || g) + (1 | a/b)")
    # lme4's findbars order (R 4.2, lme4 1.1-31): the innermost nesting first
    assert [(b.lhs, b.group) for b in p.bars] == [("1", "g"), ("0 + x", "g"), ("1", "b:a"),
                                                 ("1", "a")]
    assert p.fixed == "x"


def test_datasets_are_typed():
    df = pmm.datasets.load("sleepstudy")
    assert isinstance(df["Subject"].dtype, pd.CategoricalDtype)
    assert df["Subject"].cat.categories[0] == "308"
    assert "InstEval" in pmm.datasets.names() and len(pmm.datasets.names()) == 23
    ie = pmm.datasets.load("InstEval")
    assert ie.shape == (73421, 7) and ie["studage"].cat.ordered


def test_categorical_reference_level_follows_r(ref_extra):
    # Orthodont's Sex has levels (Male, Female): R's reference level is Male, not the
    # alphabetically first
    m = pmm.MixedModel("distance ~ age + Sex + (1 | Subject)", pmm.datasets.load("Orthodont"))
    assert m.spec.xnames == ["(Intercept)", "age", "SexFemale"]


def test_functions_and_interactions_in_fixed_part(sleep):
    m = pmm.MixedModel("Reaction ~ log(Days + 1) * I(Days ** 2) + (1 | Subject)", sleep)
    assert m.spec.X.shape == (180, 4)
    np.testing.assert_allclose(m.spec.X[:, 1], np.log(sleep["Days"] + 1))


def test_response_fitted_exactly_is_a_clear_error(sleep):
    df = sleep.assign(yy=3.0 + 2.0 * sleep["Days"])
    with pytest.raises(ValueError, match="fitted exactly by the fixed effects"):
        pmm.MixedModel("yy ~ Days + (1 | Subject)", df).fit()
