"""NUTS through the model graph (issue 4): convergence on sleepstudy, penicillin and cbpp,
the posterior DataTree lined up with the ML DataTree, priors, and the PyMC sampler path.

The sampling tests share one xdist group (one worker, one warm compile cache) and sample each
model once."""

import numpy as np
import pytest

import pymc_mixed as pmm

pytestmark = [pytest.mark.xdist_group("mcmc"), pytest.mark.filterwarnings("ignore")]

SLEEP = "Reaction ~ 1 + Days + (1 + Days | Subject)"
PENICILLIN = "diameter ~ 1 + (1 | plate) + (1 | sample)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _params(post):
    """Every sampled or derived scalar, without the constant diagonal of correlations."""
    ds = post["posterior"].to_dataset()
    out = {}
    for v, da in ds.data_vars.items():
        vals = da.values.reshape(da.shape[:2] + (-1,))
        for k in range(vals.shape[2]):
            x = vals[:, :, k]
            if np.ptp(x) == 0:  # corr diagonal
                continue
            out[f"{v}[{k}]"] = x
    return out


def _diagnostics(post):
    import arviz as az

    ds = post["posterior"].to_dataset()
    rhat = az.rhat(ds)
    ess = az.ess(ds, method="bulk")
    worst_rhat, worst_ess = {}, {}
    for v in ds.data_vars:
        r = np.asarray(rhat[v].values, dtype=float).ravel()
        e = np.asarray(ess[v].values, dtype=float).ravel()
        const = np.ptp(ds[v].values.reshape(ds[v].shape[:2] + (-1,)), axis=(0, 1)) == 0
        worst_rhat[v] = float(np.max(r[~const])) if (~const).any() else 1.0
        worst_ess[v] = float(np.min(e[~const])) if (~const).any() else np.inf
    return worst_rhat, worst_ess


@pytest.fixture(scope="session")  # session: xdist may interleave modules on a worker
def sleep():
    m = pmm.MixedModel(SLEEP, pmm.datasets.load("sleepstudy"))
    ml = m.fit(REML=False)
    post = m.sample(seed=1, progressbar=False)  # default settings: 4 x 1000 after 1000 tune
    return m, ml, post


def test_sleepstudy_default_converges(sleep):
    _, _, post = sleep
    assert int(post["sample_stats"]["diverging"].sum()) == 0
    rhat, ess = _diagnostics(post)
    assert max(rhat.values()) <= 1.01, rhat
    assert min(ess.values()) >= 400, ess


def test_sleepstudy_fixed_effects_agree_with_ml(sleep):
    _, ml, post = sleep
    beta = post["posterior"]["beta"]
    mean = beta.mean(("chain", "draw")).values
    sd = beta.std(("chain", "draw")).values
    assert np.all(np.abs(mean - ml.beta) <= sd), (mean, ml.beta, sd)


def test_posterior_tree_lines_up_with_ml_tree(sleep):
    m, ml, post = sleep
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data",
            "constant_data"} <= set(post.children)
    mle = ml.to_datatree()["mle"].to_dataset()
    p = post["posterior"].to_dataset()
    for v in mle.data_vars:
        if v in ("vcov_beta", "se_beta"):
            continue
        assert v in p, v
        assert p[v].dims[2:] == mle[v].dims, v
        for d in mle[v].dims:
            assert list(map(str, p[d].values)) == list(map(str, mle[d].values)), (v, d)
    ll = post["log_likelihood"]["Reaction"]
    assert ll.dims == ("chain", "draw", "obs") and ll.shape[2] == m.spec.n
    assert post["observed_data"]["Reaction"].shape == (m.spec.n,)
    assert post.attrs["sampler"] == "nutpie"


def test_theta_b_and_loglik_follow_the_draws(sleep):
    from scipy.stats import norm

    m, _, post = sleep
    p = post["posterior"]
    d = dict(chain=1, draw=17)
    sd = p["sd_Subject"].isel(d).values
    r = float(p["corr_Subject"].isel(d).values[0])
    assert list(p["corr_Subject"].coords["Subject_corr"].values) == ["Days,(Intercept)"]
    R = np.array([[1.0, r], [r, 1.0]])
    sigma = float(p["sigma"].isel(d))
    L = np.linalg.cholesky(np.outer(sd, sd) * R) / sigma
    np.testing.assert_allclose(p["theta"].isel(d).values, [L[0, 0], L[1, 0], L[1, 1]],
                               rtol=1e-10)
    b = p["b_Subject"].isel(d).values
    t = m.spec.reterms[0]
    eta = m.spec.X @ p["beta"].isel(d).values + np.einsum("ij,ij->i", t.z, b[t.refs])
    ll = norm.logpdf(m.spec.y, eta, sigma)
    np.testing.assert_allclose(post["log_likelihood"]["Reaction"].isel(d).values, ll,
                               rtol=1e-10)


def test_loglik_equals_pymc_compute_log_likelihood(sleep):
    import pymc as pm

    from pymc_mixed.bayes import full_trace

    m, _, post = sleep
    few = full_trace(post).isel(chain=[0, 3], draw=slice(0, 5))
    ll = pm.compute_log_likelihood(xr_tree(few), model=m.pymc_model, extend_inferencedata=False,
                                   progressbar=False)
    np.testing.assert_allclose(ll["Reaction"].values,
                               post["log_likelihood"]["Reaction"].isel(chain=[0, 3],
                                                                      draw=slice(0, 5)).values,
                               rtol=1e-9)


def xr_tree(ds):
    import xarray as xr

    return xr.DataTree.from_dict({"posterior": ds})


def test_summary_lists_only_interpretable_parameters(sleep):
    import arviz as az

    _, _, post = sleep
    tab = az.summary(post)
    names = list(tab.index)
    assert not [n for n in names if n.startswith(("u_", "cpc_", "beta_c"))], names
    assert [n for n in names if n.startswith("corr_")] == ["corr_Subject[Days,(Intercept)]"]
    assert np.all(np.isfinite(tab["r_hat"].astype(float)))
    assert len(names) == 2 + 1 + 2 + 1 + 3 + 18 * 2
    assert "cpc_Subject" in post["latent_posterior"]


def test_pymc_predictive_and_graphviz_on_the_model(sleep):
    import pymc as pm

    from pymc_mixed.bayes import full_trace

    m, _, post = sleep
    model = m.pymc_model
    with model:
        prior = pm.sample_prior_predictive(draws=50, random_seed=1)
        pp = pm.sample_posterior_predictive(full_trace(post).isel(draw=slice(0, 100)),
                                            random_seed=1, progressbar=False)
    assert prior["prior_predictive"]["Reaction"].shape == (1, 50, m.spec.n)
    yrep = pp["posterior_predictive"]["Reaction"]
    assert yrep.shape == (4, 100, m.spec.n)
    # the replicated data follow the posterior's fitted values: residual SD near sigma
    mu = (yrep.mean(("chain", "draw")).values)
    assert np.corrcoef(mu, m.spec.y)[0, 1] > 0.85
    g = pm.model_to_graphviz(model)
    assert "Reaction" in g.source and "sd_Subject" in g.source
    tree = m.sample_prior_predictive(draws=20, seed=2)
    assert "cpc_Subject" not in tree["prior"] and "prior_predictive" in tree.children


def test_predict_held_out_subjects():
    df = pmm.datasets.load("sleepstudy")
    held = df["Subject"].astype(str).isin(["308", "309"])
    m = pmm.MixedModel(SLEEP, df[~held].reset_index(drop=True))
    post = m.sample(draws=300, tune=500, seed=1, progressbar=False)
    new = df[held].reset_index(drop=True)
    pred = m.predict(post, new, kind="mean", seed=1)["predictions"]["mu"]
    assert pred.shape == (4, 300, len(new))
    beta = post["posterior"]["beta"].values.reshape(-1, 2)
    sd = post["posterior"]["sd_Subject"].values.reshape(-1, 2)
    # unseen subjects: population mean, spread by the between-subject SD of each draw
    pop = beta @ m.spec.X_on(new).T
    np.testing.assert_allclose(pred.mean(("chain", "draw")).values, pop.mean(0),
                               atol=4 * np.sqrt(np.mean(sd[:, 0] ** 2) / 1200) + 3.0)
    assert float(pred.isel(obs=0).std()) > 0.8 * float(np.sqrt(np.mean(sd[:, 0] ** 2)))
    # a known subject: beta and its own posterior effect, draw by draw
    known = df[~held].iloc[:3].reset_index(drop=True)
    pk = m.predict(post, known)["predictions"]["mu"].values.reshape(-1, 3)
    b = post["posterior"]["b_Subject"].sel(Subject=str(known["Subject"].iloc[0]))
    want = beta @ m.spec.X_on(known).T + b.values.reshape(-1, 2) @ m.spec.X_on(known).T
    np.testing.assert_allclose(pk, want, rtol=1e-10)
    resp = m.predict(post, new, kind="response", seed=2)["predictions"]["Reaction"]
    assert float(resp.std()) > float(pred.std())


def test_loo_compare_two_models(sleep):
    import arviz as az

    _, _, post = sleep
    m0 = pmm.MixedModel("Reaction ~ 1 + Days + (1 | Subject)", pmm.datasets.load("sleepstudy"))
    post0 = m0.sample(draws=500, seed=1, progressbar=False)
    tab = az.compare({"slopes": post, "intercepts": post0})
    assert tab.index[0] == "slopes"  # lme4's anova prefers random slopes by far
    assert abs(float(tab.loc["intercepts", "elpd_diff"])) > 10

def test_loo_runs(sleep):
    import arviz as az

    _, _, post = sleep
    loo = az.loo(post)
    assert np.isfinite(loo.elpd)


MACHINES = "score ~ 1 + Machine + (1 | Worker) + (1 | Worker:Machine)"
GROUSE = "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"


@pytest.mark.parametrize("formula,data,family", [
    # Penicillin and Machines sit on the thresholds with seed=1: the same code gave R-hat 1.0115
    # (Penicillin) and 0 divergences (Machines) on a fresh clone with an empty compile cache,
    # R-hat 1.009 and 1 divergence here. Not strict until issue 10's defaults clear them.
    pytest.param(PENICILLIN, "Penicillin", "gaussian", marks=pytest.mark.xfail(
        strict=False, reason="issue 10 open: R-hat within 0.002 of 1.01 at seed=1")),
    pytest.param(MACHINES, "Machines", "gaussian", marks=pytest.mark.xfail(
        strict=False, reason="issue 10 open: 0 or 1 divergence at seed=1 depending on the "
                             "compile environment")),
    (CBPP, "cbpp", "binomial"),
    pytest.param(GROUSE, "grouseticks", "poisson", marks=pytest.mark.xfail(
        strict=True, reason="issue 10 open: ~145 divergences (sd_LOCATION) with defaults")),
], ids=["penicillin", "machines", "cbpp", "grouseticks"])
def test_bundled_examples_converge_with_defaults(formula, data, family):
    # issue 10: default settings, seed=1, no divergences, R-hat <= 1.01, bulk ESS >= 400
    m = pmm.MixedModel(formula, pmm.datasets.load(data), family=family)
    post = m.sample(seed=1, progressbar=False)
    assert int(post["sample_stats"]["diverging"].sum()) == 0
    rhat, ess = _diagnostics(post)
    assert max(rhat.values()) <= 1.01, rhat
    assert min(ess.values()) >= 400, ess


def test_cbpp_binomial():
    m = pmm.MixedModel(CBPP, pmm.datasets.load("cbpp"), family="binomial")
    ml = m.fit()
    post = m.sample(draws=500, seed=3, progressbar=False, posterior_predictive=True)
    p = post["posterior"]
    mean = p["beta"].mean(("chain", "draw")).values
    sd = p["beta"].std(("chain", "draw")).values
    assert np.all(np.abs(mean - ml.beta) <= sd)
    assert "sigma" not in p and "theta" in p
    np.testing.assert_allclose(p["theta"].values[..., 0], p["sd_herd"].values[..., 0])
    assert m.pymc_model[m.spec.response_name].owner.op.name == "binomial"
    yrep = post["posterior_predictive"][m.spec.response_name]  # successes, as pm.Binomial
    assert yrep.shape == (4, 500, m.spec.n)
    size = pmm.datasets.load("cbpp")["size"].to_numpy()
    assert np.all((yrep.values >= 0) & (yrep.values <= size))


def test_convergence_warnings_name_the_parameter():
    from pymc_mixed.errors import ConvergenceWarning

    m = pmm.MixedModel(PENICILLIN, pmm.datasets.load("Penicillin"))
    with pytest.warns(ConvergenceWarning, match=r"ESS \d+ < 400 \(") as rec:
        m.sample(draws=30, tune=30, chains=4, seed=1, progressbar=False)
    assert any("R-hat" in str(w.message) or "ESS" in str(w.message) for w in rec)


def test_default_priors_are_scale_aware():
    from pymc_mixed.bayes import Prior

    df = pmm.datasets.load("sleepstudy")
    df2 = df.assign(Reaction=df["Reaction"] / 1000.0)
    p1 = pmm.MixedModel(SLEEP, df).priors
    p2 = pmm.MixedModel(SLEEP.replace("Reaction", "Reaction"), df2).priors
    assert set(p1) == {"beta", "sigma", "sd_Subject", "corr_Subject"}
    assert p1["corr_Subject"] == Prior("LKJCorr", eta=2.0)
    for k in ("beta", "sd_Subject"):
        np.testing.assert_allclose(np.asarray(p2[k].params["sigma"]) * 1000,
                                   p1[k].params["sigma"])
    np.testing.assert_allclose(p2["sigma"].params["lam"] / 1000, p1["sigma"].params["lam"])


def test_priors_can_be_replaced():
    import pymc as pm

    from pymc_mixed.bayes import Prior

    m = pmm.MixedModel(SLEEP, pmm.datasets.load("sleepstudy"))
    model0 = m.pymc_model
    assert m.pymc_model is model0  # cached
    m.priors = {"sigma": pm.HalfNormal.dist(sigma=40.0),
                "sd_Subject": Prior("HalfNormal", sigma=[30.0, 10.0]),
                "beta": lambda name, dims: pm.Normal(name, 0.0, 1000.0, dims=dims)}
    model1 = m.pymc_model
    assert model1 is not model0
    names = {v.name for v in model1.free_RVs}
    assert {"beta", "sigma", "sd_Subject", "cpc_Subject", "b_Subject"} == names
    assert model1["sigma"].owner.op.name == "halfnormal"
    with pytest.raises(KeyError, match="sd_Days"):
        m.priors = {"sd_Days": Prior("HalfNormal", sigma=1.0)}
    # edits in place are seen too
    m.priors["corr_Subject"] = Prior("LKJCorr", eta=4.0)
    assert m.pymc_model is not model1


def test_uncorrelated_terms_on_one_factor_merge():
    m = pmm.MixedModel("Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)",
                       pmm.datasets.load("sleepstudy"))
    model = m.pymc_model
    assert {v.name for v in model.free_RVs} == {"beta_c", "sigma", "sd_Subject", "b_Subject"}
    nc = pmm.bayes.build_pymc_model(m.spec, centered={"Subject": False})
    assert {v.name for v in nc.free_RVs} == {"beta_c", "sigma", "sd_Subject", "u_Subject"}
    assert "corr_Subject" not in model.named_vars
    assert model.named_vars_to_dims["b_Subject"] == ("Subject", "Subject_coef")


def test_pymc_sampler_path():
    m = pmm.MixedModel(PENICILLIN, pmm.datasets.load("Penicillin"))
    post = m.sample(draws=150, tune=150, chains=2, seed=4, sampler="pymc", progressbar=False,
                    cores=1, check=False)
    assert post.attrs["sampler"] == "pymc"
    assert post["posterior"]["beta"].shape == (2, 150, 1)
    assert post["log_likelihood"]["diameter"].shape == (2, 150, m.spec.n)
    with pytest.raises(ValueError, match="sampler"):
        m.sample(sampler="stan")


def test_priors_checked_on_assignment_and_per_coefficient():
    from pymc_mixed.bayes import Prior

    with pytest.raises(ValueError, match="sigma must be positive"):
        Prior("HalfNormal", sigma=-1.0)
    with pytest.raises(ValueError, match="not a PyMC distribution"):
        Prior("Nromal", mu=0, sigma=1)
    m = pmm.MixedModel(SLEEP, pmm.datasets.load("sleepstudy"))
    with pytest.raises(ValueError, match="'sd_Subject'.*3 values.*has 2"):
        m.priors = {"sd_Subject": Prior("HalfNormal", sigma=[1.0, 2.0, 3.0])}
    with pytest.raises(ValueError, match="'sigma': Normal is not a distribution on the positive"):
        m.priors = {"sigma": Prior("Normal", mu=0, sigma=1)}
    m.priors = {"beta[Days]": Prior("Normal", mu=10.0, sigma=1.0)}
    beta = m.pymc_model["beta"]
    assert beta.owner.op.name == "normal"
    mu = beta.owner.inputs[2].eval()  # (rng, size, mu, sigma)
    assert mu[1] == 10.0 and mu[0] == pytest.approx(m.priors["beta"].params["mu"][0])
    assert "beta[Days]=Normal(mu=10, sigma=1)" in repr(m)
    m.priors = {"beta[Days]": Prior("StudentT", nu=3, mu=0, sigma=5)}
    assert {"beta_(Intercept)", "beta_Days"} <= {v.name for v in m.pymc_model.free_RVs}
