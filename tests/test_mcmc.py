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
    R = p["corr_Subject"].isel(d).values
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
    u = p["u_Subject"].isel(d).values  # (coef, levels), spherical
    np.testing.assert_allclose(b, u.T @ (np.diag(sd) @ np.linalg.cholesky(R)).T, rtol=1e-10)


def test_loo_runs(sleep):
    import arviz as az

    _, _, post = sleep
    loo = az.loo(post)
    assert np.isfinite(loo.elpd)


def test_penicillin_crossed():
    # 6 well-informed levels of `sample`: the fixed intercept and their effects are strongly
    # correlated a posteriori; a higher target acceptance and 2000 draws per chain mix
    # without divergences (R-hat <= 1.005 over 8 seeds; the defaults give 0-7 divergences).
    m = pmm.MixedModel(PENICILLIN, pmm.datasets.load("Penicillin"))
    post = m.sample(draws=2000, seed=2, progressbar=False, target_accept=0.95)
    assert int(post["sample_stats"]["diverging"].sum()) == 0
    rhat, ess = _diagnostics(post)
    assert max(rhat.values()) <= 1.01, rhat
    assert {"sd_plate", "sd_sample", "b_plate", "b_sample"} <= set(post["posterior"].data_vars)


def test_cbpp_binomial():
    m = pmm.MixedModel(CBPP, pmm.datasets.load("cbpp"), family="binomial")
    ml = m.fit()
    post = m.sample(seed=3, progressbar=False, posterior_predictive=True)
    assert int(post["sample_stats"]["diverging"].sum()) == 0
    rhat, ess = _diagnostics(post)
    assert max(rhat.values()) <= 1.01, rhat
    p = post["posterior"]
    mean = p["beta"].mean(("chain", "draw")).values
    sd = p["beta"].std(("chain", "draw")).values
    assert np.all(np.abs(mean - ml.beta) <= sd)
    assert "sigma" not in p and "theta" in p
    np.testing.assert_allclose(p["theta"].values[..., 0], p["sd_herd"].values[..., 0])
    yrep = post["posterior_predictive"]["y"]
    assert yrep.shape == (4, 1000, m.spec.n)
    assert np.all((yrep.values >= 0) & (yrep.values <= 1))


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
    assert {"beta", "sigma", "sd_Subject", "cpc_Subject", "u_Subject"} == names
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
    assert {v.name for v in model.free_RVs} == {"beta", "sigma", "sd_Subject", "u_Subject"}
    assert "corr_Subject" not in model.named_vars
    assert model.named_vars_to_dims["b_Subject"] == ("Subject", "Subject_coef")


def test_pymc_sampler_path():
    m = pmm.MixedModel(PENICILLIN, pmm.datasets.load("Penicillin"))
    post = m.sample(draws=150, tune=150, chains=2, seed=4, sampler="pymc", progressbar=False,
                    cores=1)
    assert post.attrs["sampler"] == "pymc"
    assert post["posterior"]["beta"].shape == (2, 150, 1)
    assert post["log_likelihood"]["diameter"].shape == (2, 150, m.spec.n)
    with pytest.raises(ValueError, match="sampler"):
        m.sample(sampler="stan")
