# The README's two commands: `make run` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-reliability bench install clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("tickcast needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# One full cycle on the default config (SQLite in the working directory), then the latest forecasts.
# Exit status 3 means "partial": some series could not be fetched (e.g. no network); the rest ran.
run: $(VENV)/.installed
	$(BIN)/tickcast run || [ $$? -eq 3 ]

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

test-reliability: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q tests/reliability --run-slow

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
