"""pmm.nlmefit: MATLAB's front end against nlme's fits of the same models and against the
Pythonic NonlinearMixedModel it translates to.

Reference numbers: tests/reference/nlme_extra.json (nlme 3.1-162, bench/make_nlme_refs.R).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import pymc_mixed as pmm

REF = json.loads((Path(__file__).parent / "reference" / "nlme_extra.json").read_text())

pytestmark = pytest.mark.xdist_group("nonlinear")


def biexp(PHI, t):
    """MATLAB's indomethacin model: phi1 exp(-phi2 t) + phi3 exp(-phi4 t)."""
    return PHI[:, 0] * np.exp(-PHI[:, 1] * t) + PHI[:, 2] * np.exp(-PHI[:, 3] * t)


def logistic(PHI, t):
    """MATLAB's orange-tree growth model."""
    return PHI[:, 0] / (1 + np.exp(-(t - PHI[:, 1]) / PHI[:, 2]))


@pytest.fixture(scope="module")
def indometh_fit():
    ind = pmm.datasets.load("Indometh")
    return pmm.nlmefit(ind["time"], ind["conc"], ind["Subject"], None, biexp,
                       [2.0, 0.5, 0.5, -1.0], ParamTransform=[0, 1, 0, 1],
                       REParamsSelect=[1, 2, 3])


def test_indomethacin_example_agrees_with_nlme(indometh_fit):
    """MATLAB's documented example (ParamTransform=[0 1 0 1]) with nlme's random part
    (pdDiag(A1 + lrc1 + A2 ~ 1)): the same model, fitted by Lindstrom-Bates both times."""
    ref = REF["indometh_nlme_ml"]
    beta, PSI, stats, b = indometh_fit
    np.testing.assert_allclose(beta, list(ref["fixef"].values()), rtol=2e-3)
    np.testing.assert_allclose(stats.sebeta, list(ref["se"].values()), rtol=1e-2)
    np.testing.assert_allclose(np.sqrt(np.diag(PSI)), list(ref["re_sd"].values()), rtol=1e-2)
    assert stats.errorparam[0] == pytest.approx(ref["sigma"], rel=1e-2)
    assert stats.logl == pytest.approx(ref["logLik"], abs=1e-2)
    # MATLAB's shapes: PSI r x r, b r x m; BIC counts groups
    assert PSI.shape == (3, 3) and b.shape == (3, 6)
    npar = 4 + 3 + 1
    assert stats.bic == pytest.approx(-2 * stats.logl + np.log(6) * npar)
    assert stats.dfe == 66 - npar
    assert np.allclose(PSI, np.diag(np.diag(PSI)))  # CovPattern defaults to diagonal


def test_same_fit_as_nonlinear_mixed_model(indometh_fit):
    """nlmefit is a translation: NonlinearMixedModel on the same model gives the same numbers."""
    import pytensor.tensor as pt

    def f(phi, time):
        return phi["A1"] * pt.exp(-pt.exp(phi["lrc1"]) * time) + \
            phi["A2"] * pt.exp(-pt.exp(phi["lrc2"]) * time)

    beta, PSI, stats, b = indometh_fit
    m = pmm.NonlinearMixedModel(f, pmm.datasets.load("Indometh"), response="conc",
                                fixed={k: "1" for k in ("A1", "lrc1", "A2", "lrc2")},
                                random="A1 + lrc1 + A2 ~ 1 | Subject", cov="diagonal",
                                start=dict(zip(("A1", "lrc1", "A2", "lrc2"), beta)))
    res = m.fit()
    np.testing.assert_allclose(res.fixef.to_numpy(), beta, rtol=1e-5)
    assert res.loglik == pytest.approx(stats.logl, abs=1e-5)
    np.testing.assert_allclose(stats.cwres, res.residuals("cwres"), atol=1e-4)


def test_orange_with_group_design_covariate():
    """A fixed effect through FEGroupDesign (a per-tree covariate on Asym) and
    REParamsSelect: the covariate's coefficient is estimated, the others match a fit
    without it when the covariate is constant within the design's meaning."""
    orange = pmm.datasets.load("Orange")
    trees = np.unique(orange["Tree"])
    w = np.linspace(-1, 1, trees.size)
    # phi1 = beta1 + beta4 * w_i, phi2 = beta2, phi3 = beta3
    G = np.zeros((3, 4, trees.size))
    G[0, 0] = 1
    G[1, 1] = 1
    G[2, 2] = 1
    G[0, 3] = w
    beta, PSI, stats, b = pmm.nlmefit(orange["age"], orange["circumference"], orange["Tree"],
                                      None, logistic, [190, 720, 340, 0],
                                      FEGroupDesign=G, REParamsSelect=[1])
    ref = REF["orange_nlme_ml"]
    assert beta.shape == (4,) and PSI.shape == (1, 1) and b.shape == (1, trees.size)
    # the covariate absorbs between-tree variation of Asym: the random SD shrinks
    assert np.sqrt(PSI[0, 0]) < ref["re_sd"]["Asym"] if isinstance(ref["re_sd"], dict) \
        else np.sqrt(PSI[0, 0]) < ref["re_sd"][0]
    assert stats.logl >= ref["logLik"] - 1e-6  # a larger model cannot fit worse


def test_orange_matches_nlme_tight():
    orange = pmm.datasets.load("Orange")
    ref = REF["orange_nlme_ml_tight"]
    beta, PSI, stats, b = pmm.nlmefit(orange["age"], orange["circumference"], orange["Tree"],
                                      None, logistic, [190, 720, 340], REParamsSelect=1)
    np.testing.assert_allclose(beta, list(ref["fixef"].values()), rtol=1e-4)
    assert stats.logl == pytest.approx(ref["logLik"], abs=1e-4)


def test_output_function_stops_the_fit():
    orange = pmm.datasets.load("Orange")
    seen = []

    def outfun(beta, status, state):
        seen.append((state, status["iteration"]))
        return len(seen) >= 2

    *_, stats, _ = pmm.nlmefit(orange["age"], orange["circumference"], orange["Tree"], None,
                               logistic, [190, 720, 340], REParamsSelect=[1],
                               Options={"OutputFcn": outfun})
    assert len(seen) == 2 and all(s == "iter" for s, _ in seen)
    assert stats.result.stopped


@pytest.mark.parametrize("options, message", [
    ({"Tolerance": 1}, "unknown option 'Tolerance'"),
    ({"ParamTransform": [0, 5, 0]}, "ParamTransform codes"),
    ({"FEConstDesign": np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]])}, "feeds 2"),
    ({"CovPattern": np.ones((2, 2))}, "CovPattern must be 3 x 3"),
    ({"ApproximationType": "MCMC"}, "ApproximationType"),
])
def test_bad_options_are_named(options, message):
    orange = pmm.datasets.load("Orange")
    beta0 = [190, 720, 340, 0] if "FEConstDesign" in options else [190, 720, 340]
    with pytest.raises((ValueError, TypeError, NotImplementedError), match=message):
        pmm.nlmefit(orange["age"], orange["circumference"], orange["Tree"], None, logistic,
                    beta0, **options)


def pk_model(PHI, X):
    """One compartment, first-order absorption; X = [time, dose in mg]."""
    t, dose = X[:, 0], X[:, 1]
    ka, v, cl = PHI[:, 0], PHI[:, 1], PHI[:, 2]
    k = cl / v
    return dose * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))


def test_nlmefitsa_theoph_agrees_with_foce_and_is_reproducible():
    """nlmefitsa on Theoph (dose in mg, log-transformed ka, V, CL): fixed effects within 2 % of
    nlmer's Laplace fit of the same model (tests/reference/nlme_extra.json,
    theoph_mg_nlmer_laplace), and the same seed gives the same numbers."""
    th = pmm.datasets.load("Theoph")
    X = np.column_stack([th["Time"], th["Dose"] * th["Wt"]])
    args = (X, th["conc"], th["Subject"], None, pk_model, [0.5, 3.5, 1.0])
    kw = dict(ParamTransform=[1, 1, 1], NChains=30, LogLikMethod="none")
    beta, PSI, stats, b = pmm.nlmefitsa(*args, seed=3, **kw)
    ref = REF["theoph_mg_nlmer_laplace"]["fixef"]
    np.testing.assert_allclose(beta, [ref["lka"], ref["lv"], ref["lcl"]], rtol=2e-2)
    assert PSI.shape == (3, 3) and b.shape == (3, 12) and stats.sebeta.shape == (3,)
    beta2, *_ = pmm.nlmefitsa(*args, seed=3, **kw)
    np.testing.assert_array_equal(beta, beta2)
