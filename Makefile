# Two commands matter: `make run` (embedded SQLite, inline tasks, demo data) and `make test`
# (the whole suite on PostgreSQL and Redis). See README.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cdp
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

.PHONY: run test bench lint audit venv venv-dev

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

run: venv
	$(PY) manage.py migrate --noinput -v0
	SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} $(PY) manage.py bootstrap
	@if [ -n "$$REDIS_URL" ]; then \
		echo "REDIS_URL is set: starting a Celery worker and beat beside the server"; \
		$(VENV)/bin/celery -A cdp worker -Q ingest,default,ml -l warning & worker=$$!; \
		$(VENV)/bin/celery -A cdp beat -l warning & beat=$$!; \
		trap 'kill -TERM $$worker $$beat 2>/dev/null; wait $$worker $$beat 2>/dev/null' EXIT INT TERM; \
		DEBUG=true $(PY) manage.py runserver $(HOST):$(PORT); \
	else \
		DEBUG=true $(PY) manage.py runserver $(HOST):$(PORT); \
	fi

# ruff; the layers contract and the no-cycles contract (pyproject.toml [tool.importlinter]);
# mypy on services, selectors and the pure cores (pyproject.toml [tool.mypy]).
lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	@$(MAKE) --no-print-directory audit

# pip-audit asks a vulnerability service about every pinned requirement and fails on a known
# vulnerability, or (--strict) on one it could not check: PyPI's advisory API
# (pypi.org/pypi/<name>/<version>/json) when it answers, else OSV's (api.osv.dev, the same
# advisories). A network that reaches neither (offline, or a registry mirror that serves
# packages but not that API) skips it with a message rather than reporting every package as
# "not found".
AUDIT_ARGS := --strict --disable-pip --no-deps --progress-spinner off -r requirements.txt -r requirements-dev.txt
audit: venv-dev
	@if $(PY) -c "import urllib.request as u; u.urlopen('https://pypi.org/pypi/pip/24.0/json', timeout=10)" \
		>/dev/null 2>&1; then \
		$(VENV)/bin/pip-audit $(AUDIT_ARGS); \
	elif $(PY) -c "import urllib.request as u; u.urlopen(u.Request('https://api.osv.dev/v1/query', \
		data=b'{\"package\": {\"name\": \"pip\", \"ecosystem\": \"PyPI\"}, \"version\": \"24.0\"}'), timeout=10)" \
		>/dev/null 2>&1; then \
		$(VENV)/bin/pip-audit --vulnerability-service osv $(AUDIT_ARGS); \
	else \
		echo "pip-audit skipped: neither PyPI's advisory API (https://pypi.org/pypi/NAME/VERSION/json) nor OSV's (https://api.osv.dev) answers from here"; \
	fi

test: venv-dev lint
	@# pytest-django creates its test database by connecting to the one named in DATABASE_URL:
	@# on a fresh machine that one does not exist yet, so create it (once, quietly).
	@URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) -c "import os, psycopg2; from urllib.parse import urlsplit, urlunsplit; \
		u = urlsplit(os.environ['URL']); name = u.path.lstrip('/'); \
		c = psycopg2.connect(urlunsplit(u._replace(path='/postgres'))); c.autocommit = True; \
		cur = c.cursor(); cur.execute('SELECT 1 FROM pg_database WHERE datname = %s', [name]); \
		cur.fetchone() or cur.execute('CREATE DATABASE \"%s\"' % name)" 2>/dev/null || true
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) manage.py makemigrations --check --dry-run -v0
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) -m pytest $(PYTEST_ARGS)

bench: venv-dev
	@# bench/ingest.py loads the server with wrk when it can (much lighter than its Python client).
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }; } \
		>/dev/null 2>&1; } || echo "wrk not installed: bench/ingest.py uses its Python load generator"
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cdp_bench} REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/2} \
		$(PY) -m bench $(BENCH_ARGS)
