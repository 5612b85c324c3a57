"""Generalized linear mixed models: pymc_mixed side by side with lme4's glmer, in one run.

    .venv/bin/python bench/bench_glmm.py [--repeat 5] [--skip-r]

Measures issue 3's target, the VerbAgg model ``r2 ~ 1 + Anger + Gender + btype + situ +
(1|id) + (1|item)`` (Bernoulli, ``r2 == "Y"``; n = 7584, 316 + 24 random effects), fitted by
Laplace (``fit()``, lme4's default ``nAGQ = 1``) and by its fast form (``fit(fast=True)``,
lme4's ``nAGQ = 0``). Target: at most 1/5 of lme4's time for each.

Each form runs in a fresh process: "cold" is the first model set-up + fit there (it pays the
one-time lazy imports and first calls), "warm" the median of ``--repeat`` more. Both time
``MixedModel(...)`` plus ``fit()``, as lme4's ``glmer()`` time includes its model frame; the
set-up part is also shown on its own. The child processes run with Python's bytecode cache on
(as an installed package has it), whatever ``PYTHONDONTWRITEBYTECODE`` says here. lme4 runs
through ``bench/lme4_fit.R`` (``calc.derivs = FALSE``, default PIRLS tolerance) when
``Rscript`` with lme4 is installed; its cold/warm are the first and second fit in its process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from peers import ENV, ROOT, have_lme4, lme4_fit, run_json  # noqa: E402  (bench/ on sys.path)

PY = sys.executable
FORMULA = "r2 ~ 1 + Anger + Gender + btype + situ + (1|id) + (1|item)"

_CHILD = """
import json, statistics, sys, time
import pymc_mixed as pmm
df = pmm.datasets.load("VerbAgg")
kw = json.loads(sys.argv[1]); repeat = int(sys.argv[2])

def once():
    t0 = time.perf_counter()
    m = pmm.MixedModel({formula!r}, df, family="binomial")
    t1 = time.perf_counter()
    res = m.fit(calc_derivs=False, **kw)  # lme4 runs with calc.derivs = FALSE too
    t2 = time.perf_counter()
    return t2 - t0, t1 - t0, res

cold, cold_setup, res = once()
runs = [once() for _ in range(repeat)]
print(json.dumps({{"cold": cold, "cold_setup": cold_setup,
                  "warm": statistics.median(r[0] for r in runs),
                  "warm_setup": statistics.median(r[1] for r in runs),
                  "objective": res.objective, "feval": res.optsum.feval,
                  "optimizer": res.optsum.optimizer,
                  "theta": list(res._theta), "fixef": dict(res.fixef)}}))
""".format(formula=FORMULA)
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="warm fits per form")
    ap.add_argument("--skip-r", action="store_true", help="do not run lme4")
    args = ap.parse_args()
    forms = [("Laplace, fit()", {}, "verbagg_laplace"),
             ("fast, fit(fast=True)", {"fast": True}, "verbagg_agq0")]
    r = have_lme4() and not args.skip_r
    # compile the package's bytecode once, as installing it would
    subprocess.run([PY, "-c", "import pymc_mixed.fit.glmm, pymc_mixed.results.glmm"], check=True,
                   env=ENV)
    results = {}
    for label, kw, case in forms:
        ours = run_json([PY, "-c", _CHILD, json.dumps(kw), str(args.repeat)])
        theirs = lme4_fit(case, "VerbAgg") if r else None
        results[case] = {"pymc_mixed": ours, "lme4": theirs}

    print(f"VerbAgg {FORMULA}  (Bernoulli, n = 7584)\n")
    print(f"{'form':22s} {'':5s} {'pymc_mixed':>10s} {'(set-up)':>9s} {'lme4':>8s} {'ratio':>7s}"
          f"  target")
    for label, _, case in forms:
        ours, theirs = results[case]["pymc_mixed"], results[case]["lme4"]
        for which, key in (("cold", "seconds"), ("warm", "seconds_warm")):
            t = theirs[key] if theirs else None
            ratio = f"{ours[which] / t:7.3f}" if t else f"{'-':>7s}"
            ts = f"{t:8.3f}" if t else f"{'-':>8s}"
            print(f"{label if which == 'cold' else '':22s} {which:5s} {ours[which]:10.4f} "
                  f"{ours[which + '_setup']:9.4f} {ts} {ratio}  <= 0.200")
    print()
    for label, _, case in forms:
        ours, theirs = results[case]["pymc_mixed"], results[case]["lme4"]
        line = (f"{label:22s} -2 logLik {ours['objective']:.6f} ({ours['feval']} evaluations, "
                f"{ours['optimizer']})")
        if theirs:
            line += (f"; lme4 {theirs['minus2logLik']:.6f} ({theirs['feval']} evaluations), "
                     f"difference {ours['objective'] - theirs['minus2logLik']:+.2e}")
        print(line)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_glmm.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
