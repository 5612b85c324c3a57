"""Nonlinear mixed models: pymc_mixed side by side with nlme and lme4::nlmer, in one run.

    .venv/bin/python bench/bench_nlmm.py [--repeat 5] [--subjects 2000] [--skip-r] [--docs]

Measures (issue 8's targets), all on the one-compartment model of ``bench/nlme_fit.R``
(log ka, log CL, log V, diagonal random effects on all three, additive error):
  * Theoph (dose in mg), LME warm (target <= nlme's time) and FOCE warm (target <= 1/5 of
    nlmer's Laplace), medians of ``--repeat`` fits in one process;
  * a first fit in a fresh process with an empty PyTensor compile directory
    (``PYTENSOR_FLAGS=compiledir=<tmp>``): import, model set-up with the kernel's compilation,
    first LME fit, reported separately (target: set-up + first fit < 3 s);
  * ``--subjects`` simulated subjects (``bench/simulate_pk.py``), LME and FOCE, one fit each
    (target: FOCE <= half of nlme's LME time); nlme and nlmer fit it once (nlmer is slow).
nlme/nlmer run only when ``Rscript`` with nlme, lme4 and jsonlite is installed. ``--docs``
writes the table into docs/benchmarks.md (between the nonlinear markers).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from peers import ENV, ROOT, run_json  # noqa: E402  (bench/ on sys.path)

PY = sys.executable

_MODEL = """
import time, json, statistics
t0 = time.perf_counter()
import numpy as np, pandas as pd, pytensor.tensor as pt
import pymc_mixed as pmm
t_import = time.perf_counter() - t0

def one_compartment(phi, Time, dose):
    ka, cl, v = pt.exp(phi["lka"]), pt.exp(phi["lcl"]), pt.exp(phi["lv"])
    k = cl / v
    return dose * ka / (v * (ka - k)) * (pt.exp(-k * Time) - pt.exp(-ka * Time))

def model(d):
    return pmm.NonlinearMixedModel(
        one_compartment, d, "conc", {"lka": "1", "lcl": "1", "lv": "1"},
        "lka + lcl + lv ~ 1 | Subject", cov="diagonal",
        start={"lka": 0.45, "lcl": 1.0, "lv": 3.45})

def timed(f):
    t = time.perf_counter(); out = f(); return time.perf_counter() - t, out
"""

_CHILD_THEOPH = _MODEL + """
d = pmm.datasets.load("Theoph"); d["dose"] = d["Dose"] * d["Wt"]
t_setup, m = timed(lambda: model(d))
t_lme1, lme = timed(lambda: m.fit("LME"))
t_foce1, foce = timed(lambda: m.fit("FOCE"))
lme_t = [timed(lambda: m.fit("LME"))[0] for _ in range(REPEAT)]
foce_t = [timed(lambda: m.fit("FOCE"))[0] for _ in range(REPEAT)]
print(json.dumps({"import": t_import, "setup": t_setup, "lme_first": t_lme1,
                  "foce_first": t_foce1, "lme_warm": statistics.median(lme_t),
                  "foce_warm": statistics.median(foce_t), "lme_loglik": lme.loglik,
                  "foce_loglik": foce.loglik, "foce_feval": foce.optsum.feval}))
"""

_CHILD_SIM = _MODEL + """
d = pd.read_csv(CSV); d["dose"] = d["Dose"]; d["Subject"] = d["Subject"].astype(str)
t_setup, m = timed(lambda: model(d))
t_lme, lme = timed(lambda: m.fit("LME"))
t_foce, foce = timed(lambda: m.fit("FOCE"))
print(json.dumps({"setup": t_setup, "lme": t_lme, "foce": t_foce, "lme_loglik": lme.loglik,
                  "foce_loglik": foce.loglik}))
"""


def _child(code: str, env_extra: dict | None = None) -> dict:
    env = dict(ENV, **(env_extra or {}))
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True,
                         env=env, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def _have_nlme() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "library(nlme); library(lme4); library(jsonlite)"],
                           capture_output=True)
    return probe.returncode == 0


def _peer(case: str, csv: str = "", repeats: int = 5) -> dict:
    return run_json(["Rscript", str(ROOT / "bench" / "nlme_fit.R"), case, csv, str(repeats)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--subjects", type=int, default=2000)
    ap.add_argument("--skip-r", action="store_true", help="do not run nlme / nlmer")
    ap.add_argument("--docs", action="store_true", help="write the table to docs/benchmarks.md")
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_nlmm_"))
    try:
        warm = _child(_CHILD_THEOPH.replace("REPEAT", str(args.repeat)))
        cold = _child(_CHILD_THEOPH.replace("REPEAT", "1"),
                      {"PYTENSOR_FLAGS": f"compiledir={tmp / 'pytensor'}"})
        csv = tmp / f"sim{args.subjects}.csv"
        subprocess.run([PY, str(ROOT / "bench" / "simulate_pk.py"), str(args.subjects),
                        str(csv)], check=True, capture_output=True)
        sim = _child(_CHILD_SIM.replace("CSV", repr(str(csv))))
        r = _have_nlme() and not args.skip_r
        peers = {}
        if r:
            peers["theoph_lme"] = _peer("theoph_lme", "", args.repeat)
            peers["theoph_foce"] = _peer("theoph_foce", "", args.repeat)
            peers["sim_lme"] = _peer("sim2000_lme", str(csv), 1)
            peers["sim_foce"] = _peer("sim2000_foce", str(csv), 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = _rows(warm, cold, sim, peers, args.subjects)
    text = _table(rows, warm, sim, peers)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_nlmm.json").write_text(json.dumps(
        {"theoph_warm": warm, "theoph_cold": cold, "sim": sim, "peers": peers}, indent=2))
    if args.docs:
        _write_docs(rows, text.split("\n\n", 1)[1], args)


def _rows(warm, cold, sim, peers, n):
    def p(key):
        return peers[key]["seconds"] if key in peers else None

    nl, nlmer = "nlme", "nlmer"
    return [
        ("Theoph LME fit, warm (s)", warm["lme_warm"], p("theoph_lme"), nl, "ratio <= 1"),
        ("Theoph FOCE fit, warm (s)", warm["foce_warm"], p("theoph_foce"), nlmer,
         "ratio <= 0.2"),
        ("fresh process + empty compile dir: import (s)", cold["import"], None, "", ""),
        ("  model set-up incl. kernel compile (s)", cold["setup"], None, "", ""),
        ("  first LME fit (s)", cold["lme_first"], None, "", "set-up + fit < 3 s"),
        ("  first FOCE fit after it (s)", cold["foce_first"], None, "", ""),
        (f"{n} subjects: model set-up (s)", sim["setup"], None, "", ""),
        (f"{n} subjects: LME fit (s)", sim["lme"], p("sim_lme"), nl, ""),
        (f"{n} subjects: FOCE fit (s)", sim["foce"], p("sim_lme"), nl, "ratio <= 0.5"),
        (f"{n} subjects: FOCE fit vs nlmer (s)", sim["foce"], p("sim_foce"), nlmer, ""),
    ]


def _table(rows, warm, sim, peers) -> str:
    lines = [f"{'measure':48s} {'pymc_mixed':>10s} {'peer':>9s} {'':6s} {'ratio':>6s}  target"]
    for what, mine, theirs, who, target in rows:
        t = f"{theirs:9.3f}" if theirs else f"{'-':>9s}"
        ratio = f"{mine / theirs:6.3f}" if theirs else f"{'':6s}"
        lines.append(f"{what:48s} {mine:10.4f} {t} {who:6s} {ratio}  {target}")
    ll = [f"logLik Theoph: LME {warm['lme_loglik']:.6f}, FOCE {warm['foce_loglik']:.6f} "
          f"({warm['foce_feval']} evaluations)",
          f"logLik simulated: LME {sim['lme_loglik']:.4f}, FOCE {sim['foce_loglik']:.4f}"]
    if peers:
        ll.append(f"peers: nlme Theoph {peers['theoph_lme']['logLik']:.6f}, nlmer Theoph "
                  f"{peers['theoph_foce']['logLik']:.6f}, nlme sim {peers['sim_lme']['logLik']:.4f}"
                  f", nlmer sim {peers['sim_foce']['logLik']:.4f}")
    return "\n".join(lines + [""] + ll)


def _write_docs(rows, loglik_lines: str, args) -> None:
    import datetime

    doc = ROOT / "docs" / "benchmarks.md"
    start, end = "<!-- bench_nlmm start -->", "<!-- bench_nlmm end -->"
    table = ["| measure | pymc_mixed | peer | ratio | target |", "|---|---:|---:|---:|---|"]
    for what, mine, theirs, who, target in rows:
        peer = f"{theirs:.3f} ({who})" if theirs else "-"
        ratio = f"{mine / theirs:.3f}" if theirs else ""
        table.append(f"| {what.strip()} | {mine:.4f} | {peer} | {ratio} | {target} |")
    body = (f"{start}\n## Nonlinear mixed models (`bench/bench_nlmm.py`, "
            f"{datetime.date.today()})\n\n`bench/bench_nlmm.py --repeat {args.repeat} "
            f"--subjects {args.subjects} --docs`, peers in the same run (nlme 3.1-162 and "
            f"lme4::nlmer 1.1-31 through bench/nlme_fit.R), one-compartment model with "
            f"diagonal random effects on log ka, log CL, log V; times in seconds, medians of "
            f"{args.repeat} fits for the warm rows, one fit otherwise.\n\n"
            + "\n".join(table) + "\n\n" + "\n".join(f"- {ln}" for ln in
                                                   loglik_lines.splitlines()) + f"\n{end}")
    old = doc.read_text()
    if start in old:
        new = old[:old.index(start)] + body + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + body + "\n"
    doc.write_text(new)


if __name__ == "__main__":
    main()
