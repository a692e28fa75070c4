# Two commands do all the set-up on a fresh machine (Python 3.11, Debian, no Docker):
#   make demo   – creates .venv, installs everything, runs the pipeline on embedded services
#   make test   – the same set-up, then lint, type checks and the whole test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: setup demo test lint typecheck unit stop bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || { \
		echo "installing Debian's redis-server"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[dev,models,airflow]"
	@touch $(STAMP)

demo: setup
	$(BIN)/ingest demo

stop:
	$(BIN)/ingest stop

lint: setup
	$(BIN)/ruff check src tests dags plugins bench

typecheck: setup
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q

unit: setup
	$(BIN)/pytest -q tests/unit

bench: setup
	$(BIN)/python bench/bench_pipeline.py

clean:
	rm -rf $(VENV) .ingest .mypy_cache .ruff_cache
