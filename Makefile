# Two commands: `make run` (app + demo data on SQLite) and `make test` (whole suite, SQLite then PostgreSQL).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app lti_tool
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PORT ?= 5000
PYTHON ?= python3
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Queue tests use a queue name of their own on this Redis, so parallel runs never collide.
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
ARTIFACTS ?= $(CURDIR)/test-artifacts
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-run run demo-reset test test-sqlite test-postgres chromium postgres redis lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)

# What running needs (make run) and what testing needs on top (make test): two stamps.
$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml $(RUN_STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install-run: $(RUN_STAMP)

install: $(STAMP)

# The task queue is a SQLite file (instance/tasks.sqlite3): the worker runs next to the server, no broker needed;
# e-mails are printed by the worker.
run: install-run
	LTI_TOOL_ENV=development $(FLASK) db upgrade
	LTI_TOOL_ENV=development $(FLASK) demo load --base-url http://127.0.0.1:$(PORT)
	@echo "Open http://127.0.0.1:$(PORT)/dev/ to launch as the demo technician, manager, observer or administrator."
	LTI_TOOL_ENV=development $(FLASK) lti worker & worker=$$!; trap "kill $$worker" EXIT; \
	  LTI_TOOL_ENV=development $(FLASK) run --host 127.0.0.1 --port $(PORT)

# Start the demo over: the development SQLite database and its attachments are deleted and loaded again.
demo-reset: install-run
	rm -f instance/development.sqlite3
	rm -rf instance/attachments
	LTI_TOOL_ENV=development $(FLASK) db upgrade
	LTI_TOOL_ENV=development $(FLASK) demo load --base-url http://127.0.0.1:$(PORT)

# Debian's chromium for the browser tests (Playwright drives it; no browser download works here).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The local PostgreSQL cluster, started if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start && \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

# Redis (the task queue's broker for the PostgreSQL run), started if it is down.
redis:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  $(SUDO) mkdir -p /var/lib/redis /var/log/redis && \
	  $(SUDO) redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
	    --dir /var/lib/redis --logfile /var/log/redis/ci.log && \
	  for i in $$(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done; }

lint: install
	$(VENV)/bin/ruff check lti_tool config tests bench

test-sqlite: install chromium
	ARTIFACTS_DIR=$(ARTIFACTS)/sqlite $(PY) -m pytest

test-postgres: install chromium postgres redis
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) ARTIFACTS_DIR=$(ARTIFACTS)/postgres $(PY) -m pytest

test: lint test-sqlite test-postgres
	@echo "Screenshots of the main pages: $(ARTIFACTS)"

# The launch next to a plain pylti1p3 tool and a bare Flask app (and bench/pages.py when present); see bench/README.md.
bench: install postgres
	$(PY) bench/compare.py
