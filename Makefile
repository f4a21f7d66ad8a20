# djwamp — the two commands: `make run` and `make test`.
# Everything they need is created here: the .venv, redis-server (Debian package) when missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# setuptools boxes an "Editable installation ... be careful with folders ..." notice on every
# editable install of a project whose packages are not in one src/ folder; it is not a problem
PIP    := PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint bench soak client node-config system-deps browser-deps clean help

help:
	@echo "make run    - start Redis (embedded), Crossbar and Django on http://127.0.0.1:$${DJWAMP_PORT:-8080}/"
	@echo "make test   - install what the tests need, then lint and run every test"
	@echo "make lint   - ruff (pyflakes, pycodestyle, import order, bugbear, pyupgrade; pyproject.toml)"
	@echo "make bench  - latency, throughput and connections side by side (Redis floor, Crossbar alone,"
	@echo "              djwamp WebSocket on 1 and 2 nodes, SSE fallback, Django Channels); ~5 min"
	@echo "make soak   - 2,000 connections, 100 events/s for 60 s: loss, latency, RSS growth; ~2 min"

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

# One stamp per extra, rebuilt when the packaging metadata changes.
$(VENV)/.installed-router: $(VENV)/bin/activate setup.cfg pyproject.toml
	$(PIP) install --quiet -e '.[router]'
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed-router
	$(PIP) install --quiet -e '.[test]'
	@touch $@

# only for `make bench` (Django Channels, channels-redis, daphne for the comparison row)
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PIP) install --quiet -e '.[bench]'
	@touch $@

# Debian packages when missing: redis-server (tests start private ones on free ports) and,
# for the browser tests, chromium (Playwright drives Debian's; it never downloads one).
APT_INSTALL = $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
system-deps:
	@command -v redis-server >/dev/null 2>&1 || { echo "installing redis-server (Debian package) ..."; \
	  $(APT_INSTALL) update -qq && $(APT_INSTALL) install -y -qq redis-server >/dev/null; }

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (Debian package) ..."; \
	  $(APT_INSTALL) update -qq && $(APT_INSTALL) install -y -qq chromium >/dev/null; }

# The browser client: its npm dependencies (exact versions from the lockfile).
autobahn_js/node_modules/.installed: autobahn_js/package.json autobahn_js/package-lock.json
	cd autobahn_js && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Rebuild the bundle Django serves (django_site/realtime/static/realtime/djwamp.js); commit it.
client: autobahn_js/node_modules/.installed
	cd autobahn_js && npm run build

# redis-server is needed only for the private Redis, i.e. when REDIS_URL is not set
run: $(VENV)/.installed-router $(if $(REDIS_URL),,system-deps)
	@$(PY) django_site/manage.py migrate --noinput --verbosity 0
	@$(PY) -m router run

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check

test: lint $(VENV)/.installed-test system-deps browser-deps autobahn_js/node_modules/.installed
	cd autobahn_js && npm test
	$(PY) -m pytest $(PYTEST_ARGS)

# the benchmark's load generator (bench/loadgen.mjs): ws, node 20 has no global WebSocket
bench/node_modules/.installed: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: $(VENV)/.installed-bench system-deps bench/node_modules/.installed
	$(PY) -m pytest bench -m bench -s $(PYTEST_ARGS)

soak: $(VENV)/.installed-bench system-deps bench/node_modules/.installed
	$(PY) -m pytest bench -m soak -s $(PYTEST_ARGS)

# Regenerate .crossbar/config.json from router/nodeconfig.py (a test keeps them in sync).
node-config: $(VENV)/.installed-router
	$(PY) -m router node-config --cbdir .crossbar

clean:
	rm -rf $(VENV) .run autobahn_js/node_modules bench/node_modules .hypothesis
