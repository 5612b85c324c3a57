"""Nonlinear models through the package's seams: the registry, the DataTree layout, error
models that FOCE fits from a start LME cannot give, and the proportional model's clear
failure where the mean is zero."""

import numpy as np
import pytensor.tensor as pt
import pytest

import pymc_mixed as pmm
from pymc_mixed.fit import estimator

pytestmark = pytest.mark.xdist_group("nonlinear")


def one_compartment(phi, Time, dose_mg):
    ka, v, cl = pt.exp(phi["lka"]), pt.exp(phi["lV"]), pt.exp(phi["lCl"])
    k = cl / v
    return dose_mg * ka / (v * (ka - k)) * (pt.exp(-k * Time) - pt.exp(-ka * Time))


def theoph_model(**kw):
    th = pmm.datasets.load("Theoph")
    th["dose_mg"] = th["Dose"] * th["Wt"]
    return pmm.NonlinearMixedModel(one_compartment, th, response="conc",
                                   fixed={"lka": "1", "lV": "1", "lCl": "1"},
                                   random="lka + lV + lCl ~ 1 | Subject", cov="diagonal",
                                   start={"lka": 0.5, "lV": 3.5, "lCl": 1.0}, **kw)


def test_methods_come_from_the_registry():
    m = theoph_model()
    assert m.spec.kind == "nlmm"
    with pytest.raises(ValueError, match="method must be one of"):
        m.fit(method="saemx")
    res = estimator("nlmm", "laplace")(m.spec, kernel=m.kernel)
    assert res.method == "FOCE"


def test_combined_error_model_by_foce():
    """Combined error (a + b|f|) on Theoph (f = 0 at time 0): FOCE starts from a constant-error
    LME and fits both error parameters; it beats the constant model by AIC."""
    res = theoph_model(error_model="combined").fit(method="FOCE")
    const = theoph_model().fit(method="FOCE")
    assert set(res.error_params) == {"a", "b"} and res.error_params["b"] > 0
    assert res.aic < const.aic - 5


def test_proportional_error_with_zero_mean_is_refused():
    with pytest.raises(pmm.nonlinear.ModelFunctionError, match="proportional error model needs f != 0"):
        theoph_model(error_model="proportional")


def test_datatree_has_the_ml_layout():
    tree = theoph_model().fit().to_datatree()
    assert {"mle", "fit_stats", "observed_data", "constant_data"} <= set(tree.children)
    assert list(tree["mle"]["beta"].coords["coef"].values) == ["lka", "lV", "lCl"]
    assert tree.attrs["formula"] == "conc ~ one_compartment(lka, lV, lCl)"
