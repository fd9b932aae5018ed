# One entry point for people and CI. Everything installs from scratch into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := mock,postgres,napalm,nornir,bench,dev

.PHONY: help venv system-deps test test-fast test-legacy-ssh lint demo clean

help:
	@echo "make demo   set up, start a mock fleet, collect from it, print the fleet report"
	@echo "make test   set up and run the whole test suite (lint, types, tests)"

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

venv: $(BIN)/.installed

# Old VRP releases offer only SHA-1 key exchange, which paramiko 5 removed: --legacy-ssh
# needs paramiko<5. A second venv has it, so that path is tested too.
LEGACY_VENV ?= .venv-par4
$(LEGACY_VENV)/bin/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[mock,napalm,dev]' 'paramiko<5'
	touch $@

# PostgreSQL server binaries for the store tests (the tests start a throwaway cluster themselves)
# and Debian's chromium for the HTML report tests (headless).
system-deps:
	@scripts/install-system-deps

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

test: venv system-deps lint
	$(BIN)/pytest
	$(MAKE) test-legacy-ssh

# The SSH-facing tests again with paramiko<5 (SHA-1 key exchange, --legacy-ssh).
test-legacy-ssh: $(LEGACY_VENV)/bin/.installed
	$(LEGACY_VENV)/bin/pytest -q tests/e2e/test_security_legacy_ssh.py \
		tests/integration/test_transport.py tests/integration/test_hostkeys.py \
		tests/unit/ssh/test_transport_checks.py tests/e2e/test_security_hostkeys.py \
		tests/e2e/test_security_readonly.py

test-fast: venv
	$(BIN)/pytest -m 'not slow' -x -q

demo: venv
	$(BIN)/python -m mock_devices.demo

clean:
	rm -rf $(VENV) $(LEGACY_VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
