"""Shared pieces of the benchmark scripts: running a child process that prints JSON, and the
lme4 peer (``bench/lme4_fit.R``) when ``Rscript`` with lme4 is installed."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "pymc_mixed" / "datasets" / "data"
# children write bytecode as an installed package would have it
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_json(cmd: list[str]) -> dict:
    """Run ``cmd`` and parse the JSON object on its last line of output."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=ENV).stdout
    return json.loads(out.strip().splitlines()[-1])


def have_lme4() -> bool:
    """True when ``Rscript`` can load lme4 and jsonlite."""
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "library(lme4); library(jsonlite)"],
                           capture_output=True)
    return probe.returncode == 0


def lme4_fit(case: str, dataset: str) -> dict:
    """Time one of ``bench/lme4_fit.R``'s cases on a bundled data set (fit only)."""
    return run_json(["Rscript", str(ROOT / "bench" / "lme4_fit.R"), case,
                     str(DATA / f"{dataset}.csv.gz"), str(DATA / "types.json")])
