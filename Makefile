# The two commands a newcomer needs are `make run` and `make test`; the rest serve them and CI.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Stamps name pyproject.toml's hash: editing it reinstalls. `make run` installs only what running
# needs; test, lint and bench add the dev tools on top.
HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
STAMP := $(VENV)/.installed-dev-$(HASH)
PORT ?= 8000
# `make` targets are for development: DEBUG on unless the environment says otherwise.
DEBUG ?= 1
export PORT DEBUG

.PHONY: run test lint format bench load faults install

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	rm -f $(VENV)/.installed-run-* && touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-dev-* && touch $(STAMP)

install: $(STAMP)

# honcho gives each process its own PORT (the worker's is 100 above the web's): SITE_URL is set
# once here so links in the worker's emails name the web server's address.
run: $(RUN_STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py sync_schedules
	$(PY) manage.py seed_demo --if-empty --accounts 50
	@echo ""
	@echo "  opsplatform is starting on http://127.0.0.1:$(PORT)/  (admin: /admin/, API docs: /api/v1/docs)"
	@echo "  Demo logins are listed above. Ctrl-C stops the web server and the worker."
	@echo ""
	SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)} $(VENV)/bin/honcho --procfile Procfile.dev start

# The suite on two processes (one database each), then the browser tests in one process
# (Playwright's event loop and the live server share it).
test: $(STAMP)
	$(PY) -m pytest -m "not e2e" -n 2 $(PYTEST_ARGS)
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks measure PostgreSQL (the local server unless DATABASE_URL says otherwise).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/opsplatform_bench
bench: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} $(PY) -m pytest tests/bench -s -q \
		-o addopts="-p no:cacheprovider" $(PYTEST_ARGS)

# The production topology under load (loadtest/run.py): gunicorn ×3, two qclusters, PostgreSQL
# and Redis, 10k demo accounts (seeded once), Locust headless on loopback; fails when a target
# of docs/performance.md is missed. LOAD_USERS, LOAD_SECONDS… tune it (see loadtest/run.py).
LOAD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/opsplatform_load
LOAD_REDIS_URL ?= redis://127.0.0.1:6379/5
load: $(STAMP)
	LOAD_DATABASE_URL=$(LOAD_DATABASE_URL) LOAD_REDIS_URL=$(LOAD_REDIS_URL) $(PY) loadtest/run.py

# Fault scripts (tests/faults and the killed-worker test): real processes killed, restarted
# and stopped; PostgreSQL restarts use a throwaway cluster on port 5499, Redis stops its own.
FAULTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/opsplatform_faults
FAULTS_REDIS_URL ?= redis://127.0.0.1:6379/6
faults: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(FAULTS_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(FAULTS_REDIS_URL)} \
		$(PY) -m pytest tests/faults tests/opsplatform/test_redis_topology.py -p no:randomly -v -s \
		-o addopts="-ra --strict-markers -p no:cacheprovider" $(PYTEST_ARGS)
