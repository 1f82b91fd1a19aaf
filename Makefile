# sluicegate — every target installs what it needs into ./.venv from the package registries.
#   make run      start a gateway (with no provider keys: the built-in simulator demo)
#   make test     build the Rust core (release) and run cargo test, clippy, fmt, ruff, pytest
#   make zipapp   write dist/sluicegate.pyz (shiv; the compiled core and every dependency inside)
#   make lint     clippy, rustfmt, ruff (check only)
#   make bench    sluicegate vs LiteLLM vs direct on the simulator -> bench/RESULTS.md (~8 min)
#   make fmt      apply rustfmt and ruff format

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
TOOLS  := $(VENV)/.tools-installed
CORE   := $(VENV)/.core-built
RUST_SOURCES := Cargo.toml $(shell find rust -name '*.rs' -o -name '*.jinja' 2>/dev/null)
PY_DEPS := pyproject.toml
# cargo (tests, clippy) and maturin must see the same interpreter, or pyo3 rebuilds each time.
export PYO3_PYTHON := $(abspath $(PY))

.PHONY: run test lint fmt zipapp develop bench bench-quick bench-core clean cargo-test pytest

run: $(CORE)
	$(BIN)/sluicegate run $(ARGS)

# The zipapp is built first so the tests can run the shipped artefact too (tests/test_zipapp.py).
test: $(CORE) cargo-test lint zipapp
	SLUICEGATE_TEST_ZIPAPP=$(abspath dist/sluicegate.pyz) $(BIN)/pytest -q

develop: $(CORE)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(TOOLS): $(PY_DEPS) | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.7,<2"
	touch $@

# `maturin develop` builds the extension in the release profile (see [tool.maturin]) and installs
# the package in editable mode with its runtime and test dependencies.
$(CORE): $(TOOLS) $(RUST_SOURCES) $(wildcard python/sluicegate/*.pyi)
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --quiet --extras test,dist
	touch $@

cargo-test:
	cargo test --quiet

lint: $(CORE)
	cargo clippy --quiet --all-targets -- -D warnings
	cargo fmt --check
	$(BIN)/ruff check python tests bench
	$(BIN)/ruff format --check python tests bench

fmt: $(CORE)
	cargo fmt
	$(BIN)/ruff format python tests bench
	$(BIN)/ruff check --fix python tests bench

pytest: $(CORE)
	$(BIN)/pytest -q

zipapp: $(CORE)
	rm -rf build/zipapp && mkdir -p build/zipapp dist
	$(BIN)/maturin build --release --quiet --out build/zipapp/wheels
	$(BIN)/shiv --quiet --compile-pyc --reproducible \
	    --python '/usr/bin/env python3.11' \
	    --entry-point sluicegate.cli:main \
	    --output-file dist/sluicegate.pyz \
	    build/zipapp/wheels/*.whl
	@echo "wrote dist/sluicegate.pyz"

# Benchmarks: LiteLLM and matplotlib live in their own venv, never in the test path.
BENCH_VENV := bench/.venv
$(BENCH_VENV)/.installed: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $@

# The run is bounded (run.py --budget-seconds, default 15 min) and stops every process it started.
bench: $(CORE) $(BENCH_VENV)/.installed zipapp
	cd bench && .venv/bin/python run.py --profile $(BENCH_ARGS)

bench-quick: $(CORE) $(BENCH_VENV)/.installed zipapp
	cd bench && .venv/bin/python run.py --quick $(BENCH_ARGS)

bench-core: $(CORE)
	$(PY) bench/core_bench.py

clean:
	rm -rf $(VENV) build dist target python/sluicegate/*.so
