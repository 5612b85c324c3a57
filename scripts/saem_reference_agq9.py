"""Reference numbers for tests/test_saem.py: this library's nAGQ = 9 fit (adaptive
Gauss-Hermite, 729 nodes per subject: the exact maximum likelihood to quadrature accuracy) of
Theoph with the dose in mg, one compartment, log ka/CL/V, diagonal Psi, additive error.

Run from the repository root: ``python scripts/saem_reference_agq9.py`` (about 30 s); it
prints the JSON kept in tests/reference/saem_theoph_agq9.json.
"""

import json

import pytensor.tensor as pt

import pymc_mixed as pmm


def onecpt(phi, dose, Time):
    ka, cl, v = pt.exp(phi["lka"]), pt.exp(phi["lCl"]), pt.exp(phi["lV"])
    k = cl / v
    return dose * ka / (v * (ka - k)) * (pt.exp(-k * Time) - pt.exp(-ka * Time))


th = pmm.datasets.load("Theoph")
th["dose"] = th.Dose * th.Wt
m = pmm.NonlinearMixedModel(onecpt, th, "conc", {"lka": "1", "lCl": "1", "lV": "1"},
                            "lka + lCl + lV ~ 1 | Subject", cov="diagonal",
                            start={"lka": 0.45, "lCl": 1.0, "lV": 3.45})
r = m.fit(nAGQ=9)
vc = r.varcorr.as_frame()
print(json.dumps({"source": "pymc_mixed fit(nAGQ=9), scripts/saem_reference_agq9.py",
                  "logLik": r.loglik, "beta": dict(r.fixef), "sigma": r.sigma,
                  "psi": {v: float(vc.loc[vc.var1 == v, "vcov"].item())
                          for v in ["lka", "lCl", "lV"]}}, indent=1))
