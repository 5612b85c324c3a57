#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install pymc_mixed with its test extras.
# Idempotent: a second run only checks that the install is current.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for cand in "${PYTHON:-}" python3.12 python3.13 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  # pyenv installs that are not on the active shim path
  for cand in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
    if [ -x "$cand" ] && "$cand" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(find_python) || { echo "error: Python >= 3.12 is required (PyMC 6); none found" >&2; exit 1; }
  echo "creating .venv with $($py --version)"
  "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=.venv/.pymc_mixed-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing pymc_mixed and its dependencies into .venv (first run takes a minute)"
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
