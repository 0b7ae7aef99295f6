# The two commands: `make run` (the whole platform, in the foreground) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
UV := .tools/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never
export PYTHONUNBUFFERED := 1

# Exports DATABASE_URL / REDIS_URL for an embedded PostgreSQL / Redis when they are not already set.
SERVICES = eval "$$($(VENV)/bin/python -m referral_saas.embedded env)"
MANAGE = $(VENV)/bin/python manage.py

.PHONY: install install-test run test bench seed-large lint format migrate stop-embedded clean chromium

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Two installs into one .venv: `install` (what `make run` needs: the runtime dependencies only) and `install-test`
# (adds the `dev` extra: pytest, Playwright, schemathesis, hypothesis, ruff, ...). The runtime sync is --inexact so
# that it never removes what `install-test` added (a `make run` after a `make test` does not reinstall the extras).
$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --inexact --python "$(PYTHON)"
	@touch $@

$(VENV)/.installed-test: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras --python "$(PYTHON)"
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	@$(SERVICES); export DEBUG=$${DEBUG:-true}; set -e; \
	echo "==> migrating"; $(MANAGE) migrate --noinput; \
	echo "==> compiling translations and static files"; $(MANAGE) compiletranslations; \
	$(MANAGE) collectstatic --noinput -v0; \
	$(MANAGE) seed_demo; \
	echo "==> starting web (http://127.0.0.1:8000), worker and beat; Ctrl-C stops them all"; \
	exec $(VENV)/bin/honcho -f Procfile start

# Two pytest processes (pytest-xdist), each test file in one of them (a file's module fixtures start once; the system
# tier as one unit, first: tests/conftest.py); each
# process has its own database, Redis namespace and, for the system tier, static files. PYTEST_WORKERS=0 runs
# everything in this process.
PYTEST_WORKERS ?= 2
test: install-test chromium
	@$(SERVICES); $(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

# Debian's Chromium for the browser tests (Playwright cannot download its own browser on these networks). Installed
# when missing and possible (root and apt-get); otherwise the browser tests skip, except in CI where they fail.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "==> installing Debian's chromium for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "==> chromium is missing and cannot be installed here (needs root and apt-get)"; fi; \
	fi

bench: install-test
	@$(SERVICES); $(VENV)/bin/python -m bench $(BENCH_ARGS)

# The analytics data set (SCALE=10 for ten times) in a fresh benchmark database (<your database>_bench), rolled up.
seed-large: install-test
	@$(SERVICES); set -e; exports="$$($(VENV)/bin/python -m bench.analytics env)"; eval "$$exports"; \
	$(MANAGE) migrate --noinput -v0; $(VENV)/bin/python -m bench.seeding --scale $${SCALE:-1} --rollup

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	@$(SERVICES); $(MANAGE) makemigrations --check --dry-run

format: install-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrate: install
	@$(SERVICES); $(MANAGE) migrate

stop-embedded: install
	$(VENV)/bin/python -m referral_saas.embedded stop

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache
