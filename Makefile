# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make run` needs only the runtime dependencies, `make test` the dev
# extras as well; either may come first, and `make run` after `make test` installs
# nothing more.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test typecheck bench verify clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

# The dev extras include the runtime dependencies: the run stamp is satisfied too.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

# --overwrite: results/default always holds the latest `make run`, whatever the scenario.
run: $(RUN_STAMP)
	$(BIN)/mailflow run --out results/default --overwrite

test: $(DEV_STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --nbmake -q

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP) $(RUN_STAMP)

verify: $(RUN_STAMP)
	$(BIN)/mailflow verify --out results/verify

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/mm4.py
	$(BIN)/python benchmarks/sweep_speedup.py 1
	$(BIN)/python benchmarks/sweep_speedup.py 1 1200
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/internet10k.py

clean:
	rm -rf $(VENV) results/*/ .pytest_cache
