# One environment, created on demand; every target that needs it depends on it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: env proto test test-nojit lint bench run clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

proto: env  ## regenerate proto/loyalty/v1/*_pb2*.py from the .proto sources
	$(BIN)/python scripts/gen_protos.py

test: env  ## every test, then the kernel/reference twin comparison without JIT
	$(BIN)/python -m pytest -q
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -m "not slow" tests/test_twin.py

lint: env
	$(BIN)/ruff check engine server benchmarks tests scripts
	$(BIN)/mypy engine

bench: env  ## kernel benchmarks; figures go to benchmarks/results/
	$(BIN)/python -m benchmarks.kernel

run: env
	$(BIN)/python -m server.cli demo

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
