"""Issue 7, formula and input side: offsets (item 3), non-finite transforms (4), level matching
in predict (9), dates (11), lme4's orders (12), one-line errors (15) and the CLI (2).

Reference numbers: tests/reference/offsets_lme4.R and order_lme4.R (R 4.2.2, lme4 1.1-31);
their output is committed next to them (.out)."""

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm
from pymc_mixed.cli import main
from pymc_mixed.formula import FormulaError


@pytest.fixture
def sleep():
    return pmm.datasets.load("sleepstudy")


# -- item 3: offset() has coefficient 1 and is re-evaluated by predict -------------------------
def test_lmm_formula_offset_matches_lme4(sleep):
    r = pmm.MixedModel("Reaction ~ Days + offset(log(Days + 1)) + (1 | Subject)",
                       sleep).fit(REML=False)
    assert r.spec.xnames == ["(Intercept)", "Days"]
    assert r.objective == pytest.approx(1794.29137797498, rel=1e-9)
    np.testing.assert_allclose(r.beta, [250.931494213, 10.2368791547472], rtol=1e-6)
    nd = sleep.iloc[[0, 11, 24, 179]]
    np.testing.assert_allclose(r.predict(nd), [291.562660708514, 184.303147477333,
                                               230.615926358065, 363.413980078828], rtol=1e-7)
    np.testing.assert_allclose(r.predict(nd, re_form="~0"),
                               [250.931494213, 261.861520548307, 293.488448744423,
                                345.365991698719], rtol=1e-7)
    np.testing.assert_allclose(r.predict(sleep), r.fitted, rtol=1e-12)


def test_glmm_formula_offset_matches_lme4():
    cbpp = pmm.datasets.load("cbpp")
    f = "incidence ~ period + offset(log(size)) + (1 | herd)"
    g = pmm.MixedModel(f, cbpp, family="poisson").fit()
    assert g.spec.xnames == ["(Intercept)", "period2", "period3", "period4"]
    assert -2 * g.loglik == pytest.approx(180.483295448931, rel=1e-9)
    np.testing.assert_allclose(g.beta, [-1.64837835128289, -0.844056326012315,
                                        -0.966290724428902, -1.39102996164077], atol=5e-5)
    nd = cbpp.iloc[[0, 4, 19, 55]]
    np.testing.assert_allclose(g.predict(nd), [1.43619603515739, 1.23126737644403,
                                               0.894723468389303, -0.713319405673032], atol=5e-5)
    np.testing.assert_allclose(g.predict(nd, re_form="~0"),
                               [0.990678978332365, 1.44266410207542, 1.18483499277332,
                                -0.331358111821456], atol=5e-5)
    # the offset argument adds to the formula's offset: only the intercept moves (lme4: -0.25)
    both = pmm.MixedModel(f, cbpp, family="poisson", offset=np.full(len(cbpp), 0.25)).fit()
    assert -2 * both.loglik == pytest.approx(180.483295448935, rel=1e-9)
    assert both.beta[0] == pytest.approx(g.beta[0] - 0.25, abs=1e-5)
    # predict needs the offset of new rows when the fit's offset argument was an array
    with pytest.raises(FormulaError, match="pass offset="):
        both.predict(nd)
    np.testing.assert_allclose(both.predict(nd, offset=np.full(4, 0.25)), g.predict(nd),
                               atol=1e-5)


def test_offset_column_argument_is_reread_on_newdata(sleep):
    df = sleep.assign(o=np.linspace(0, 30, len(sleep)))
    r = pmm.MixedModel("Reaction ~ Days + (1 | Subject)", df, offset="o").fit()
    np.testing.assert_allclose(r.predict(df), r.fitted, rtol=1e-12)
    np.testing.assert_allclose(r.predict(df, offset=np.zeros(len(df))) + df["o"], r.fitted,
                               rtol=1e-12)


def test_offset_with_nan_or_log0_is_named(sleep):
    with pytest.raises(FormulaError, match=r"offset\(log\(Days\)\) is not finite .* 18 of 180"):
        pmm.MixedModel("Reaction ~ Days + offset(log(Days)) + (1 | Subject)", sleep)
    off = np.zeros(len(sleep))
    off[3] = np.nan
    with pytest.raises(FormulaError, match="offset argument is not finite"):
        pmm.MixedModel("Reaction ~ Days + (1 | Subject)", sleep, offset=off)


# -- item 4: non-finite transformed values drop rows, not columns ----------------------------
def test_nonfinite_transform_drops_rows_not_the_column(sleep):
    with pytest.warns(UserWarning, match=r"dropped 18 of 180 rows .*log\(Days\) in the fixed "
                                         r"effects: 18"):
        m = pmm.MixedModel("Reaction ~ log(Days) + (1 | Subject)", sleep)
    assert m.spec.xnames == ["(Intercept)", "log(Days)"] and m.spec.n == 162
    assert m.spec.n_dropped == 18 and not m.spec.aliased
    sub = sleep[sleep["Days"] > 0].assign(ld=lambda d: np.log(d["Days"]))
    ref = pmm.MixedModel("Reaction ~ ld + (1 | Subject)", sub).fit()
    assert m.fit().objective == pytest.approx(ref.objective, rel=1e-10)


def test_nonfinite_response_transform_is_dropped(sleep):
    df = sleep.assign(r=sleep["Reaction"].where(sleep.index % 7 != 0, 0.0))
    with pytest.warns(UserWarning, match=r"log\(r\) in the response: 26"):
        m = pmm.MixedModel("log(r) ~ Days + (1 | Subject)", df)
    assert m.spec.n == 154


# -- item 9: predict matches levels by value, interactions as tuples ---------------------------
def test_int_levels_match_float_newdata(sleep):
    df = sleep.assign(s=sleep["Subject"].cat.codes.astype(int))
    r = pmm.MixedModel("Reaction ~ Days + (1 | s)", df).fit()
    np.testing.assert_allclose(r.predict(df.assign(s=df["s"].astype(float))), r.fitted,
                               rtol=1e-12)
    with pytest.raises(FormulaError, match="'s' holds text values in new data but number"):
        r.predict(df.assign(s=df["s"].astype(str)))


def test_colon_in_labels_does_not_collide(sleep):
    # levels ("x:y", "z") and ("x", "y:z") of a:b are both spelled "x:y:z"
    rng = np.random.default_rng(3)
    n = len(sleep)
    df = sleep.assign(a=rng.choice(["x:y", "x"], n), b=rng.choice(["z", "y:z"], n))
    effect = {("x:y", "z"): -40.0, ("x", "y:z"): 40.0, ("x", "z"): 10.0, ("x:y", "y:z"): -5.0}
    df["Reaction"] += [effect[k] for k in zip(df["a"], df["b"])]
    r = pmm.MixedModel("Reaction ~ Days + (1 | Subject) + (1 | a:b)", df).fit()
    assert sorted(r.spec.reterms[1].levels).count("x:y:z") == 2
    np.testing.assert_allclose(r.predict(df), r.fitted, rtol=1e-12)


# -- item 11: dates are refused with the way out ------------------------------------------------
def test_datetime_column_is_refused(sleep):
    df = sleep.assign(when=pd.Timestamp("2020-01-01") + pd.to_timedelta(sleep["Days"], "D"))
    with pytest.raises(FormulaError, match=r"'when' .* dates or times.*\.dt\.days"):
        pmm.MixedModel("Reaction ~ when + (1 | Subject)", df)


# -- item 12: lme4's orders ------------------------------------------------------------------------
def _order_data(sleep):
    i = np.arange(len(sleep))
    return sleep.assign(h=pd.Categorical(i % 18), w=pd.Categorical(i % 36),
                        d3=np.array(["a", "b", "c"])[sleep["Days"].to_numpy().astype(int) % 3], x=np.cos(i))


def test_tied_terms_follow_lme4(sleep):
    r = pmm.MixedModel("Reaction ~ Days + (1 | Subject) + (1 | h) + (1 | w)",
                       _order_data(sleep)).fit(REML=False)
    assert list(r.spec.theta_names) == ["w.(Intercept)", "h.(Intercept)",
                                        "Subject.(Intercept)"]
    assert r.objective == pytest.approx(1794.07861956289, rel=1e-8)


def test_fixed_columns_in_r_term_order(sleep):
    r = pmm.MixedModel("Reaction ~ Days * d3 + x + (1 | Subject)",
                       _order_data(sleep)).fit(REML=False)
    assert r.spec.xnames == ["(Intercept)", "Days", "d3b", "d3c", "x", "Days:d3b", "Days:d3c"]
    np.testing.assert_allclose(r.beta, [253.939937094485, 10.3841230220249, 0.522423414715852,
                                        -9.85036937470148, -1.30189054172476, -1.33892366276723,
                                        1.49664691441254], rtol=1e-5)
    assert r.objective == pytest.approx(1791.78794988341, rel=1e-9)
    np.testing.assert_allclose(r.predict(_order_data(sleep)), r.fitted, rtol=1e-12)


# -- item 15: one-line named errors -----------------------------------------------------------------
def test_duplicated_column_names(sleep):
    df = pd.concat([sleep, sleep[["Days"]]], axis=1)
    with pytest.raises(FormulaError, match="more than one column named 'Days'"):
        pmm.MixedModel("Reaction ~ Days + (1 | Subject)", df)


def test_mixed_type_grouping_column(sleep):
    g = np.array([i % 5 if i % 2 else f"s{i % 7}" for i in range(len(sleep))], dtype=object)
    with pytest.raises(FormulaError, match="grouping column 'g' mixes value types"):
        pmm.MixedModel("Reaction ~ Days + (1 | g)", sleep.assign(g=g))


def test_unknown_function(sleep):
    with pytest.raises(FormulaError, match="unknown function 'lgo'"):
        pmm.MixedModel("Reaction ~ lgo(Days + 1) + (1 | Subject)", sleep)


# -- item 2 and 15: the command line ------------------------------------------------------------
def _cli(capsys, *args):
    code = main(["fit", *args])
    err = capsys.readouterr().err
    return code, err


def test_cli_refuses_non_regular_files(capsys):
    code, err = _cli(capsys, "y ~ x + (1 | g)", "--data", "/dev/zero")
    assert code == 2 and "not a regular file" in err and err.count("\n") == 1


def test_cli_checks_out_folder_before_fitting(capsys, tmp_path):
    code, err = _cli(capsys, "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--out",
                     str(tmp_path / "nope" / "fit.nc"))
    assert code == 2 and "for --out does not exist" in err


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("y,,g\n1,2,a\n", "column 2 has no name"),
    ("y,x,x\n1,2,3\n", "'x' appears twice"),
    ("y,x,g\n", "has a header but no rows"),
])
def test_cli_bad_csv(capsys, tmp_path, text, message):
    path = tmp_path / "d.csv"
    path.write_text(text)
    code, err = _cli(capsys, "y ~ x + (1 | g)", "--data", str(path))
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_bad_formula(capsys):
    for formula in ("Yield ~ 1 + (1 | Batch", "Yield ~ 1", "Yield ~ nope + (1 | Batch)"):
        code, err = _cli(capsys, formula, "--data", "Dyestuff")
        assert code == 2 and err.startswith("pymc-mixed: error:") and err.count("\n") == 1


# -- transforms handed to formulae behave as in R (tests/reference/transforms_lme4.R) ----------
def test_scale_and_poly_as_in_r(sleep):
    a = pmm.MixedModel("Reaction ~ scale(Days) + (1 | Subject)", sleep).fit()
    assert a.spec.xnames == ["(Intercept)", "scale(Days)"]
    np.testing.assert_allclose(a.beta, [298.507891666667, 30.1488534213672], rtol=1e-9)
    assert a.objective == pytest.approx(1784.34930114952, rel=1e-9)
    np.testing.assert_allclose(a.predict(sleep.iloc[:7]), a.fitted[:7], rtol=1e-12)
    b = pmm.MixedModel("Reaction ~ poly(Days, 2) + (1 | Subject)", sleep).fit()
    assert b.spec.xnames == ["(Intercept)", "poly(Days, 2)1", "poly(Days, 2)2"]
    np.testing.assert_allclose(b.beta, [298.507891666667, 403.364167855218, 32.8557879762132],
                               rtol=1e-9)
    assert b.objective == pytest.approx(1769.33263393453, rel=1e-9)


def test_predict_newdata_missing_column_is_named(sleep):
    r = pmm.MixedModel("Reaction ~ Days + (1 | Subject)", sleep).fit()
    with pytest.raises(FormulaError, match="column 'Days' of .* not found in new data"):
        r.predict(sleep.drop(columns="Days"))
