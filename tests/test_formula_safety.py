"""Formulas are data, not code (issue 7, item 1): a battery of injection strings runs nothing,
through the model, predict and the command line, and no file content reaches a message."""

import numpy as np
import pandas as pd
import pytest

import pymc_mixed as pmm
from pymc_mixed.cli import main
from pymc_mixed.formula import FormulaError

SECRET = "TOP-SECRET-7f3a9"


@pytest.fixture
def files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    return tmp_path / "SENTINEL", secret


def _payloads(sentinel, secret):
    touch = f"np.testing._private.utils.os.system('touch {sentinel}')"
    imp = f"__import__('os').system('touch {sentinel}')"
    read = f"open('{secret}').read()"
    return [
        f"{touch} + y ~ x + (1 | g)",
        f"y ~ x + {touch} + (1 | g)",
        f"y ~ x:{touch} + (1 | g)",
        f"y ~ x * {touch} + (1 | g)",
        f"y ~ x + ({touch} | g)",
        f"y ~ x + (1 + {touch} || g)",
        f"y ~ x + offset({touch}) + (1 | g)",
        f"{imp} + y ~ x + (1 | g)",
        f"y ~ x + {imp} + (1 | g)",
        f"y ~ x + I({imp}) + (1 | g)",
        f"y ~ x + log({imp}) + (1 | g)",
        f"{read} ~ x + (1 | g)",
        f"y ~ I({read}) + (1 | g)",
        f"y ~ C(x, {read}) + (1 | g)",
        f"y ~ x + np.loadtxt('{secret}') + (1 | g)",
        f"y ~ x + np.lib.npyio.loadtxt('{secret}') + (1 | g)",
        f"y ~ x + getattr(np, 'testing') + (1 | g)",
        f"(lambda: {imp})() ~ x + (1 | g)",
        f"y ~ x + (lambda: {imp})() + (1 | g)",
        f"f\"{{{imp}}}\" ~ x + (1 | g)",
        "y.__class__ ~ x + (1 | g)",
        "y ~ x + y.__class__.__mro__ + (1 | g)",
        "().__class__.__base__.__subclasses__() ~ x + (1 | g)",
        "[c for c in x] ~ x + (1 | g)",
        "y ~ x + sum(c for c in x) + (1 | g)",
        "y[0] ~ x + (1 | g)",
        "y ~ x + x[0] + (1 | g)",
        "y ~ exp(*x) + (1 | g)",
        "y ~ poly(x, **{'degree': 2}) + (1 | g)",
        f"y ~ poly(x, degree={imp}) + (1 | g)",
        "(z := y) ~ x + (1 | g)",
        "y ~ x + np.log.__globals__ + (1 | g)",
        "y ~ x + __builtins__ + (1 | g)",
        "y ~ x + eval('1') + (1 | g)",
        "y ~ x + exec('1') + (1 | g)",
        "y ~ x + 'text' + (1 | g)",
        "y if x else y ~ x + (1 | g)",
        "y ~ x + (1 | g) + (1 | np.testing._private.utils.os)",
    ]


def _data():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(8), 6)
    x = rng.normal(size=g.size)
    return pd.DataFrame({"y": 1 + x + rng.normal(size=8)[g] + rng.normal(size=g.size),
                         "x": x, "g": g.astype(str)})


def test_injections_run_nothing_and_leak_nothing(files):
    sentinel, secret = files
    data = _data()
    for formula in _payloads(sentinel, secret):
        with pytest.raises(FormulaError) as info:
            pmm.MixedModel(formula, data)
        assert not sentinel.exists(), formula
        assert SECRET not in str(info.value), formula


def test_refusal_names_the_token(files):
    sentinel, _ = files
    with pytest.raises(FormulaError, match="attribute access 'np.testing._private.utils.os"):
        pmm.MixedModel(f"np.testing._private.utils.os.system('touch {sentinel}') + y ~ x + (1|g)",
                       _data())
    with pytest.raises(FormulaError, match="unknown function '__import__'|the name '__import__'"):
        pmm.MixedModel("y ~ x + __import__('os') + (1 | g)", _data())
    with pytest.raises(FormulaError, match="the call .lambda: 1. is not allowed"):
        pmm.MixedModel("y ~ x + (lambda: 1)() + (1 | g)", _data())
    with pytest.raises(FormulaError, match="unknown function 'frobnicate'"):
        pmm.MixedModel("y ~ x + frobnicate(x) + (1 | g)", _data())


def test_injection_through_the_cli(files, tmp_path, capsys):
    sentinel, secret = files
    path = tmp_path / "d.csv"
    _data().to_csv(path, index=False)
    for formula in _payloads(sentinel, secret):
        assert main(["fit", formula, "--data", str(path)]) == 2, formula
        err = capsys.readouterr()
        assert not sentinel.exists(), formula
        assert SECRET not in err.out + err.err
        assert err.err.startswith("pymc-mixed: error:") and "Traceback" not in err.err


def test_whitelisted_spellings_still_work():
    data = _data().assign(z=lambda d: np.exp(d["x"]))
    a = pmm.MixedModel("y ~ log(z) + (1 | g)", data).fit()
    b = pmm.MixedModel("y ~ np.log(z) + (1 | g)", data).fit()
    c = pmm.MixedModel("y ~ x + (1 | g)", data).fit()
    assert a.objective == pytest.approx(c.objective, rel=1e-10)
    assert b.objective == pytest.approx(c.objective, rel=1e-10)
    # log(exp(x)) is x only to round-off; the REML criterion is flat to round-off over ~1e-7
    # in theta, so the two fits' random effects (and predictions) agree to ~1e-9, not 1e-10
    pc = c.predict(data)
    np.testing.assert_allclose(a.predict(data), pc, rtol=1e-8, atol=1e-8 * np.abs(pc).max())


def test_backticks_and_dotted_names():
    data = _data().rename(columns={"x": "my x"}).assign(**{"total.z": lambda d: d["my x"]})
    a = pmm.MixedModel("y ~ `my x` + (1 | g)", data).fit()
    b = pmm.MixedModel("y ~ I(total.z * 1) + (1 | g)", data).fit()
    assert a.objective == pytest.approx(b.objective, rel=1e-10)
    np.testing.assert_allclose(a.predict(data.iloc[:5]), a.fitted[:5], rtol=1e-10)


def test_formulae_environment_holds_only_whitelisted_names():
    from pymc_mixed.formula.expr import safe_namespace

    ns = safe_namespace()
    assert not hasattr(ns["np"], "testing") and not hasattr(ns["np"], "lib")
    assert set(ns) <= {"log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs", "sin",
                       "cos", "np", "numpy", "pmm_rscale"}
