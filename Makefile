# The two commands of the README: `make run` and `make test`. Both use .venv/ at the root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_TEST_PACKAGES := chromium chromium-driver postgresql redis-server

.PHONY: run test lint bench system-deps clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) -m app

# Debian packages the tests drive for real: headless Chromium, PostgreSQL, Redis.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

test: $(VENV)/.dev system-deps
	$(PY) -m ruff check app bench tests
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(PY) -m ruff check app bench tests
	$(PY) -m ruff format --check app bench tests

bench: $(VENV)/.runtime
	$(PY) bench/exchange_day.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis
