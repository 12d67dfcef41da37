# Set-up and checks. `make demo` runs the service on one machine; `make test` runs what CI runs.
# Both create .venv on first use and reinstall into it when pyproject.toml changes.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OPENAPI_CHECK := $(VENV)/openapi-generated.yaml

.PHONY: help demo test services mysql-build-deps lint check openapi openapi-check pytest e2e worker

help:
	@echo "make demo     the service with an embedded PostgreSQL 16 and demo data, on http://127.0.0.1:8000"
	@echo "make test     lint, Django checks, migrations check, OpenAPI sync check, pytest, e2e (what CI runs)"
	@echo "make e2e      the generated-client flow and schemathesis, against live servers"
	@echo "make lint     ruff (lint and format), mypy and the import contracts (import-linter)"
	@echo "make openapi  regenerate openapi.yaml"
	@echo "make worker   a Celery worker (CELERY_BROKER_URL, default redis://127.0.0.1:6379/0)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: `.venv/.installed` stands for `pip install -e .`, `.venv/.installed-test` for `-e '.[test]'`.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

# The test extra holds mysqlclient, which is built here from source (it ships no Linux wheels).
$(VENV)/.installed-test $(VENV)/.installed-mysql: | mysql-build-deps

# mysqlclient, Django's MySQL/MariaDB driver, compiles against MariaDB Connector/C, found with
# pkg-config: install Debian's libmariadb-dev and pkg-config when they are missing.
mysql-build-deps:
	@if ! pkg-config --exists mariadb 2>/dev/null && ! pkg-config --exists mysqlclient 2>/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "installing libmariadb-dev and pkg-config, to build mysqlclient"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null; \
		else \
			echo "mysqlclient needs MariaDB Connector/C and pkg-config to build: install libmariadb-dev and pkg-config" \
				"(Debian/Ubuntu, as root) or your system's MySQL/MariaDB client headers" >&2; \
			exit 1; \
		fi; \
	fi

demo: $(VENV)/.installed-demo
	$(BIN)/python -m changeapi.demo_server

# The checks run against the local PostgreSQL, unless DATABASE_URL says otherwise.
test lint check openapi openapi-check pytest e2e: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/schemagate
test lint check openapi openapi-check pytest e2e: export SHADOW_DATABASE_PREFIX ?= sgtest_

test: services lint check openapi-check pytest e2e

# Start the local PostgreSQL, Redis and MariaDB (the MySQL/MariaDB shadow of the tests, root
# without a password at 127.0.0.1:3306) if they are installed here but stopped.
MARIADB_PING := mariadb-admin --protocol=tcp --host=127.0.0.1 --port=3306 --user=root --connect-timeout=2 ping
services:
	pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	redis-cli ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
		--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@if ! command -v mariadb-admin >/dev/null || [ ! -x /usr/sbin/mariadbd ]; then \
		echo "make services: MariaDB is not installed (mariadb-admin or /usr/sbin/mariadbd is missing):" \
			"apt-get install mariadb-server; the MySQL/MariaDB tests need it at 127.0.0.1:3306" >&2; \
		exit 1; \
	fi
	@if ! $(MARIADB_PING) >/dev/null 2>&1; then \
		echo "starting MariaDB"; \
		install -d -o mysql -g mysql /run/mysqld; \
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; \
		for _ in $$(seq 60); do $(MARIADB_PING) >/dev/null 2>&1 && break; sleep 0.5; done; \
		$(MARIADB_PING) >/dev/null 2>&1 || { \
			echo "make services: MariaDB did not answer at 127.0.0.1:3306 within 30 s (see /var/log/mysql/error.log)" >&2; \
			exit 1; }; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy config changeapi approvals
	$(BIN)/lint-imports

check: $(VENV)/.installed-test
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

openapi: $(VENV)/.installed-test
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file openapi.yaml

# The committed openapi.yaml must be what the code generates.
openapi-check: $(VENV)/.installed-test
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file $(OPENAPI_CHECK)
	diff -u openapi.yaml $(OPENAPI_CHECK)

# In parallel processes (pytest-xdist); tests/conftest.py gives each its own databases.
PYTEST_WORKERS ?= 3
pytest: $(VENV)/.installed-test
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --ignore=tests/e2e --durations=25

# A client generated from openapi.yaml runs the whole flow; schemathesis fuzzes a gunicorn on the schema.
e2e: $(VENV)/.installed-test
	$(BIN)/pytest tests/e2e

worker: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/0
worker: $(VENV)/.installed
	$(BIN)/celery -A config worker --loglevel=INFO
