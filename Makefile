# KueKan — one way to run each thing. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENVFILE := .kuekan/env
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help venv services run test check lint types migrate seed clean-embedded

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the project with its dev tools

services: venv ## find PostgreSQL and Redis (configured URLs), or start embedded ones
	@$(BIN)/python ops/dev/services.py ensure

run: services ## run API + worker with demo data on http://$(HOST):$(PORT)
	@set -a; source $(ENVFILE); set +a; \
	 fail() { echo "make run: $$1 failed (see above); not starting the service" >&2; exit 1; }; \
	 $(BIN)/python -m kuekan migrate || fail migrate; \
	 $(BIN)/python -m kuekan seed || fail seed; \
	 admin=$$($(BIN)/python -m kuekan token --role admin --org pao --line-sub Uadmin-pao) \
	   || fail "token (admin)"; \
	 member=$$($(BIN)/python -m kuekan token --role member --line-sub Udemo-0) \
	   || fail "token (member)"; \
	 echo "admin token:  $$admin"; echo "member token: $$member"; \
	 $(BIN)/python -m kuekan worker & worker=$$!; \
	 trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	 echo "KueKan on http://$(HOST):$(PORT)  (OpenAPI: /schema, metrics: /metrics)"; \
	 $(BIN)/python -m kuekan serve --host $(HOST) --port $(PORT)

test: services ## run the whole test suite on real PostgreSQL and Redis
	@set -a; source $(ENVFILE); set +a; \
	 $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "pytest selected no tests: failing" >&2; exit 1; fi; exit $$rc

lint: venv ## ruff
	@$(BIN)/ruff check src tests loadtests ops

types: venv ## mypy --strict
	@$(BIN)/mypy

check: lint types test ## lint + types + tests

migrate: services ## apply SQL migrations to the configured database
	@set -a; source $(ENVFILE); set +a; $(BIN)/python -m kuekan migrate

seed: migrate ## load demo data
	@set -a; source $(ENVFILE); set +a; $(BIN)/python -m kuekan seed

clean-embedded: ## stop embedded PostgreSQL/Redis started by `make services`
	@$(BIN)/python ops/dev/services.py stop

-include loadtests/Makefile.inc
