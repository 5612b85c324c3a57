"""NUTS on sleepstudy: pymc_mixed's ``MixedModel.sample`` against bambi, side by side.

bambi has no correlated random-effect terms, so both fit the uncorrelated form
``Reaction ~ Days + (1|Subject) + (0 + Days|Subject)``; pymc_mixed's correlated model
``Reaction ~ 1 + Days + (1 + Days | Subject)`` is reported too. Same sampler, draws and chains.

Every run is a fresh Python process; imports (PyMC, ArviZ, nutpie, bambi: ~4 s here) are not
part of the timings. Each library gets
its own PyTensor compile cache: the first run in it is the "cold" run (empty cache, as on a
fresh machine or a CI runner), the following ``--reps`` runs are "warm" (what a user sees
from the second model on). Reported per run:

* ``build``  : building the model (our ``pymc_model``; bambi's ``Model(...).build()``)
* ``sample`` : wall time of ``m.sample(...)`` / ``bmb.Model.fit(...)``, compilation included
* ``compile``: ``sample`` minus the sampler's own sampling time (compilation and overheads)
* ``sampling``: the sampler's sampling time (nutpie/PyMC; warm-up + draws)
* ``minESS`` : minimum bulk ESS over fixed effects, sigma, group SDs and random effects
  (the parameters both models share; ours adds the correlation and theta, reported too)
* ``ESS/s``  : ``minESS / sampling``

Targets (issue 4): ``sample`` no more than bambi's, ``ESS/s`` at least bambi's.

    .venv/bin/python bench/bench_mcmc.py [--samplers nutpie,pymc] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

UNCORR = "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)"
CORR = "Reaction ~ 1 + Days + (1 + Days | Subject)"
BAMBI = "Reaction ~ Days + (1|Subject) + (0 + Days|Subject)"


def _min_ess(dataset, names):
    import arviz as az
    import numpy as np

    ess = az.ess(dataset[names], method="bulk")
    vals = []
    for v in ess.data_vars.values():
        a = np.asarray(v.values, dtype=float).ravel()
        vals.append(np.nanmin(a) if a.size else np.nan)
    return float(np.nanmin(vals))


def _max_rhat(dataset, names):
    import arviz as az
    import numpy as np

    r = az.rhat(dataset[names])
    return float(np.nanmax([np.nanmax(np.asarray(v.values, dtype=float))
                            for v in r.data_vars.values()]))


def worker(lib: str, sampler: str, draws: int, tune: int, chains: int, seed: int) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    # Imports are not timed, for either library: bambi imports PyMC and ArviZ when imported;
    # pymc_mixed imports them (and nutpie) on the first sample().
    import arviz  # noqa: F401
    import pymc  # noqa: F401

    import pymc_mixed as pmm

    if sampler == "nutpie":
        import nutpie  # noqa: F401

    df = pmm.datasets.load("sleepstudy")
    out = {"lib": lib, "sampler": sampler}
    if lib.startswith("ours"):
        m = pmm.MixedModel(CORR if lib == "ours-corr" else UNCORR, df)

        t0 = time.perf_counter()
        m.pymc_model
        t1 = time.perf_counter()
        post = m.sample(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                        progressbar=False)
        t2 = time.perf_counter()
        p = post["posterior"].to_dataset()
        sampling = float(post.attrs["sampling_seconds"])
        common = ["beta", "sigma", "sd_Subject", "b_Subject"]
        out["minESS_all"] = _min_ess(p.drop_vars([v for v in p.data_vars
                                                   if v.startswith(("u_", "cpc_", "corr_"))]),
                                     [v for v in p.data_vars
                                      if not v.startswith(("u_", "cpc_", "corr_"))])
        if "corr_Subject" in p:
            r = p["corr_Subject"].isel(Subject_coef=1, Subject_coef_bis=0)
            out["minESS_all"] = min(out["minESS_all"], _min_ess(r.to_dataset(name="r"), ["r"]))
        div = int(post["sample_stats"]["diverging"].sum())
    else:
        import bambi as bmb

        t0 = time.perf_counter()
        bm = bmb.Model(BAMBI, df)
        bm.build()
        t1 = time.perf_counter()
        idata = bm.fit(draws=draws, tune=tune, chains=chains, random_seed=seed,
                       inference_method=sampler, progressbar=False)
        t2 = time.perf_counter()
        p = idata["posterior"].to_dataset()
        sampling = float(p.attrs["sampling_time"])
        common = list(p.data_vars)
        out["minESS_all"] = _min_ess(p, common)
        div = int(idata["sample_stats"]["diverging"].sum())
    out.update({
        "build": t1 - t0,
        "sample": t2 - t1,
        "sampling": sampling,
        "compile": (t2 - t1) - sampling,
        "minESS": _min_ess(p, common),
        "max_rhat": _max_rhat(p, common),
        "divergences": div,
    })
    out["ESS/s"] = out["minESS"] / out["sampling"]
    return out


def run(lib, sampler, args, compiledir) -> dict:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={compiledir}"
    cmd = [sys.executable, __file__, "--worker", lib, "--samplers", sampler,
           "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains),
           "--seed", str(args.seed)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{lib}/{sampler} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samplers", default="nutpie,pymc")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3, help="warm runs per library and sampler")
    ap.add_argument("--libs", default="bambi,ours-uncorr,ours-corr")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.samplers, args.draws, args.tune, args.chains,
                                args.seed)))
        return

    libs = args.libs.split(",")
    rows = []
    root = tempfile.mkdtemp(prefix="bench_mcmc_")
    try:
        for sampler in args.samplers.split(","):
            for lib in libs:
                cdir = os.path.join(root, f"{lib}-{sampler}")
                cold = run(lib, sampler, args, cdir)
                cold["cache"] = "cold"
                rows.append(cold)
                print(_fmt(cold), flush=True)
                warm = []
                for r in range(args.reps):
                    w = run(lib, sampler, args, cdir)
                    w["cache"] = "warm"
                    print(_fmt(w), flush=True)
                    warm.append(w)
                med = {k: (statistics.median(x[k] for x in warm)
                           if isinstance(warm[0][k], (int, float)) else warm[0][k])
                       for k in warm[0]}
                med["cache"] = f"warm (median of {len(warm)})"
                rows.append(med)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print()
    print(f"sleepstudy, draws={args.draws} tune={args.tune} chains={args.chains}; "
          f"times in seconds")
    print(_header())
    for r in rows:
        print(_fmt(r))
    print()
    print("ratios ours / bambi (sample: <= 1 is the target; ESS/s: >= 1 is the target)")
    for sampler in args.samplers.split(","):
        for cache in ("cold", "warm"):
            def pick(lib):
                for r in rows:
                    if r["lib"] == lib and r["sampler"] == sampler and r["cache"].startswith(cache):
                        return r
            b = pick("bambi")
            for lib in libs:
                if lib == "bambi" or b is None or pick(lib) is None:
                    continue
                o = pick(lib)
                print(f"  {sampler:7s} {cache:5s} {lib:12s} sample {o['sample'] / b['sample']:5.2f}"
                      f"   compile {o['compile'] / b['compile']:5.2f}"
                      f"   sampling {o['sampling'] / b['sampling']:5.2f}"
                      f"   ESS/s {o['ESS/s'] / b['ESS/s']:5.2f}")


def _header() -> str:
    return (f"{'library':12s} {'sampler':7s} {'cache':22s} {'build':>6s} {'sample':>7s} "
            f"{'compile':>7s} {'sampling':>8s} {'minESS':>7s} {'ESS/s':>7s} {'rhat':>5s} "
            f"{'div':>4s} {'minESS*':>7s}")


def _fmt(r) -> str:
    return (f"{r['lib']:12s} {r['sampler']:7s} {r.get('cache', ''):22s} {r['build']:6.2f} "
            f"{r['sample']:7.2f} {r['compile']:7.2f} {r['sampling']:8.2f} {r['minESS']:7.0f} "
            f"{r['ESS/s']:7.0f} {r['max_rhat']:5.3f} {r['divergences']:4.0f} "
            f"{r['minESS_all']:7.0f}")


if __name__ == "__main__":
    main()
