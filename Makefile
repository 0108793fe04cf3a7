# The README's two commands: `make run` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One BLAS thread: tickcast's matrices are small, and OpenBLAS's spinning threads slow them down
# several-fold on a busy machine (the service sets this itself; this covers tests and benchmarks).
export OPENBLAS_NUM_THREADS ?= 1
# Byte code is written and reused, whatever the calling environment says: the suite starts some 250
# Python processes (each `tickcast` command, each worker), and with PYTHONDONTWRITEBYTECODE set each
# of them compiles tickcast again and every pytest process rewrites the test modules again (5 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-reliability lint bench mutation install clean tools lock

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("tickcast needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# With the plot and browse extras, so that every command in the README works from the checkout
# (`tickcast plot`, `tickcast browse`).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[plot,browse]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# One full cycle on the default config (SQLite in the working directory), then the latest forecasts.
# Exit status 3 means "partial": some series could not be fetched (e.g. no network); the rest ran.
# One full cycle, then the samples' forecasts at four past origins (tickcast backfill), so that the
# realised-accuracy ledger has rows from the first minute.
SAMPLES := sample:sp500 sample:nasdaq sample:wti sample:core-cpi
run: $(VENV)/.installed
	$(BIN)/tickcast run || [ $$? -eq 3 ]
	$(BIN)/tickcast backfill -q --origins 4 $(SAMPLES)

# The suite validates docker-compose.yml with Debian's docker-compose (its `config` command works
# without a Docker engine), and runs the stack with it on a Docker engine (dockerd, from docker.io;
# the container test starts it when none is running) with base images built by mmdebstrap where
# the official ones cannot be pulled. Installed when missing and we may (root with apt);
# docker-compose is required, the engine's tools only for the container test, which says what is
# missing (and is skipped outside CI).
tools:
	@$(call apt_tool,docker-compose,docker-compose) || \
	  { echo "make test needs docker-compose (Debian: apt-get install docker-compose)"; exit 1; }
	@$(call apt_tool,dockerd,docker.io) || true
	@$(call apt_tool,mmdebstrap,mmdebstrap) || true
apt_tool = command -v $(1) >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get install -y -qq $(2) >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && apt-get install -y -qq $(2) >/dev/null)); }

# The image installs exactly the versions in requirements.lock (every package, with its hashes),
# resolved for every Python the image may have (3.11 and newer). After changing the dependencies
# in pyproject.toml: `make lock` (keeps the pinned versions that still fit), rebuild, commit the
# lock. `make lock LOCK_FLAGS=--upgrade` moves every package to its newest allowed release.
IMAGE_EXTRAS := browse dask plot postgres
lock: $(VENV)/.installed
	$(BIN)/pip install -q 'uv>=0.5,<1'
	$(BIN)/uv pip compile pyproject.toml $(IMAGE_EXTRAS:%=--extra %) --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command 'make lock' $(LOCK_FLAGS) -q -o requirements.lock

# Both cores: the suite runs on pytest-xdist workers, except the tests marked `serial` (the container
# test, cases timed against the clock), which run alone afterwards. Then the 25 slowest tests.
# Three workers on two cores: a fifth of the parallel tests' time is spent waiting (for a signal's
# grace period, an HTTP timeout, a scheduled second), and a third worker fills it; idle workers
# steal queued tests, so the run does not end on one worker's long tail.
TEST_WORKERS ?= 3
REPORTS := .test-reports
test: $(VENV)/.installed-dev tools
	@mkdir -p $(REPORTS)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not serial" --junitxml=$(REPORTS)/parallel.xml
	$(BIN)/python -m pytest -q -m serial -p no:xdist --junitxml=$(REPORTS)/serial.xml
	@$(BIN)/python tests/support/slowest.py 25 $(REPORTS)/parallel.xml $(REPORTS)/serial.xml

# ruff (lint and format) on the whole tree, mypy on the two packages; settings in pyproject.toml.
LINTED := service models migrations tests bench
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

test-reliability: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q tests/reliability --run-slow

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/daily_run.py
	$(BIN)/python bench/accuracy.py

# Mutation testing of the modules that carry the promises (slow: not part of make test). Writes
# bench/results/mutation.md; run it before calling a change to those modules done.
mutation: $(VENV)/.installed-dev
	$(BIN)/python bench/mutation.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache $(REPORTS)
