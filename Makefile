# One entry point for people and CI. Everything installs from scratch into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := mock,postgres,napalm,bench,dev

.PHONY: help venv system-deps test test-fast lint demo clean

help:
	@echo "make demo   set up, start a mock fleet, collect from it, print the fleet report"
	@echo "make test   set up and run the whole test suite (lint, types, tests)"

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

venv: $(BIN)/.installed

# PostgreSQL server binaries for the store tests (the tests start a throwaway cluster themselves).
system-deps:
	@scripts/install-system-deps

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: venv system-deps lint
	$(BIN)/pytest

test-fast: venv
	$(BIN)/pytest -m 'not slow' -x -q

demo: venv
	$(BIN)/python -m mock_devices.demo

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
