# The two commands of the README: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test install install-dev peers lint format serve bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

## Runs the whole product on the embedded default (DuckDB warehouse + SQLite state).
demo: install
	$(BIN)/zerocopy demo

## Each warehouse peer installs itself into its own virtualenv under .peers/ (see tests/peers/).
peers: $(BIN)/python
	@set -e; for script in tests/peers/*/install.sh; do \
		[ -f "$$script" ] || continue; echo "peer: $$script"; bash "$$script"; \
	done

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy zerocopy api dialects

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Linters, then the whole suite (unit, integration, conformance, acceptance) on 2 workers.
test: install-dev peers lint
	$(BIN)/pytest -n auto --dist loadgroup --durations=25 $(PYTEST_ARGS)

serve: install
	$(BIN)/zerocopy serve

bench: install-dev
	$(BIN)/python bench/refresh.py
	$(BIN)/python bench/sql_check.py

clean:
	rm -rf $(VENV) .peers .cache .pytest_cache
