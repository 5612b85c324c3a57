"""Wide fixed-effects designs (issue 7, item 13): set-up memory and time, pymc_mixed and lme4 in
one run on one machine.

    .venv/bin/python bench/bench_wide.py [--skip-r] [--case a|b]

Case a: 100,000 rows, ``y ~ f + (1 | g)`` with a 120-level fixed factor ``f`` and 500 groups;
case b: 6,000 rows, a 3,000-level factor, 50 groups. Each fit runs in a fresh process; peak
memory is that process's maximum resident set size. lme4 fits by ML with ``calc.derivs =
FALSE``; ours with ``calc_derivs=False``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

CASES = {"a": (100_000, 120, 500), "b": (6_000, 3_000, 50)}

_PY = """
import json, resource, sys, time
import pandas as pd
import pymc_mixed as pmm
df = pd.read_csv(sys.argv[1], dtype={"f": str, "g": str})
t0 = time.perf_counter()
res = pmm.MixedModel("y ~ f + (1 | g)", df).fit(REML=False, calc_derivs=False)
t1 = time.perf_counter()
print(json.dumps({"seconds": t1 - t0, "objective": res.objective,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_R = """
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1], colClasses = c("numeric", "character", "character"))
d$f <- factor(d$f, levels = unique(d$f[order(nchar(d$f), d$f)])); d$g <- factor(d$g)
t <- system.time(m <- lmer(y ~ f + (1 | g), d, REML = FALSE,
                           control = lmerControl(calc.derivs = FALSE)))[["elapsed"]]
cat(sprintf('{"seconds": %.6f, "objective": %.10f}\\n', t, deviance(m)))
"""


def make(case: str, path: pathlib.Path) -> None:
    n, p, ng = CASES[case]
    rng = np.random.default_rng(1)
    f, g = rng.integers(0, p, n), rng.integers(0, ng, n)
    y = rng.normal(size=p)[f] + rng.normal(size=ng)[g] + rng.normal(size=n)
    pd.DataFrame({"y": y, "f": [f"f{i}" for i in f], "g": g.astype(str)}).to_csv(path, index=False)


def peak_run(cmd: list[str]) -> tuple[dict, float]:
    """Run ``cmd`` under GNU time; its JSON line and its peak resident memory (MB)."""
    out = subprocess.run(["/usr/bin/time", "-f", "PEAK %M"] + cmd, capture_output=True,
                         text=True, check=True)
    peak = [ln for ln in out.stderr.splitlines() if ln.startswith("PEAK")][-1]
    return json.loads(out.stdout.strip().splitlines()[-1]), int(peak.split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-r", action="store_true")
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp())
    try:
        for case in args.case or sorted(CASES):
            csv = tmp / f"{case}.csv"
            make(case, csv)
            ours, ours_mb = peak_run([sys.executable, "-c", _PY, str(csv)])
            print(f"case {case} {CASES[case]}: pymc_mixed {ours['seconds']:.2f} s, "
                  f"{ours_mb:.0f} MB, objective {ours['objective']:.6f}")
            if not args.skip_r and shutil.which("Rscript"):
                rs = tmp / "fit.R"
                rs.write_text(_R)
                lme4, lme4_mb = peak_run(["Rscript", str(rs), str(csv)])
                print(f"case {case}: lme4 {lme4['seconds']:.2f} s, {lme4_mb:.0f} MB, "
                      f"objective {lme4['objective']:.6f}")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
