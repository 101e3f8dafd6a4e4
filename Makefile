# PPSS follow-up. `make demo` runs the whole follow-up on demo data; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
YEAR ?= 2016
LAB_ARGS ?=
SCALE ?= city
export UV_PYTHON_DOWNLOADS := never

.PHONY: help setup demo test test-fast lint lab bench methods attack clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: every process (the report's CLI and kernel, each test) then reads .pyc
# files instead of compiling the libraries' sources, also where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --compile-bytecode
	touch $@

setup: $(VENV)/.synced ## create .venv from the lock file (uv.lock)

# One process: the ingest's workers start (importing Great Expectations) while the demo data are written.
demo: setup ## write demo data, ingest, build and report (reports/<year>/, YEAR=2016 by default)
	$(VENV)/bin/ppss run --demo --raw data/raw/demo --year $(YEAR)
	@echo "Report: reports/$(YEAR)/uppfoljning_$(YEAR).html  (validation: reports/validation/index.html)"

# One pytest worker per core, each test file on one worker (its module fixtures built once):
# most tests run one process on one core, so two cores halve the suite.
PYTEST_PARALLEL ?= -n auto --dist loadfile

test: setup ## run the test suite (unit, end-to-end, notebooks, browser), a worker per core
	$(VENV)/bin/pytest $(PYTEST_PARALLEL)

test-fast: setup ## the tests without the end-to-end runs
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) -m "not e2e"

lint: setup ## ruff
	$(VENV)/bin/ruff check pipelines tests

# Kernels talk over IPC sockets in Jupyter's runtime folder (no TCP port: nothing unencrypted,
# no warning about it); lab/settings/overrides.json is the project's JupyterLab defaults (no
# "get notified about Jupyter news?" toast, no update check: the lab makes no outside request).
LAB_SETTINGS := $(CURDIR)/lab/settings

lab: setup ## JupyterLab on the notebooks (store read-only); remote: make lab LAB_ARGS="--no-browser --port=8888", ssh -L 8888:localhost:8888, open the printed URL with its token
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --KernelManager.transport=ipc \
		--LabApp.app_settings_dir=$(LAB_SETTINGS) $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

bench: setup ## parse floor and every stage side by side, SCALE=demo|city|country (default city; takes a while)
	$(VENV)/bin/python -m benchmarks.run --scale $(SCALE)

methods: setup ## the methods harness: estimators on 20 worlds without and 20 with effects (benchmark, ~30 min)
	$(VENV)/bin/python -m benchmarks.methods --seeds 20 --scale small

attack: setup ## an outside reader's attack on everything a tiny store publishes (every year, four district reports, a second threshold, the parameter sets; 15-30 min)
	PPSS_ATTACK=1 $(VENV)/bin/pytest tests/test_reader_attack.py -n 0 -q --timeout 3600

clean: ## remove the store, reports and demo data (raw exports elsewhere are never touched)
	rm -rf data/processed/*.duckdb* data/raw/demo reports/[0-9]* reports/validation  # the ledger (ppss.duckdb.ledger) too
