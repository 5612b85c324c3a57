"""The command line fits bundled data and CSV files and saves the DataTree."""

import numpy as np
import xarray as xr

import pymc_mixed as pmm
from pymc_mixed.cli import main


def test_cli_fits_bundled_data_and_saves_netcdf(tmp_path, capsys):
    out = tmp_path / "fit.nc"
    assert main(["fit", "Reaction ~ 1 + Days + (1 + Days | Subject)", "--data", "sleepstudy",
                 "--ml", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Linear mixed model fit by maximum likelihood" in text and "251.4051" in text
    tree = xr.open_datatree(out)
    np.testing.assert_allclose(tree["mle"]["beta"].values, [251.405104848486, 10.4672859595958],
                               rtol=1e-6)
    assert float(tree["fit_stats"]["objective"]) == pytest_approx(1751.93934448899)


def test_cli_reads_csv(tmp_path, capsys):
    path = tmp_path / "dye.csv"
    pmm.datasets.load("Dyestuff").to_csv(path, index=False)
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path)]) == 0
    assert "REML" in capsys.readouterr().out


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-8)
