"""Linear mixed models: pymc_mixed side by side with lme4, in one run on one machine.

    .venv/bin/python bench/bench_lmm.py [--repeat 3] [--skip-r]

Measures (issue 2's targets):
  * InstEval ``y ~ 1 + service + (1|s) + (1|d) + (1|dept)`` (ML): model set-up + fit, cold (first
    fit in a fresh process) and warm; peak memory of a process that only loads and fits it.
  * sleepstudy ML fit, warm (median of many).
  * a whole new process that imports the package, loads sleepstudy, fits it and prints the
    result, against ``Rscript bench/lme4_startup.R`` doing the same with lme4.
Both engines skip the derivative check at the optimum (lme4's ``calc.derivs = FALSE``,
pymc_mixed's ``calc_derivs=False``); InstEval has more than 10,000 rows, where neither
computes it by default. lme4 runs only when ``Rscript`` with lme4 is installed (``apt-get install r-base-core
r-cran-lme4 r-cran-jsonlite``); its fit times exclude data reading (``calc.derivs = FALSE``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from peers import DATA, ROOT, have_lme4, lme4_fit, run_json  # noqa: E402  (bench/ on sys.path)

PY = sys.executable

INSTEVAL = "y ~ 1 + service + (1|s) + (1|d) + (1|dept)"
SLEEP = "Reaction ~ 1 + Days + (1 + Days | Subject)"

_CHILD_INSTEVAL = f"""
import time, resource, json
t0 = time.perf_counter()
import pymc_mixed as pmm
df = pmm.datasets.load("InstEval")
t1 = time.perf_counter()
res = pmm.MixedModel({INSTEVAL!r}, df).fit(REML=False, calc_derivs=False)
t2 = time.perf_counter()
res2 = pmm.MixedModel({INSTEVAL!r}, df).fit(REML=False, calc_derivs=False)
t3 = time.perf_counter()
print(json.dumps({{"cold": t2 - t1, "warm": t3 - t2, "import_load": t1 - t0,
                  "objective": res.objective, "feval": res.optsum.feval,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

_CHILD_DEMO = f"""
import pymc_mixed as pmm
df = pmm.datasets.load("sleepstudy")
print(pmm.MixedModel({SLEEP!r}, df).fit(REML=False, calc_derivs=False))
"""


def _wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="whole-process repetitions")
    ap.add_argument("--skip-r", action="store_true", help="do not run lme4")
    args = ap.parse_args()
    rows = []

    ours = run_json([PY, "-c", _CHILD_INSTEVAL])
    import pymc_mixed as pmm

    df = pmm.datasets.load("sleepstudy")
    pmm.MixedModel(SLEEP, df).fit(REML=False, calc_derivs=False)  # warm up
    sleep_times = []
    for _ in range(50):
        t = time.perf_counter()
        pmm.MixedModel(SLEEP, df).fit(REML=False, calc_derivs=False)
        sleep_times.append(time.perf_counter() - t)
    sleep_warm = statistics.median(sleep_times)
    demo = _wall([PY, "-c", _CHILD_DEMO], args.repeat)

    r = have_lme4() and not args.skip_r
    if r:
        ie = lme4_fit("insteval_ml", "InstEval")
        ss = lme4_fit("sleepstudy_ml", "sleepstudy")
        rdemo = _wall(["Rscript", str(ROOT / "bench" / "lme4_startup.R"),
                       str(DATA / "sleepstudy.csv.gz"), str(DATA / "types.json")], args.repeat)

    def row(what, mine, theirs, target):
        ratio = mine / theirs if theirs else float("nan")
        rows.append((what, mine, theirs, ratio, target))

    row("InstEval ML fit, cold (s)", ours["cold"], ie["seconds"] if r else None, "<= 0.10")
    row("InstEval ML fit, warm (s)", ours["warm"], ie["seconds_warm"] if r else None, "<= 0.10")
    row("sleepstudy ML fit, warm (s)", sleep_warm, ss["seconds_warm"] if r else None,
        "< 10 ms")
    row("new process: import+load+fit+print (s)", demo, rdemo if r else None, "<= 1.0")

    print(f"{'measure':44s} {'pymc_mixed':>11s} {'lme4':>9s} {'ratio':>7s}  target")
    for what, mine, theirs, ratio, target in rows:
        t = f"{theirs:9.3f}" if theirs else f"{'-':>9s}"
        print(f"{what:44s} {mine:11.4f} {t} {ratio:7.3f}  {target}")
    print(f"\nInstEval: objective {ours['objective']:.6f} ({ours['feval']} evaluations); "
          f"peak memory of the fitting process {ours['maxrss_mb']:.0f} MB (target < 1024 MB)")
    if r:
        print(f"lme4 InstEval objective {ie['objective']:.6f} ({ie['feval']} evaluations); "
              f"difference {ours['objective'] - ie['objective']:+.2e}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_lmm.json").write_text(json.dumps({
        "ours": ours, "sleepstudy_warm": sleep_warm, "demo_process": demo,
        "lme4": {"insteval": ie, "sleepstudy": ss, "demo_process": rdemo} if r else None,
    }, indent=2))


if __name__ == "__main__":
    main()
