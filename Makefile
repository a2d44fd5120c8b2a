# betml: `make demo` runs the main job on embedded defaults, `make test` runs the tests.
# Both create .venv on first use and install the pinned environment (constraints.txt) into it.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.betml-installed
# pip's local mirrors on some machines print one harmless warning per package: keep logs readable.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true

PYTEST_ARGS ?=
DEMO_SEED ?= 7

.PHONY: help install demo serve-up serve-down test test-learning lint format clean proto proto-go

help:
	@echo "make demo           simulate a league, import real football-data seasons, sweep and promote both model families, print their holdout table, then start a local Ray head and leave the Serve app running on it"
	@echo "make serve-up       start the local Ray head (if needed) and deploy the Serve app on it"
	@echo "make serve-down     stop Serve and the local Ray head"
	@echo "make test           run the test suite (unit, integration, PostgreSQL when TEST_DATABASE_URL is set)"
	@echo "make test-learning  run the learning tests (slow: models must learn something)"
	@echo "make lint           ruff and mypy"
	@echo "make proto          regenerate the Python gRPC modules from serve/proto/betml/v1/ml_service.proto"
	@echo "make proto-go       generate the Go client code from the proto and build the example Go client (needs go)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]" 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import betting, cluster, ray, mlflow, lightgbm, sqlalchemy"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/betml data simulate --sport football --seasons 4 --seed $(DEMO_SEED)
	@if [ -d ../shared/data/football-data/E0 ]; then \
		$(BIN)/betml data import-football ../shared/data/football-data/E0/2022-23.csv ../shared/data/football-data/E0/2023-24.csv; \
	fi
	$(BIN)/betml data features --sport football --output var/features/football.parquet
	$(BIN)/betml data stats
	$(BIN)/betml sweep ensemble --config configs/sweeps/demo-lightgbm.yaml --promote
	$(BIN)/betml sweep classifier --config configs/sweeps/demo-classifier.yaml --promote
	$(BIN)/betml models report
	BIN=$(BIN) cluster/deploy/local.sh up

serve-up: $(STAMP)
	BIN=$(BIN) cluster/deploy/local.sh up

serve-down: $(STAMP)
	BIN=$(BIN) cluster/deploy/local.sh down

test: $(STAMP)
	$(BIN)/python -m pytest -m "not learning" $(PYTEST_ARGS)

test-learning: $(STAMP)
	$(BIN)/python -m pytest -m learning $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy betting cluster

proto: $(STAMP)
	$(BIN)/python -m serve.proto.generate

proto-go: $(STAMP)
	PYTHON=$(BIN)/python serve/proto/go_client/build.sh

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
