# One environment, created on demand; every target that needs it depends on it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := examples
PY_DIRS := engine server benchmarks tests scripts deploy clients/python
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= loyalty-engine
BUF := tools/node_modules/.bin/buf
# v0.1.0, the previous release, named by commit: a clone may lack tags
BUF_AGAINST_REF := 560f86cbd94d0cad8fb5b49400da787f8de0d13a

.PHONY: env redis-server chromium h2load node tools proto test client-test lint format stubs image bench \
	bench-quick run price-example clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# regenerate proto/loyalty/v1/*_pb2*.py from the .proto sources, and the slim client's identical
# copy with its typed service stubs
proto: env
	$(BIN)/python scripts/gen_protos.py
	$(BIN)/python clients/python/generate.py

# buf and protoc-gen-es from npm, pinned by tools/package-lock.json (node_modules not committed);
# node and npm from Debian's packages when missing
node:
	@command -v npm >/dev/null 2>&1 || { \
		echo "npm not found: installing it (apt-get install nodejs npm)"; \
		{ command -v apt-get >/dev/null 2>&1 && (apt-get update -qq || true) && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || \
		{ echo "error: cannot install npm; install Node.js >= 18 and retry" >&2; exit 1; }; }

$(BUF): tools/package.json tools/package-lock.json
	$(MAKE) node
	npm ci --prefix tools --no-audit --no-fund
	touch $(BUF)

tools: $(BUF)

# Every test, then the kernel/reference twin comparison once more with numba's JIT off, so the
# kernels also run (and are covered) as plain Python.
# The Redis tests start their own redis-server on a free loopback port; install it if missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "redis-server not found: installing it (apt-get install redis-server)"; \
		{ command -v apt-get >/dev/null 2>&1 && (apt-get update -qq || true) && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } || \
		{ echo "error: cannot install redis-server; install Redis >= 7 and retry" >&2; exit 1; }; }

# h2load (nghttp2's C HTTP/2 load generator) for the ceiling benchmark; install it if missing
h2load:
	@command -v h2load >/dev/null 2>&1 || { \
		echo "h2load not found: installing it (apt-get install nghttp2-client)"; \
		{ command -v apt-get >/dev/null 2>&1 && (apt-get update -qq || true) && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null; } || \
		{ echo "error: cannot install h2load; install nghttp2-client and retry" >&2; exit 1; }; }

# Debian's chromium for the console's browser tests (Playwright drives it; nothing downloads a
# browser at run time); install it if missing
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "chromium not found: installing it (apt-get install chromium)"; \
		{ command -v apt-get >/dev/null 2>&1 && (apt-get update -qq || true) && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "warning: cannot install chromium; the browser tests will be skipped" >&2; }

KERNEL_TESTS = tests/test_twin.py tests/test_pinned.py tests/test_batch_parts.py tests/test_batch_paths.py \
	tests/test_hot_table.py tests/test_rule_arrays.py tests/test_limits_walk.py tests/test_scoring.py \
	-k "kernel or twin or batch"

# then the kernel tests again without JIT (the same code as plain Python) and compiled with
# bounds checks (an index below 0 or past the end fails: the kernels' indexes never wrap around)
test: env redis-server chromium
	$(BIN)/python -m pytest -q
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q $(KERNEL_TESTS)
	NUMBA_BOUNDSCHECK=1 $(BIN)/python -m pytest -q $(KERNEL_TESTS)

# The client package's suite in build/client-venv (grpcio + protobuf + pytest only), against
# real servers; `make test` also runs it through tests/test_client_package.py.
client-test: env
	$(BIN)/python clients/python/slim_env.py -q

# ruff (lint and format) everywhere; mypy --strict (the settings are in pyproject.toml) on the
# product and the slim client; buf lint on the protos and buf breaking against the previous
# release. The Python checks also run before each commit with `pre-commit install`.
lint: env $(BUF)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy engine server
	$(BIN)/hadolint Dockerfile
	cd clients/python && $(abspath $(BIN))/mypy
	$(BUF) lint
	@if git cat-file -e $(BUF_AGAINST_REF)^{commit} 2>/dev/null; then \
		echo "$(BUF) breaking --against .git#ref=$(BUF_AGAINST_REF),subdir=proto"; \
		$(BUF) breaking --against '.git#ref=$(BUF_AGAINST_REF),subdir=proto'; \
	else echo "warning: buf breaking skipped: commit $(BUF_AGAINST_REF) (v0.1.0) is not in this" \
		"clone (a shallow clone?); fetch it to check the wire contract"; fi

# The server's container image (Dockerfile), tagged with the package version and latest
# (compose.yaml runs loyalty-engine:latest unless LOYALTY_IMAGE_TAG says otherwise).
image:
	docker build --tag $(IMAGE):$(VERSION) --tag $(IMAGE):latest .

# TypeScript and Go stubs into build/gen/ (not committed); Go needs protoc-gen-go and
# protoc-gen-go-grpc on PATH (Debian: apt-get install protoc-gen-go protoc-gen-go-grpc)
stubs: $(BUF)
	@if command -v protoc-gen-go >/dev/null && command -v protoc-gen-go-grpc >/dev/null; then \
		$(BUF) generate; \
	else \
		echo "protoc-gen-go or protoc-gen-go-grpc not on PATH: TypeScript stubs only"; \
		$(BUF) generate --template '{"version":"v2","clean":true,"inputs":[{"directory":"proto"}],"plugins":[{"local":"tools/node_modules/.bin/protoc-gen-es","out":"build/gen/ts","opt":["target=ts"]}]}'; \
	fi

format: env
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

# Kernel (K1, K2, C1, scaling), then gRPC (echo vs Evaluate vs Commit, closed and open loop;
# Redis when the Redis store is there); figures go to benchmarks/results/. Knobs:
# `python -m benchmarks kernel --help`, `python -m benchmarks grpc --help`.
bench: env redis-server h2load
	$(BIN)/python -m benchmarks all

bench-quick: env redis-server h2load
	$(BIN)/python -m benchmarks all --quick

# Starts the service on 127.0.0.1:50051, and the console and JSON API on http://127.0.0.1:8080/,
# over the embedded store in ./.loyalty, loading the demo programme, catalogue and members the
# first time.
run: env
	$(BIN)/loyalty serve --demo

# The engine alone, no server: validate the example programme and price the example basket.
price-example: env
	$(BIN)/loyalty rules validate $(EXAMPLES)/watsons.yaml --catalogue $(EXAMPLES)/catalogue.csv
	$(BIN)/loyalty price --rules $(EXAMPLES)/watsons.yaml --catalogue $(EXAMPLES)/catalogue.csv \
		$(EXAMPLES)/basket.json --explain

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
