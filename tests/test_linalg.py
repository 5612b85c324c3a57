"""The blocked Cholesky kernel against a brute-force dense computation of the same objective."""

import numpy as np
import pytest
import scipy.linalg as sl

import pymc_mixed as pmm
from pymc_mixed.fit.pls import LMMObjective
from pymc_mixed.formula import build_spec


def dense_ZLambda(spec, theta):
    """``Z Lambda_theta`` as a dense matrix, term by term."""
    Zs, Ls = [], []
    for t, T in zip(spec.reterms, spec.Ts(theta)):
        Zk = np.zeros((spec.n, t.q))
        for a in range(t.p):
            Zk[np.arange(spec.n), t.refs * t.p + a] = t.z[:, a]
        Zs.append(Zk)
        Ls.append(np.kron(np.eye(t.nlevels), T))
    return np.hstack(Zs) @ sl.block_diag(*Ls)


def dense_objective(spec, theta, REML):
    """Profiled deviance / REML criterion from V = Z Lambda Lambda' Z' + I, all dense."""
    n = spec.n
    ZL = dense_ZLambda(spec, theta)
    V = ZL @ ZL.T + np.eye(n)
    Vi = np.linalg.inv(V)
    X, y = spec.X, spec.y
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    r2 = r @ Vi @ r
    ld = np.linalg.slogdet(V)[1]
    if REML:
        p = X.shape[1]
        return ld + np.linalg.slogdet(XtViX)[1] + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))
    return ld + n * (1 + np.log(2 * np.pi * r2 / n))


CASES = [
    ("Reaction ~ 1 + Days + (1 + Days | Subject)", "sleepstudy"),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
    ("score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", "Machines"),
    # vector-valued terms in the dense block, several terms on one factor
    ("distance ~ age + (1 + age | Sex) + (1 + age | Subject)", "Orthodont"),
    ("distance ~ age + (1 + age | Sex) + (1 + age || Subject) + (1 | Subject)", "Orthodont"),
]


@pytest.mark.parametrize("formula,dataset", CASES)
@pytest.mark.parametrize("REML", [False, True])
def test_kernel_matches_dense(formula, dataset, REML):
    spec = build_spec(formula, pmm.datasets.load(dataset))
    rng = np.random.default_rng(42)
    obj = LMMObjective(spec, REML)
    for _ in range(3):
        theta = spec.theta_init * rng.uniform(0.2, 2.0, spec.ntheta)
        theta += rng.uniform(-0.3, 0.3, spec.ntheta) * (spec.theta_lower != 0)
        assert obj(theta) == pytest.approx(dense_objective(spec, theta, REML), rel=1e-10)


def test_solution_and_condvar_match_dense():
    spec = build_spec("distance ~ age + (1 + age | Sex) + (1 | Subject)",
                      pmm.datasets.load("Orthodont"))
    theta = np.array([0.8, 0.6, -0.1, 0.3])
    obj = LMMObjective(spec, False)
    obj(theta)
    u, beta = obj.solve()  # beta for X as given (the kernel works in a basis of X)
    # dense penalized least squares for (u, beta)
    ZL = dense_ZLambda(spec, theta)
    q = ZL.shape[1]
    A = np.block([[ZL.T @ ZL + np.eye(q), ZL.T @ spec.X], [spec.X.T @ ZL, spec.X.T @ spec.X]])
    sol = np.linalg.solve(A, np.concatenate([ZL.T @ spec.y, spec.X.T @ spec.y]))
    np.testing.assert_allclose(u, sol[:q], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(beta, sol[q:], rtol=1e-10)
    # conditional covariance blocks of u: diagonal blocks of (Lambda'Z'Z Lambda + I)^{-1}
    Cinv = np.linalg.inv(ZL.T @ ZL + np.eye(q))
    blocks = obj.system.condvar_u()
    start = 0
    for t, blk in zip(spec.reterms, blocks):
        for j in range(t.nlevels):
            sl_ = slice(start + j * t.p, start + (j + 1) * t.p)
            np.testing.assert_allclose(blk[j], Cinv[sl_, sl_], rtol=1e-8, atol=1e-12)
        start += t.q
