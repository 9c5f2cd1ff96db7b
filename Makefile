# The two commands: `make run` (storefront with demo data) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: run test lint migrate demo worker beat bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	@echo "Serving on http://$(HOST)/  (admin: http://$(HOST)/$${ADMIN_URL:-admin/})"
	$(BIN)/python manage.py runserver $(HOST)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput

worker: $(VENV)/.installed
	$(BIN)/celery -A config worker --loglevel INFO

beat: $(VENV)/.installed
	$(BIN)/celery -A config beat --loglevel INFO

bench: $(VENV)/.installed
	$(BIN)/python bench/tree.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
