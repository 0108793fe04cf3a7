# tickcast: the scheduled forecasting service (`tickcast serve`) and, with another command, the
# Datasette browser over its tables (`tickcast browse`). See docker-compose.yml.

# --- build: wheels for tickcast and everything it needs (binary wheels: no compiler involved) ---
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY models ./models
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[browse,plot,postgres]"

# --- run: the wheels installed, nothing else (no compilers, no test or benchmark extras) ---
FROM python:3.12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --user-group tickcast \
    && mkdir /data /config \
    && chown tickcast:tickcast /data
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels "tickcast[browse,plot,postgres]" \
    && rm -rf /tmp/wheels
ENV PYTHONUNBUFFERED=1 \
    TZ=America/New_York \
    TICKCAST_DATA_DIR=/data
# SQLite in WAL mode keeps -wal/-shm files beside the database: /data is a directory volume.
# yfinance's cache goes to /data/yfinance-cache (tickcast puts it in the data directory).
VOLUME ["/data"]
WORKDIR /data
USER tickcast
EXPOSE 8001
CMD ["tickcast", "serve"]
