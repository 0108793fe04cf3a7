# The README's two commands: `make run` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One BLAS thread: tickcast's matrices are small, and OpenBLAS's spinning threads slow them down
# several-fold on a busy machine (the service sets this itself; this covers tests and benchmarks).
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: run test test-reliability bench install clean tools

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("tickcast needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# With the plot extra, so that every command in the README works from the checkout.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[plot]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# One full cycle on the default config (SQLite in the working directory), then the latest forecasts.
# Exit status 3 means "partial": some series could not be fetched (e.g. no network); the rest ran.
run: $(VENV)/.installed
	$(BIN)/tickcast run || [ $$? -eq 3 ]

# The suite validates docker-compose.yml with Debian's docker-compose (its `config` command works
# without a Docker engine); install it when missing and we may (root with apt).
tools:
	@command -v docker-compose >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -qq docker-compose >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && apt-get install -y -qq docker-compose >/dev/null)); } || \
	  { echo "make test needs docker-compose (Debian: apt-get install docker-compose)"; exit 1; }

test: $(VENV)/.installed-dev tools
	$(BIN)/python -m pytest -q

test-reliability: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q tests/reliability --run-slow

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/daily_run.py
	$(BIN)/python bench/accuracy.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
