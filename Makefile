# Two commands: `make run` (app + demo data on SQLite) and `make test` (whole suite, SQLite then PostgreSQL).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app lti_tool
STAMP := $(VENV)/.installed
PYTHON ?= python3
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
ARTIFACTS ?= $(CURDIR)/test-artifacts
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test test-sqlite test-postgres chromium postgres lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	LTI_TOOL_ENV=development $(FLASK) db upgrade
	LTI_TOOL_ENV=development $(FLASK) demo load
	@echo "Open http://127.0.0.1:5000/dev/ to launch as the demo technician or manager."
	LTI_TOOL_ENV=development $(FLASK) run --host 127.0.0.1 --port 5000

# Debian's chromium for the browser tests (Playwright drives it; no browser download works here).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The local PostgreSQL cluster, started if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start && \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

lint: install
	$(VENV)/bin/ruff check lti_tool config tests bench

test-sqlite: install chromium
	ARTIFACTS_DIR=$(ARTIFACTS)/sqlite $(PY) -m pytest

test-postgres: install chromium postgres
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) ARTIFACTS_DIR=$(ARTIFACTS)/postgres $(PY) -m pytest

test: lint test-sqlite test-postgres
	@echo "Screenshots of the main pages: $(ARTIFACTS)"

bench: install postgres
	$(PY) bench/launch.py
