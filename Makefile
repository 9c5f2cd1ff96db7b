# The two commands: `make run` (storefront with demo data) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
SANDBOX_PORT ?= 8765
# `make run PAYMENTS_FAKE=1 PAYMENT_PROVIDER=alipay`: the local WeChat Pay and Alipay fakes run beside the server and
# their settings are exported to it (docs/payments.md); they serve WeChat's OAuth too, which turns "Log in with WeChat"
# on against the fake (docs/accounts.md). Codes by SMS are in the server's log (the console SMS backend).
PAYMENTS_FAKE ?=
PAYMENTS_FAKE_PORT ?= 8770
PAYMENTS_FAKE_ENV := var/payment-gateways-fake/env

.PHONY: run test lint migrate demo worker beat bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# The sandbox affiliate network (external products, issue #12) runs in the background for as long as the server
# does: one shell, so the trap stops it when runserver exits (Ctrl-C included). Background jobs of a
# non-interactive shell ignore Ctrl-C, hence the kill. If the port is taken, the demo uses whatever answers there,
# and if nothing does, it warns and goes on without external products.
# Links the site builds (webhooks, reset mails, share links) point where runserver listens, unless SITE_URL is set.
run: export SITE_URL ?= http://$(HOST)
run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	@$(BIN)/python manage.py sandbox_network --port $(SANDBOX_PORT) & sandbox=$$!; payments=; \
	if [ -n "$(PAYMENTS_FAKE)" ]; then \
	  rm -f $(PAYMENTS_FAKE_ENV); \
	  $(BIN)/python manage.py payment_gateways_fake --port $(PAYMENTS_FAKE_PORT) --env-file $(PAYMENTS_FAKE_ENV) & \
	  payments=$$!; \
	  for _ in $$(seq 1 100); do [ -f $(PAYMENTS_FAKE_ENV) ] && break; sleep 0.2; done; \
	  set -a; . ./$(PAYMENTS_FAKE_ENV); set +a; \
	fi; \
	trap 'kill $$sandbox $$payments 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	export NETWORK_SANDBOX_URL="$${NETWORK_SANDBOX_URL:-http://127.0.0.1:$(SANDBOX_PORT)}"; \
	$(BIN)/python manage.py demo --wait-for-sandbox 15 && \
	echo "Serving on http://$(HOST)/  (admin: http://$(HOST)/$${ADMIN_URL:-admin/})" && \
	$(BIN)/python manage.py runserver $(HOST)

# The front-end tools from the npm registry (package-lock.json): axe-core for the page sweep's accessibility test,
# lucide-static for `manage.py build_icons`. Without npm, nothing is installed and the test says it was skipped.
# A node_modules that links to another checkout's is left alone (npm ci would empty the other checkout's).
node_modules/.package-lock.json: package-lock.json
	@if [ -L node_modules ]; then \
	  echo "make: node_modules links to another checkout's: not reinstalled here"; \
	elif command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error || echo "make: npm ci failed; the axe-core test will be skipped"; \
	else \
	  echo "make: npm not found; the axe-core test will be skipped (apt-get install nodejs npm, then npm ci)"; \
	fi

# The suite on every core, at most 2 (pytest-xdist; each worker has its own test database and Redis databases, see
# tests/parallel.py). --dist load: each worker runs its tests in pytest-django's order (transactional tests, which
# empty the database of the rows the migrations seed, after the others). --dist loadfile broke that order (a file's
# tests go together, so a later file's plain tests ran after another file's transactional ones and found no policy,
# plan or network: 170 failures in CI); the page sweep's module fixture is then made on both workers, which split its
# pages between them. TEST_WORKERS=0 runs it in this process; so does `PYTEST_ARGS="-n 0 ..."`, and pytest run
# directly (one file).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ "$$n" -gt 2 ] && n=2; echo $$n)
test: $(VENV)/.installed node_modules/.package-lock.json
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput

# A worker and beat work through a broker (CELERY_BROKER_URL, in the environment or .env). The embedded default has
# none and needs neither: `make run`'s server runs tasks in-process and the beat schedule itself (config/scheduler.py).
NEEDS_BROKER = $(BIN)/python -c "import sys, config.settings as s; s.CELERY_BROKER_URL or sys.exit('Set CELERY_BROKER_URL \
(redis://... or amqp://...) first. Without a broker there is no worker or beat to run: make run runs tasks and \
the periodic schedule in its own process.')"

worker: $(VENV)/.installed
	@$(NEEDS_BROKER)
	$(BIN)/celery -A config worker --loglevel INFO

beat: $(VENV)/.installed
	@$(NEEDS_BROKER)
	$(BIN)/celery -A config beat --loglevel INFO

bench: $(VENV)/.installed
	$(BIN)/python bench/tree.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
