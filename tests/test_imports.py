"""Import time is part of the user's wait: the ML path must not load PyMC, ArviZ, PyTensor or
formulae (for a formula without interactions or function calls)."""

import subprocess
import sys

CODE = """
import sys
import pymc_mixed as pmm
df = pmm.datasets.load("sleepstudy")
pmm.MixedModel("Reaction ~ 1 + Days + (1 + Days | Subject)", df).fit(REML=False)
heavy = [m for m in ("pymc", "arviz", "pytensor", "formulae", "xarray", "matplotlib")
         if m in sys.modules]
print(",".join(heavy))
"""


def test_ml_fit_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
