"""Simulated one-compartment pharmacokinetic data for the nonlinear-model benchmarks.

The model is Theoph's (first-order absorption and elimination, oral dose in mg), with the
population values of nlmixr2's published SAEM fit of ``theo_sd``::

    conc_ij = D_i ka_i / (V_i (ka_i - k_i)) (exp(-k_i t_ij) - exp(-ka_i t_ij)) + e_ij
    log ka_i = 0.45 + b1,  log V_i = 3.45 + b2,  log Cl_i = 1.0 + b3,   k_i = Cl_i / V_i
    b ~ N(0, diag(0.64^2, 0.13^2, 0.27^2)),  e ~ N(0, 0.7^2)

Each subject gets Theoph's ten sampling times (with a little jitter) and a dose drawn around
Theoph's 320 mg. The same seed gives the same data on every machine (NumPy's PCG64).

Usage: ``python bench/simulate_pk.py N_SUBJECTS OUT.csv [SEED]`` writes columns
``Subject, Time, conc, Dose`` (the layout bench/nlme_fit.R reads).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

TRUE = {"lka": 0.45, "lV": 3.45, "lCl": 1.0}
OMEGA_SD = {"lka": 0.64, "lV": 0.13, "lCl": 0.27}
SIGMA = 0.7
TIMES = np.array([0.25, 0.5, 1.0, 2.0, 3.5, 5.0, 7.0, 9.0, 12.0, 24.0])


def one_compartment(dose, time, lka, lV, lCl):
    """Concentration after an oral dose (NumPy; the same formula as the library's examples)."""
    ka, v, cl = np.exp(lka), np.exp(lV), np.exp(lCl)
    k = cl / v
    return dose * ka / (v * (ka - k)) * (np.exp(-k * time) - np.exp(-ka * time))


def simulate(n_subjects: int, seed: int = 1) -> pd.DataFrame:
    """A data frame of ``n_subjects`` simulated subjects (see the module docstring)."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    b = rng.standard_normal((n_subjects, 3)) * np.array([OMEGA_SD[k] for k in names])
    phi = np.array([TRUE[k] for k in names]) + b
    dose = np.round(rng.uniform(250.0, 390.0, n_subjects), 1)
    t = TIMES[None, :] * np.exp(rng.normal(0.0, 0.05, (n_subjects, TIMES.size)))
    t[:, 0] = np.minimum(t[:, 0], 0.3)
    mean = one_compartment(dose[:, None], t, phi[:, [0]], phi[:, [1]], phi[:, [2]])
    conc = mean + SIGMA * rng.standard_normal(mean.shape)
    return pd.DataFrame({
        "Subject": np.repeat(np.arange(1, n_subjects + 1), TIMES.size),
        "Time": np.round(t.ravel(), 4),
        "conc": np.round(conc.ravel(), 4),
        "Dose": np.repeat(dose, TIMES.size),
    })


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    n, out = int(argv[0]), argv[1]
    seed = int(argv[2]) if len(argv) > 2 else 1
    simulate(n, seed).to_csv(out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
