# Two commands a new user needs (see README):
#   make demo   - set up .venv, fit sleepstudy and print the result
#   make test   - set up .venv and run the whole test suite (notebooks included)
.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/pymc-mixed fit "Reaction ~ 1 + Days + (1 + Days | Subject)" --data sleepstudy --ml

test: setup
	.venv/bin/python -m pytest -n 2 --dist loadgroup -q

bench: setup
	.venv/bin/python bench/bench_lmm.py

clean:
	rm -rf .venv .pytest_cache build *.egg-info
