# tickcast: the scheduled forecasting service (`tickcast serve`) and, with another command, the
# Datasette browser over its tables (`tickcast browse`). See docker-compose.yml.
#
# Plain Dockerfile instructions only (no BuildKit-only `RUN --mount`): it builds the same with the
# classic builder, which docker-compose 1.29 uses, and with BuildKit (docker compose v2).

# The base image is a build argument so that a mirror or a local copy can stand in for it.
ARG PYTHON_IMAGE=python:3.12-slim

# --- deps: a virtual environment with exactly the locked versions -------------------------------
FROM ${PYTHON_IMAGE} AS deps
# requirements.lock (`make lock`) pins every package and its hashes: two builds install the same
# files. It comes before the sources, so that changing the code reuses this stage.
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/tickcast \
    && /opt/tickcast/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock

# --- build: tickcast itself into that environment; its own files gathered under /stage ----------
FROM deps AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY models ./models
COPY migrations ./migrations
# --no-index: whatever tickcast[...] needs must already be installed from the lock, or this fails;
# --no-build-isolation: built with the locked setuptools. Then every file the install wrote (its
# RECORD: the package, its byte code, its metadata, bin/tickcast) is copied to /stage at its own
# path, so that the run stage adds them as one small layer over the unchanged dependencies (-I: the
# installed tickcast, not the build's tickcast.egg-info in the working directory).
RUN /opt/tickcast/bin/pip install --no-cache-dir --no-index --no-build-isolation ".[browse,dask,plot,postgres]" \
    && /opt/tickcast/bin/pip check \
    && /opt/tickcast/bin/python -I -c "import importlib.metadata as m, os, pathlib, shutil; \
[(d := pathlib.Path('/stage' + p), d.parent.mkdir(parents=True, exist_ok=True), shutil.copy2(p, d)) \
 for p in (os.path.normpath(f.locate()) for f in m.distribution('tickcast').files) if os.path.isfile(p)]"

# --- run: that environment in two layers; no wheels, sources, caches or compilers --------------
FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group tickcast \
    && mkdir /data /config \
    && chown tickcast:tickcast /data
# The dependencies (a layer that changes only with requirements.lock), then tickcast's own files.
COPY --from=deps /opt/tickcast /opt/tickcast
COPY --from=build /stage/ /
ENV PATH=/opt/tickcast/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TZ=America/New_York \
    TICKCAST_DATA_DIR=/data
# SQLite in WAL mode keeps -wal/-shm files beside the database: /data is a directory volume.
# yfinance's cache goes to /data/yfinance-cache (tickcast puts it in the data directory).
VOLUME ["/data"]
WORKDIR /data
USER tickcast
# No EXPOSE: only the browse service listens (on 8001, declared in docker-compose.yml).
CMD ["tickcast", "serve"]
