# OML Hub — one-command developer world. `make help` lists the targets.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_SYS ?= python3.11
VENV       := .venv
PY         := $(VENV)/bin/python
PIP        := $(VENV)/bin/pip
TORCH_WHEEL_DIR ?= /opt/wheels
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/tools/solc
# Quiet, offline-friendly defaults for the ML stack.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
OML_ANVIL_PORT ?= 18545
export OML_RPC_URL ?= http://127.0.0.1:$(OML_ANVIL_PORT)

# Test world: its own ports and run dir so `make test` never touches a running `make up`.
# TEST_PORT_BASE moves them all, e.g. to run a second checkout's tests beside this one.
TEST_PORT_BASE ?= 0
tport = $(shell echo $$(( $(1) + $(TEST_PORT_BASE) )))
TEST_ENV := OML_RPC_URL=http://127.0.0.1:$(call tport,18645) OML_RUN_DIR=$(CURDIR)/.run/test \
            OML_ANVIL_PORT=$(call tport,18645) OML_IPFS_API_PORT=$(call tport,15101) \
            OML_IPFS_GATEWAY_PORT=$(call tport,18180) OML_IPFS_GRPC_PORT=$(call tport,15103) \
            OML_IPFS_SWARM_PORT=$(call tport,14101)
PYTEST_WORKERS ?= 2

.PHONY: help setup up down status demo test lint compile doctor clean bench test-frontend

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: $(VENV)/.installed node_modules/.installed ## Install everything into the repo (idempotent)
	@tools/ensure-debian.sh
	@echo "setup: ok (python $$($(PY) -c 'import sys;print(sys.version.split()[0])'), node $$(node --version))"

$(VENV)/.installed: pyproject.toml constraints.txt
	# A venv without pip is a set-up killed half-way: start it again.
	@test -x $(PIP) || { rm -rf $(VENV); $(PYTHON_SYS) -m venv $(VENV); }
	$(PIP) install -q --disable-pip-version-check pip==24.3.1
	# torch first, from the local CPU wheel when present: an open range pulls CUDA wheels.
	$(PIP) install -q --disable-pip-version-check --find-links $(TORCH_WHEEL_DIR) torch==2.13.0
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

compile: setup ## Compile the contracts with ape (solc-js through tools/solc), export ABIs
	ape compile -v WARNING
	@# ape-solidity unpacks dependencies into contracts/.cache to compile; left there, it hides
	@# contracts/ sub-folders (mocks, interfaces) from ape's source listing.
	@rm -rf contracts/.cache
	@if [ -f scripts/export_abis.py ]; then $(PY) scripts/export_abis.py; fi

lint: setup ## ruff + mypy on the Python; slither on the contracts (fails on high/medium)
	ruff check agents scripts tests benchmarks
	ruff format --check agents scripts tests benchmarks
	mypy agents scripts
	tools/slither.sh

up: setup ## Start Anvil + IPFS in the background; FORK_URL=<rpc> [FORK_BLOCK=n] forks a network
	$(if $(FORK_URL),OML_FORK_URL=$(FORK_URL)) $(if $(FORK_BLOCK),OML_FORK_BLOCK=$(FORK_BLOCK)) oml world up

down: ## Stop what `make up` and `make demo` started
	@if [ -f $(FRONTEND_PID) ] && kill -0 "$$(cat $(FRONTEND_PID))" 2>/dev/null; then \
		kill "$$(cat $(FRONTEND_PID))" && echo "web app stopped"; fi; rm -f $(FRONTEND_PID)
	@if [ -x $(VENV)/bin/oml ]; then oml world down; else echo "nothing to stop"; fi

status: ## Show the local world
	oml world status

doctor: ## Check the toolchain and the local world
	oml doctor

OML_FRONTEND_PORT ?= 18300
FRONTEND_PID := .run/frontend.pid

demo: setup compile up frontend/node_modules/.installed ## Bring the world up, deploy the contracts, serve the app, print where everything is
	ape run deploy --network ethereum:local:node -v WARNING
	$(PY) scripts/demo_summary.py
	# The story with real agents (docs/demo.md); DEMO_MODEL=smollm2 for the real small model.
	$(PY) scripts/demo.py
	# The web app: built once, served with /config.json, deployments/ and an /ipfs/ proxy.
	(cd frontend && node_modules/.bin/vite build --logLevel warn)
	if [ -f $(FRONTEND_PID) ] && kill -0 "$$(cat $(FRONTEND_PID))" 2>/dev/null; then kill "$$(cat $(FRONTEND_PID))"; sleep 0.5; fi
	mkdir -p .run
	OML_FRONTEND_PORT=$(OML_FRONTEND_PORT) nohup node frontend/scripts/serve.mjs > .run/frontend.log 2>&1 < /dev/null & echo $$! > $(FRONTEND_PID)
	for i in $$(seq 50); do curl -fs http://127.0.0.1:$(OML_FRONTEND_PORT)/config.json >/dev/null && break; sleep 0.2; done
	curl -fs http://127.0.0.1:$(OML_FRONTEND_PORT)/config.json >/dev/null || { cat .run/frontend.log; exit 1; }
	echo "web app  http://127.0.0.1:$(OML_FRONTEND_PORT)/  (pid $$(cat $(FRONTEND_PID)); stop: kill \$$(cat $(FRONTEND_PID)))"

test: setup compile lint ## The one test command: lint, then every suite against a fresh test world
	@trap '$(TEST_ENV) oml world down >/dev/null' EXIT
	$(TEST_ENV) oml world up >/dev/null
	$(TEST_ENV) pytest -q -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider --durations=15 tests
	$(MAKE) --no-print-directory test-frontend

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $(CURDIR)/$@

# Browser tests start their own Anvil and js-ipfs on free ports (never the dev or test world's).
test-frontend: setup compile frontend/node_modules/.installed ## Web app: typecheck, unit tests, build, browser tests
	cd frontend
	node_modules/.bin/tsc --noEmit -p tsconfig.json
	node_modules/.bin/vitest run
	node_modules/.bin/vite build --logLevel warn
	node_modules/.bin/vitest run --config vitest.e2e.config.ts

# The fingerprint goal is >= 1024 fingerprints: measure at that N (BENCH_FINGERPRINT_ARGS= for
# the script's default). Every benchmark runs even if one fails; the summary comes last.
BENCH_FINGERPRINT_ARGS ?= --num 256 --num 1024
bench: setup compile ## Run every benchmark, then benchmarks/results/summary.md (figures vs goals)
	@failed=""
	for script in benchmarks/[!_]*.py; do
		[ "$$script" = benchmarks/summary.py ] && continue
		args=""; [ "$$script" = benchmarks/fingerprint.py ] && args="$(BENCH_FINGERPRINT_ARGS)"
		echo "== $$script $$args"
		$(PY) $$script $$args || failed="$$failed $$script"
	done
	echo "== benchmarks/summary.py"
	$(PY) benchmarks/summary.py
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed" >&2; exit 1; fi

clean: down ## Remove build outputs and local state (keeps .venv and node_modules)
	rm -rf .build contracts/.cache .run deployments/local.json
