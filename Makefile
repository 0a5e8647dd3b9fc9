# One environment, created on demand; every target that needs it depends on it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := examples
PY_DIRS := engine server benchmarks tests scripts

.PHONY: env redis-server proto test lint format bench bench-quick run price-example clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

proto: env  ## regenerate proto/loyalty/v1/*_pb2*.py from the .proto sources
	$(BIN)/python scripts/gen_protos.py

# Every test, then the kernel/reference twin comparison once more with numba's JIT off, so the
# kernels also run (and are covered) as plain Python.
# The Redis tests start their own redis-server on a free loopback port; install it if missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "redis-server not found: installing it (apt-get install redis-server)"; \
		{ command -v apt-get >/dev/null 2>&1 && (apt-get update -qq || true) && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } || \
		{ echo "error: cannot install redis-server; install Redis >= 7 and retry" >&2; exit 1; }; }

test: env redis-server
	$(BIN)/python -m pytest -q
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q tests/test_twin.py tests/test_pinned.py \
		-k "kernel or twin or batch"

# ruff (lint and format) everywhere; mypy --strict (the settings are in pyproject.toml) on the
# product. The same checks run before each commit with `pre-commit install`.
lint: env
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy engine server

format: env
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

# Kernel (K1, K2, C1, scaling), then gRPC (echo vs Evaluate vs Commit, closed and open loop;
# Redis when the Redis store is there); figures go to benchmarks/results/. Knobs:
# `python -m benchmarks kernel --help`, `python -m benchmarks grpc --help`.
bench: env
	$(BIN)/python -m benchmarks all

bench-quick: env
	$(BIN)/python -m benchmarks all --quick

# Starts the service on 127.0.0.1:50051 over the embedded store in ./.loyalty, loading the demo
# programme, catalogue and members the first time.
run: env
	$(BIN)/loyalty serve --demo

# The engine alone, no server: validate the example programme and price the example basket.
price-example: env
	$(BIN)/loyalty rules validate $(EXAMPLES)/watsons.yaml --catalogue $(EXAMPLES)/catalogue.csv
	$(BIN)/loyalty price --rules $(EXAMPLES)/watsons.yaml --catalogue $(EXAMPLES)/catalogue.csv \
		$(EXAMPLES)/basket.json --explain

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
