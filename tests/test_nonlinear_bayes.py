"""NUTS for nonlinear mixed models (issue 8, Bayes part; must-show 5): Theoph's one-compartment
model with the default priors and sampler settings converges without divergences and agrees
with FOCE; the posterior lines up with the ML DataTree by name; the error models' likelihoods
equal the ML kernel's; priors are documented, shown and checked."""

import numpy as np
import pytest
import pytensor
import pytensor.tensor as pt

import pymc_mixed as pmm

pytestmark = [pytest.mark.xdist_group("mcmc"), pytest.mark.filterwarnings("ignore")]

START = {"lka": 0.5, "lV": 3.5, "lCl": 1.0}


def one_compartment(phi, Time, dose_mg):
    ka, v, cl = pt.exp(phi["lka"]), pt.exp(phi["lV"]), pt.exp(phi["lCl"])
    k = cl / v
    return dose_mg * ka / (v * (ka - k)) * (pt.exp(-k * Time) - pt.exp(-ka * Time))


def _theoph(error_model="constant", positive=False):
    th = pmm.datasets.load("Theoph")
    th["dose_mg"] = th["Dose"] * th["Wt"]
    if positive:  # proportional / exponential errors need f > 0 and y > 0
        th = th[(th["Time"] > 0) & (th["conc"] > 0)]
    return pmm.NonlinearMixedModel(one_compartment, th, response="conc",
                                   fixed={"lka": "1", "lV": "1", "lCl": "1"},
                                   random="lka + lV + lCl ~ 1 | Subject", cov="diagonal",
                                   start=START, error_model=error_model)


@pytest.fixture(scope="session")
def theoph_nuts():
    m = _theoph()
    res = m.fit(method="FOCE")
    post = m.sample(seed=1, progressbar=False)  # defaults: 4 chains x 1000 after 1000 tune
    return m, res, post


def test_theoph_nuts_defaults_converge(theoph_nuts):
    import arviz as az

    _, _, post = theoph_nuts
    assert int(post["sample_stats"]["diverging"].sum()) == 0
    ds = post["posterior"].to_dataset()
    rhat, ess = az.rhat(ds), az.ess(ds, method="bulk")
    worst_rhat = max(float(rhat[v].max()) for v in ds.data_vars)
    worst_ess = min(float(ess[v].min()) for v in ds.data_vars)
    assert worst_rhat <= 1.01, worst_rhat
    assert worst_ess >= 400, worst_ess


def test_theoph_fixed_effects_within_one_posterior_sd_of_foce(theoph_nuts):
    _, res, post = theoph_nuts
    beta = post["posterior"]["beta"]
    mean = beta.mean(("chain", "draw")).values
    sd = beta.std(("chain", "draw")).values
    assert list(beta["coef"].values) == ["lka", "lV", "lCl"]
    assert np.all(np.abs(mean - res.beta) <= sd), (mean, res.beta, sd)


def test_posterior_lines_up_with_ml_tree(theoph_nuts):
    _, res, post = theoph_nuts
    mle = res.to_datatree()["mle"].to_dataset()
    p = post["posterior"].to_dataset()
    assert {"posterior", "latent_posterior", "sample_stats", "log_likelihood",
            "observed_data", "constant_data"} <= set(post.children)
    for v in ("beta", "theta", "sigma", "sd_Subject", "b_Subject"):
        assert p[v].dims[2:] == mle[v].dims, v
        for d in mle[v].dims:
            assert list(p[d].values) == list(mle[d].values), (v, d)
    # the random effects agree in sign and size with FOCE's conditional modes
    b_mean = p["b_Subject"].mean(("chain", "draw")).values
    assert np.corrcoef(b_mean.ravel(), mle["b_Subject"].values.ravel())[0, 1] > 0.95
    table = pmm.compare({"FOCE": res.to_datatree(), "NUTS": post})
    for name in ("beta[lka]", "sigma", "sd_Subject[lCl]", "theta[Subject.lV]"):
        assert np.isfinite(table.loc[name, ("FOCE", "estimate")]), name
        assert np.isfinite(table.loc[name, ("NUTS", "se")]), name


@pytest.mark.parametrize("error_model", ["constant", "proportional", "combined", "exponential"])
def test_error_model_likelihood_equals_ml_kernel(error_model):
    """The PyMC model's pointwise log-likelihood at a parameter point equals the ML kernel's
    ``obs_loglik`` (nlmefit's error models, the exponential one on the scale of y)."""
    from pymc_mixed.nonlinear.kernel import obs_loglik

    m = _theoph(error_model, positive=True)
    model = m.pymc_model
    spec = m.spec
    rng = np.random.default_rng(3)
    beta = np.array([0.4, 3.4, 1.1])
    b = rng.normal(scale=0.2, size=(12, 3))
    point = {"beta": beta, "sigma": 0.3, "sd_Subject": np.array([0.5, 0.2, 0.3]),
             "u_Subject": (b / [0.5, 0.2, 0.3]).T}
    r = np.zeros(0)
    if error_model == "combined":
        point["sigma_prop"] = 0.05
        r = np.array([0.05 / 0.3])
    _, ll = model.pmm_pointwise_loglik  # in terms of the free random variables, as sample.py
    fn = pytensor.function(model.free_RVs, ll, on_unused_input="ignore")
    got = fn(*[np.asarray(point[rv.name], dtype=rv.dtype) for rv in model.free_RVs])
    levels = [str(v) for v in spec.reterms[0].levels]
    assert levels == list(model.coords["Subject"])
    f = m.kernel.f(spec.phi(beta, [b[:, [j]] for j in range(3)]))
    want = obs_loglik(spec.error_model, spec.y, f, 0.3, r)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_default_priors_follow_start_values_and_show_in_repr():
    m = _theoph()
    pri = m.priors
    np.testing.assert_allclose(pri["beta"].params["mu"], [0.5, 3.5, 1.0])
    np.testing.assert_allclose(pri["beta"].params["sigma"], [2.5, 8.75, 2.5])
    np.testing.assert_allclose(pri["sd_Subject"].params["sigma"], [1.0, 3.5, 1.0])
    sd_y = float(np.std(m.spec.y, ddof=1))
    np.testing.assert_allclose(pri["sigma"].params["lam"], 1.0 / sd_y)
    assert "priors: beta=Normal(mu=[0.5, 3.5, 1]" in repr(m)
    assert "sigma_prop" in _theoph("combined", positive=True).priors


def test_priors_are_checked_and_used():
    from pymc_mixed.bayes import Prior

    m = _theoph()
    with pytest.raises(KeyError, match="lka_typo"):
        m.priors = {"beta[lka_typo]": Prior("Normal", mu=0, sigma=1)}
    with pytest.raises(ValueError, match="2 values where the parameter has 3"):
        m.priors = {"sd_Subject": Prior("HalfNormal", sigma=[1.0, 2.0])}
    with pytest.raises(ValueError, match="positive reals"):
        m.priors = {"sigma": Prior("Normal", mu=0, sigma=1)}
    m.priors = {"beta[lka]": Prior("Normal", mu=0.3, sigma=0.1)}
    model = m.pymc_model
    import pymc as pm

    draws = pm.draw(model["beta"], draws=4000, random_seed=1)  # the prior the model uses
    assert abs(draws[:, 0].mean() - 0.3) < 0.01 and abs(draws[:, 0].std() - 0.1) < 0.01
    assert abs(draws[:, 1].std() - 8.75) < 0.5  # the others keep their defaults
    assert m.priors["beta[lka]"].params["mu"] == 0.3


def test_compare_and_plot_compare_take_the_nonlinear_result(theoph_nuts):
    """pmm.compare / plot_compare line up FOCE and NUTS by name; the nonlinear result gives
    Wald intervals for its fixed effects (it hands over no deviance to approximate)."""
    import matplotlib

    matplotlib.use("Agg")
    _, res, post = theoph_nuts
    table = pmm.compare({"FOCE": res, "NUTS": post})
    assert {"beta[lka]", "sigma", "sd_Subject[lka]"} <= set(table.index)
    assert np.isfinite(table.loc["beta[lka]"].to_numpy(dtype=float)).all()
    pc = pmm.plot_compare({"FOCE": res, "NUTS": post})
    assert pc is not None
