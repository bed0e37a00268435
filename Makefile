# hvlab: `make run` (the conformance run and its report) and `make test` (lint, types,
# self-tests and the suites on real QEMU). Each sets up everything it needs, idempotently.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REPORTS ?= reports
PYTEST_ARGS ?=

.PHONY: help setup host-packages qemu-source venv images run test lint typecheck unit suites clean

help:
	@echo "make run    run the conformance suites on every local target, write $(REPORTS)/<run-id>/"
	@echo "make test   lint + mypy + self-tests + suites on real QEMU (what CI runs)"
	@echo "make setup  only install what is missing (Debian packages, venv, guest images)"

setup: host-packages qemu-source venv images

host-packages:
	@bash setup/host-packages.sh

# QEMU 7.2's own avocado tests and python/qemu, into the cache (tests/test_upstream_avocado.py)
qemu-source: host-packages
	@bash setup/qemu-source.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "venv: installing hvlab and its dependencies"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev,lab]'
	@touch $@

venv: $(STAMP)

images: venv
	@$(PY) -m harness.cli images

LINT_DIRS := $(wildcard harness simulator suites tests bench)

lint: venv
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)

typecheck: venv
	$(VENV)/bin/mypy --strict harness simulator

unit: setup
	$(VENV)/bin/pytest tests $(PYTEST_ARGS)

suites: setup
	$(VENV)/bin/pytest suites --report-dir $(REPORTS) $(PYTEST_ARGS)

#: make test runs aarch64 across the namespace lab for the cross-host migration only (the
#: other aarch64 lab placements: README, "On one machine"), to stay within 20 minutes
LAB_AARCH64 = not (aarch64 and labA and not test_live_migration)

test: setup
	@$(MAKE) --no-print-directory lint typecheck
	@export HVLAB_RUN=$$($(PY) -m harness.leaks $$$$); status=0; \
	  $(VENV)/bin/pytest tests suites -n 2 --dist loadgroup --netns-lab 2 --report-dir $(REPORTS) \
	    -k "$(LAB_AARCH64)" $(PYTEST_ARGS) \
	  || status=$$?; $(PY) -m harness.cli leaks || status=1; exit $$status

run: setup
	@export HVLAB_RUN=$$($(PY) -m harness.leaks $$$$); status=0; \
	  $(VENV)/bin/hvlab run --report-dir $(REPORTS) $(PYTEST_ARGS) || status=$$?; \
	  $(PY) -m harness.cli leaks || status=1; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
