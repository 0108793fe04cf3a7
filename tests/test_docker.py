"""`docker compose up` for real: the image built from this checkout and the stack run with Debian's
docker-compose 1.29 on a real Docker engine, as a user runs it.

The engine is the one reachable, else a dockerd this test starts (support/docker_engine.py); the
base images are the official ones when they can be pulled, else stand-ins built from Debian
packages (support/base_images.py). The stack runs under its own project name, with the browse
port on 127.0.0.1 only and a compose override that shortens the healthchecks; `down -v` removes
it at the end whatever happened. No engine: the test says why and is skipped, except in CI
(CI=true), where that is a failure. Image size and timings are printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tickcast import __version__
from tickcast.service.frequencies import horizon

from .support import report
from .support.base_images import POSTGRES, PYTHON, base_image
from .support.compose import docker_compose
from .support.docker_engine import Engine, EngineUnavailable, docker_engine
from .support.pg import free_port
from .support.small_model import FAST_MODEL
from .support.tables import ROWS_PER_STEP
from .support.web import fetch_json

# The container test builds images and runs whole stacks: alone, after the parallel part.
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "tickcast-test"  # fixed: a run killed half-way is cleaned up by the next (runs take turns)
IMAGE = "tickcast-test:latest"  # not the compose file's tickcast:latest, which may be a user's
SERVICES_OF_THE_IMAGE = ("tickcast", "browse", "tickcast-pg", "tickcast-dask")
DASK_NODES = ("dask-scheduler", "dask-worker")  # the image too, with no config and healthchecks of their own
SAMPLES = {"sample:sp500", "sample:core-cpi"}
# each sample forecasts its frequency's default horizon: a trading week for prices, 18 months for CPI;
# the published forecast is one row per step in `tickcast forecasts` and the canned query `latest`
ROWS = horizon("B") + horizon("M")
# the table holds, per step, the published forecast and each model's own, each at every level
TABLE_ROWS = ROWS * ROWS_PER_STEP

CONFIG = (
    """
[service]
workers = 1
[watchlist]
sample = ["sp500", "core-cpi"]
"""
    + FAST_MODEL
)


def override(config_dir: Path) -> str:
    """The test's compose override: its own image name, builds on the host's network (where the
    package registries are reachable), its config, and healthchecks every few seconds."""
    lines = ["services:"]
    for name in SERVICES_OF_THE_IMAGE:
        lines += [
            f"  {name}:",
            f"    image: {IMAGE}",
            "    build:",
            "      network: host",
            "    volumes:",
            f"      - {config_dir}:/config:ro",
            "    healthcheck:",
            "      interval: 2s",
            "      start_period: 10m",
        ]
    for name in DASK_NODES:
        lines += [f"  {name}:", f"    image: {IMAGE}", "    build:", "      network: host"]
    lines += ["  postgres:", "    healthcheck:", "      interval: 1s"]
    return "\n".join(lines) + "\n"


class Compose:
    def __init__(self, engine: Engine, override_file: Path, env: dict):
        self.engine = engine
        self.argv = [
            docker_compose(),
            "--ansi",
            "never",
            "-p",
            PROJECT,
            "-f",
            str(ROOT / "docker-compose.yml"),
            "-f",
            str(override_file),
        ]
        # Only the variables a user would set: none of the suite's own TICKCAST_* settings.
        self.env = {k: v for k, v in engine.env().items() if not k.startswith("TICKCAST_")} | env
        self.containers: dict[str, str] = {}  # service -> container id, until the next up or down

    def __call__(
        self, *args: str, timeout: float = 600, check: bool = True, binary: bool = False, postgres: bool = False
    ):
        profile = ["--profile", "postgres", "--profile", "dask"] if postgres else []  # every profile
        if args[0] in ("up", "down"):
            self.containers.clear()
        done = subprocess.run(
            [*self.argv, *profile, *args],
            env=self.env,
            capture_output=True,
            text=not binary,
            timeout=timeout,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            stderr = done.stderr if not binary else done.stderr.decode(errors="replace")
            raise AssertionError(f"docker-compose {' '.join(args)} failed ({done.returncode}):\n{stderr[-3000:]}")
        return done

    def container(self, service: str) -> str:
        if service not in self.containers:
            found = self("ps", "-q", service, postgres=True).stdout.strip()
            assert found, f"no container for {service}"
            self.containers[service] = found
        return self.containers[service]

    def inspect(self, service: str) -> dict:
        return json.loads(self.engine.docker("inspect", self.container(service)).stdout)[0]

    def logs(self, service: str) -> str:
        """The service's output so far (docker logs: what `docker-compose logs` shows, quicker to poll)."""
        return subprocess.run(
            ["docker", "logs", self.container(service)],
            env=self.engine.env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=True,
        ).stdout

    def wait_for_log(self, service: str, text: str, count: int = 1, timeout: float = 120) -> str:
        """The service's log once ``text`` has appeared ``count`` times (healthy can come first:
        the healthcheck reads the database, which is written before the log line)."""
        deadline = time.time() + timeout
        while True:
            logs = self.logs(service)
            if logs.count(text) >= count:
                return logs
            assert time.time() < deadline, f"{text!r} not seen {count} time(s) in {service}'s log:\n{logs[-3000:]}"
            time.sleep(1)

    def wait_healthy(self, service: str, timeout: float = 300) -> float:
        started = time.time()
        while True:
            state = self.inspect(service)["State"]
            status = state.get("Health", {}).get("Status")
            if status == "healthy":
                return time.time() - started
            assert state["Running"], f"{service} stopped ({state['Status']}):\n{self.logs(service)[-3000:]}"
            assert time.time() - started < timeout, (
                f"{service} still {status} after {timeout} s:\n"
                + "\n".join(f"{h['ExitCode']}: {h['Output'].strip()}" for h in state["Health"]["Log"][-3:])
                + "\n"
                + self.logs(service)[-3000:]
            )
            time.sleep(1)

    def sqlite_copy(self, tmp: Path) -> sqlite3.Connection:
        """The service's database as `tickcast backup -` streams it out of the running container."""
        copy = self("exec", "-T", "tickcast", "tickcast", "backup", "-", binary=True)
        path = tmp / f"copy-{time.time_ns()}.db"
        path.write_bytes(copy.stdout)
        return sqlite3.connect(path)


@pytest.fixture(scope="module")
def engine():
    t0 = time.time()
    with ExitStack() as stack:
        stack.callback(lambda: report.lines.append(f"engine: {time.time() - t0:.0f} s from start to stop"))
        try:
            found = stack.enter_context(docker_engine())
        except EngineUnavailable as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true, and the container test cannot run: {exc}")
            pytest.skip(f"container test skipped: {exc}")
        report.lines.extend(found.notes)
        report.lines.append(f"engine: ready in {time.time() - t0:.0f} s")
        yield found


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    """The built image and a compose project ready to go up; torn down (down -v) at the end."""
    started = time.time()
    tmp = tmp_path_factory.mktemp("docker")
    (tmp / "config").mkdir()
    (tmp / "config" / "tickcast.toml").write_text(CONFIG)
    (tmp / "override.yml").write_text(override(tmp / "config"))
    python_image, python_how = base_image(engine, PYTHON)
    postgres_image, postgres_how = base_image(engine, POSTGRES)
    report.lines += [f"base image {python_image}: {python_how}", f"base image {postgres_image}: {postgres_how}"]
    compose = Compose(
        engine,
        tmp / "override.yml",
        {
            "TICKCAST_PYTHON_IMAGE": python_image,
            "TICKCAST_POSTGRES_IMAGE": postgres_image,
            "TICKCAST_BROWSE_PORT": str(free_port()),
            "TICKCAST_CONFIG": "/config/tickcast.toml",
            "TZ": "UTC",
            "TICKCAST_DASK_SCHEDULER_PORT": str(free_port()),
            "TICKCAST_DASK_WORKER_PROCESSES": "1",
        },
    )
    compose("down", "-v", "--remove-orphans", postgres=True)  # what a run killed half-way may have left
    previous = engine.docker("image", "inspect", "--format", "{{.Id}}", IMAGE, check=False).stdout.strip()
    t0 = time.time()
    compose("build", "tickcast", timeout=1800)
    built = engine.docker("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
    if previous and previous != built and engine.own:
        # the replaced image's own layers (the old environment); shared layers and the build cache stay
        engine.docker("rmi", previous, check=False)
    report.lines.append(f"image build: {time.time() - t0:.0f} s; images ready after {time.time() - started:.0f} s")
    try:
        yield compose, tmp, python_image
    finally:
        down = compose("down", "-v", "--remove-orphans", check=False, timeout=300, postgres=True)
        report.lines.append(f"container test: {time.time() - started:.0f} s in all (from images to down -v)")
        assert down.returncode == 0, down.stderr
        left = engine.docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}")
        assert left.stdout.split() == [], f"down -v left volumes: {left.stdout}"


def test_the_image_carries_the_environment_once_and_runs_as_a_user(engine, stack):
    compose, _, python_image = stack
    size = int(engine.docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    base = int(engine.docker("image", "inspect", "--format", "{{.Size}}", python_image).stdout)
    run = ["run", "--rm", "--network", "none", IMAGE]
    sizes = engine.docker(*run, "find", "/opt/tickcast", "-type", "f", "-printf", "%s\n").stdout
    environment = sum(int(size) for size in sizes.split())  # its files' bytes, as docker counts them
    added = size - base
    report.lines.append(
        f"image {IMAGE}: {size / 1e6:.0f} MB = base {base / 1e6:.0f} MB + {added / 1e6:.0f} MB "
        f"(installed environment {environment / 1e6:.0f} MB) on {python_image}"
    )
    # Everything the image adds is the installed environment plus the user and tzdata: no layer
    # holds wheels (or anything else) that a later layer deletes.
    assert environment * 0.98 < added < environment + 25e6, (added, environment)
    assert engine.docker(*run, "id", "-u").stdout.strip() == "10001"
    # tickcast itself is installed (its own layer, over the dependencies'), not its build's sources
    assert engine.docker(*run, "tickcast", "--version").stdout.split() == ["tickcast", __version__]
    assert engine.docker(*run, "test", "-e", "/src", check=False).returncode == 1
    config = json.loads(engine.docker("image", "inspect", IMAGE).stdout)[0]["Config"]
    assert not config.get("ExposedPorts") and config["User"] == "tickcast"
    assert config["Cmd"] == ["tickcast", "serve"]


def test_the_stack_on_sqlite(engine, stack):
    compose, tmp, _ = stack
    t0 = time.time()
    compose("up", "-d", "tickcast", "browse")
    volumes = set(
        engine.docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}").stdout.split()
    )
    # docker-compose 1.29 creates every declared volume (see the compose file); no anonymous ones
    assert volumes == {
        f"{PROJECT}_tickcast-data",
        f"{PROJECT}_tickcast-pg",
        f"{PROJECT}_tickcast-pg-data",
        f"{PROJECT}_tickcast-dask-data",
    }
    healthy_after = compose.wait_healthy("tickcast")
    compose.wait_healthy("browse", timeout=120)
    report.lines.append(f"first up: tickcast healthy {healthy_after:.0f} s after up (catch-up run included)")
    logs = compose.wait_for_log("tickcast", "run 1 finished: ok")
    assert "catching up the run scheduled for" in logs, logs[-3000:]

    # the catch-up run, seen through a backup streamed out of the running service
    db = compose.sqlite_copy(tmp)
    assert db.execute("SELECT id, trigger, status, series_ok FROM runs").fetchall() == [(1, "catch-up", "ok", 2)]
    # the scheduler and the browser run as the image's user, under tini, and only browse listens
    for service in ("tickcast", "browse"):
        assert compose("exec", "-T", service, "id", "-u").stdout.strip() == "10001"
        assert compose.inspect(service)["HostConfig"]["Init"] is True
    assert not compose.inspect("tickcast")["Config"].get("ExposedPorts")
    assert not compose.inspect("tickcast")["HostConfig"]["PortBindings"]
    bindings = compose.inspect("browse")["HostConfig"]["PortBindings"]
    port = compose.env["TICKCAST_BROWSE_PORT"]
    assert bindings == {"8001/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}

    table = compose("exec", "-T", "tickcast", "tickcast", "forecasts").stdout.splitlines()
    assert table[0].split()[:2] == ["series_key", "last_ts"] and len(table) == 2 + ROWS
    assert table[0].split()[6:10] == ["lower_80", "upper_80", "lower_95", "upper_95"]
    assert {line.split()[0] for line in table[2:]} == SAMPLES

    # Datasette's canned queries, over 127.0.0.1
    base = f"http://127.0.0.1:{port}/tickcast"
    latest = fetch_json(f"{base}/latest.json?_shape=array", timeout=60)
    assert {r["series_key"] for r in latest} == SAMPLES and len(latest) == ROWS
    history = fetch_json(f"{base}/forecast_vs_actual.json?key=sample:sp500&_shape=array", timeout=60)
    assert len(history) == horizon("B") and {r["target_ts"] for r in history} == {
        r["target_ts"] for r in latest if r["series_key"] == "sample:sp500"
    }
    curve = fetch_json(f"{base}/loss_curve.json?key={latest[0]['series_key']}&_shape=array", timeout=60)
    assert [r["epoch"] for r in curve][:2] == [0, 1] and all(r["train_loss"] > 0 for r in curve)

    # `docker-compose stop`: SIGTERM, a clean stop, exit status 0
    t1 = time.time()
    stopped = compose("stop", timeout=300)
    report.lines.append(f"stop: {time.time() - t1:.1f} s")
    assert stopped.returncode == 0
    assert compose.inspect("tickcast")["State"]["ExitCode"] == 0
    logs = compose.logs("tickcast")
    term = logs.find("received SIGTERM: finishing the series in progress, then stopping")
    assert 0 <= term < logs.find("INFO tickcast.serve: stopped"), logs[-2000:]

    # a second `up` keeps run 1 and does not run again
    compose("up", "-d", "tickcast", "browse")
    compose.wait_healthy("tickcast")
    logs = compose.wait_for_log("tickcast", "tickcast serve: schedule", count=2)  # decided by then
    assert logs.count("catching up") == 1, logs[-3000:]
    db = compose.sqlite_copy(tmp)
    assert db.execute("SELECT id, trigger, status FROM runs").fetchall() == [(1, "catch-up", "ok")]
    assert db.execute("SELECT count(*) FROM forecasts").fetchone() == (TABLE_ROWS,)
    published = "SELECT count(*) FROM forecasts WHERE model = 'published' AND level = 0.8"
    assert db.execute(published).fetchone() == (ROWS,)
    report.lines.append(f"sqlite stack: {time.time() - t0:.0f} s (up, checks, stop, up again)")


def test_the_postgres_profile(engine, stack):
    compose, _, _ = stack
    t0 = time.time()
    compose("up", "-d", "postgres", "tickcast-pg", postgres=True)
    compose.wait_healthy("postgres", timeout=120)
    compose.wait_healthy("tickcast-pg")
    compose.wait_for_log("tickcast-pg", "run 1 finished: ok")
    runs = compose(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-U",
        "tickcast",
        "-d",
        "tickcast",
        "-Atc",
        "SELECT id, trigger, status FROM runs",
        postgres=True,
    ).stdout.split()
    assert runs == ["1|catch-up|ok"]
    table = compose("exec", "-T", "tickcast-pg", "tickcast", "forecasts", postgres=True).stdout.splitlines()
    assert {line.split()[0] for line in table[2:]} == SAMPLES and len(table) == 2 + ROWS
    mounts = {m["Destination"]: m.get("Name") for m in compose.inspect("tickcast-pg")["Mounts"]}
    assert mounts["/data"] == f"{PROJECT}_tickcast-pg-data"  # its own, not the SQLite service's
    refused = compose("exec", "-T", "tickcast-pg", "tickcast", "backup", "/tmp/copy.db", check=False, postgres=True)
    assert refused.returncode == 1 and "use pg_dump" in refused.stderr
    # the README's PostgreSQL backup instead
    dump = compose("exec", "-T", "postgres", "pg_dump", "-U", "tickcast", "-Fc", "tickcast", binary=True, postgres=True)
    assert dump.stdout.startswith(b"PGDMP") and len(dump.stdout) > 10_000
    report.lines.append(f"postgres profile: {time.time() - t0:.0f} s (up, healthy, checks)")


def test_the_dask_profile(engine, stack):
    """The scheduler and a worker from the image, and the dask profile's driver training on them: a
    run into a database of its own (the shared one is up to date after the postgres profile's run)."""
    compose, _, _ = stack
    t0 = time.time()
    compose("up", "-d", "postgres", "dask-scheduler", "dask-worker", "tickcast-dask", postgres=True)
    compose.wait_healthy("dask-scheduler", timeout=120)
    compose.wait_healthy("tickcast-dask")
    psql = ["exec", "-T", "postgres", "psql", "-U", "tickcast", "-d", "tickcast", "-Atc"]
    compose(*psql, "CREATE DATABASE dask", postgres=True)
    url = "postgresql://tickcast:tickcast@postgres:5432/dask"
    done = compose(
        "exec",
        "-T",
        "-e",
        f"TICKCAST_DB_URL={url}",
        "tickcast-dask",
        "tickcast",
        "run",
        "-q",
        check=False,
        postgres=True,
    )
    assert done.returncode == 0, done.stderr
    psql[psql.index("tickcast", psql.index("-d"))] = "dask"
    fits = compose(*psql, "SELECT status, count(*) FROM fits GROUP BY status", postgres=True).stdout.split()
    assert fits == ["ok|2"]
    assert "Receive client connection" in compose.logs("dask-scheduler")  # the driver's client
    for service in DASK_NODES:
        assert compose("exec", "-T", service, "id", "-u", postgres=True).stdout.strip() == "10001"
    report.lines.append(f"dask profile: {time.time() - t0:.0f} s (up, healthy, a run on the cluster)")
