"""The container setup, verified without a Docker engine: docker-compose.yml validated by Debian's
docker-compose (its `config` works offline), the tickcast service's own command run natively, the
Datasette browser queried over real HTTP, and the Dockerfile checked against the package metadata."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from tickcast.service.cli import build_parser

from .support.cli import run_cli
from .support.compose import docker_compose
from .support.daemon import Daemon, db_rows
from .support.pg import free_port
from .support.small_model import FAST_MODEL
from .support.tables import LEVELS, MEMBERS, ROWS_PER_STEP
from .support.web import fetch_json

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"

FAST_CONFIG = (
    """
[watchlist]
sample = ["sp500", "core-cpi"]
"""
    + FAST_MODEL
)


def compose_config(path: Path = COMPOSE, profile: str | None = None, env: dict | None = None) -> dict:
    """The resolved compose file, as docker-compose itself reads it (variables substituted)."""
    args = [docker_compose(), "-f", str(path)] + (["--profile", profile] if profile else []) + ["config"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | (env or {})
    done = subprocess.run(args, capture_output=True, text=True, env=full_env, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def cli_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_compose_file_passes_docker_compose_validation():
    for profile in (None, "postgres", "dask"):
        compose_config(profile=profile)


def test_the_validator_rejects_a_schema_error(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("init: true", "init: sometimes"))
    done = subprocess.run([docker_compose(), "-f", str(broken), "config", "-q"], capture_output=True, text=True)
    assert done.returncode != 0 and "init" in done.stderr


def seconds(duration: str) -> float:
    """A compose duration such as "1m30s" in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_services_are_set_up_as_documented():
    services = compose_config(profile="postgres")["services"]
    tickcast = services["tickcast"]
    assert tickcast["command"] == ["tickcast", "serve"]
    assert tickcast["init"] is True and tickcast["restart"] == "unless-stopped"
    assert tickcast["stop_grace_period"] == "3m"
    assert tickcast["healthcheck"]["test"] == ["CMD", "tickcast", "health"]
    assert tickcast["environment"]["TICKCAST_DATA_DIR"] == "/data"
    assert any(v.startswith("tickcast-data:/data") for v in tickcast["volumes"])  # a directory volume
    assert tickcast["logging"]["options"] == {"max-size": "10m", "max-file": "5"}
    assert tickcast["build"]["args"] == {"PYTHON_IMAGE": "python:3.12-slim"}  # the official base by default
    browse = services["browse"]
    assert browse["command"][:2] == ["tickcast", "browse"] and browse["expose"] == ["8001"]
    assert browse["ports"] == ["127.0.0.1:8001:8001/tcp"]  # this machine only, by default
    postgres = services["postgres"]
    assert postgres["profiles"] == ["postgres", "dask"] and "healthcheck" in postgres
    assert postgres["image"] == "postgres:16"
    assert postgres["volumes"] == ["tickcast-pg:/var/lib/postgresql/data:rw"]
    pg = services["tickcast-pg"]
    assert pg["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert pg["environment"]["TICKCAST_DB_URL"].startswith("postgresql://tickcast:")
    # its own /data (yfinance's cache), not the SQLite service's volume
    assert [v for v in pg["volumes"] if v.endswith(":/data:rw")] == ["tickcast-pg-data:/data:rw"]
    # only the browser (and, in the dask profile, the Dask scheduler) listens
    for name, service in compose_config(profile="dask")["services"].items():
        if name not in ("browse", "dask-scheduler"):
            assert "ports" not in service and "expose" not in service, name
    for name, service in services.items():
        command = service.get("command") or []
        if command[:1] == ["tickcast"]:
            assert command[1] in cli_commands(), (name, command)


def test_the_dask_profile_trains_on_a_cluster_of_the_image_and_stores_in_postgres():
    services = compose_config(profile="dask")["services"]
    assert {name for name, s in services.items() if "dask" in s.get("profiles", [])} == {
        "postgres",
        "dask-scheduler",
        "dask-worker",
        "tickcast-dask",
    }
    scheduler, worker, driver = services["dask-scheduler"], services["dask-worker"], services["tickcast-dask"]
    for service in (scheduler, worker, driver):  # the same image: one tickcast, one dask on every node
        assert service["image"] == services["tickcast"]["image"] and service["build"] == services["tickcast"]["build"]
        assert service["init"] is True and service["restart"] == "unless-stopped"
    assert scheduler["command"][:2] == ["dask", "scheduler"]
    port = scheduler["command"][scheduler["command"].index("--port") + 1]
    assert scheduler["ports"] == [f"127.0.0.1:{port}:{port}/tcp"]  # this machine only, by default
    assert seconds(scheduler["healthcheck"]["interval"]) <= 10
    assert worker["command"][:3] == ["dask", "worker", f"tcp://dask-scheduler:{port}"]
    assert worker["command"][worker["command"].index("--nthreads") + 1] == "1"  # a fit holds the GIL
    assert worker["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"
    from tickcast.service.executors import QUIET_WORKER_ENV  # Dask's profiler off: it takes GIL time from fits

    assert {k: worker["environment"].get(k) for k in QUIET_WORKER_ENV} == QUIET_WORKER_ENV
    # the workers get no database and no data volume: only the driver reads and writes the tables
    for service in (scheduler, worker):
        assert not any(k.startswith("TICKCAST_") for k in service["environment"]) and not service.get("volumes")
    env = driver["environment"]
    assert driver["command"] == ["tickcast", "serve"] and driver["healthcheck"]["test"] == ["CMD", "tickcast", "health"]
    assert (env["TICKCAST_EXECUTOR"], env["TICKCAST_DASK_ADDRESS"]) == ("dask", f"tcp://dask-scheduler:{port}")
    assert env["TICKCAST_DB_URL"] == services["tickcast-pg"]["environment"]["TICKCAST_DB_URL"]
    assert {k: v["condition"] for k, v in driver["depends_on"].items()} == {
        "postgres": "service_healthy",
        "dask-scheduler": "service_healthy",
    }
    assert [v for v in driver["volumes"] if v.endswith(":/data:rw")] == ["tickcast-dask-data:/data:rw"]
    opened = compose_config(
        profile="dask", env={"TICKCAST_DASK_SCHEDULER_BIND": "0.0.0.0", "TICKCAST_DASK_WORKER_PROCESSES": "8"}
    )["services"]
    assert opened["dask-scheduler"]["ports"] == [f"0.0.0.0:{port}:{port}/tcp"]
    assert opened["dask-worker"]["command"][opened["dask-worker"]["command"].index("--nworkers") + 1] == "8"


@pytest.mark.cluster
def test_the_dask_profile_commands_run_natively(tmp_path, pg_server):
    """The scheduler's and the worker's commands from docker-compose.yml, run here (the dask extra
    is installed), and one `tickcast run` with the driver's environment: the service's host names
    mapped to 127.0.0.1, its database to the suite's PostgreSQL server."""
    config = tmp_path / "tickcast.toml"
    config.write_text(FAST_CONFIG)
    services = compose_config(profile="dask", env={"TICKCAST_DASK_WORKER_PROCESSES": "1"})["services"]
    port = str(free_port())
    commands = []
    for name in ("dask-scheduler", "dask-worker"):
        commands.append(
            [
                port if arg == "8786" else arg.replace("dask-scheduler:8786", f"127.0.0.1:{port}")
                for arg in services[name]["command"]
            ]
        )
    scheduler, worker = commands
    scheduler[scheduler.index("--host") + 1] = "127.0.0.1"
    worker[worker.index("--local-directory") + 1] = str(tmp_path)
    assert worker[2] == f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    processes = [
        subprocess.Popen(
            [str(bin_dir / c[0]), *c[1:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=os.environ | {k: str(v) for k, v in services[name]["environment"].items() if k != "TZ"},
        )
        for name, c in zip(("dask-scheduler", "dask-worker"), commands)
    ]
    try:
        env = {k: str(v) for k, v in services["tickcast-dask"]["environment"].items()}
        env["TICKCAST_DASK_ADDRESS"] = (
            env["TICKCAST_DASK_ADDRESS"].replace("dask-scheduler", "127.0.0.1").replace(":8786", f":{port}")
        )
        env |= {"TICKCAST_DATA_DIR": str(tmp_path / "data"), "TICKCAST_CONFIG": str(config)}
        with pg_server.database() as url:
            env["TICKCAST_DB_URL"] = url
            done = run_cli("run", "-q", env=env | {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "60s"})
            assert done.returncode == 0, done.stderr
            import sqlalchemy as sa

            engine = sa.create_engine(url)
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM fits WHERE status = 'ok'")).scalar() == 2
            engine.dispose()
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)


def test_healthchecks_fit_the_service():
    """The service is judged about a minute after its first run finishes (compose 1.29 has no
    start_interval, so the interval itself is short), and a long first catch-up run does not count
    against it (start_period)."""
    services = compose_config(profile="postgres")["services"]
    for name in ("tickcast", "tickcast-pg"):
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", "tickcast", "health"]
        assert seconds(check["interval"]) <= 60 and seconds(check["timeout"]) <= seconds(check["interval"])
        assert seconds(check["start_period"]) >= 30 * 60
    browse = services["browse"]["healthcheck"]
    assert seconds(browse["interval"]) <= 60 and seconds(browse["start_period"]) >= 30


def test_compose_variables_choose_base_images_and_the_browse_address():
    services = compose_config(
        profile="postgres",
        env={
            "TICKCAST_PYTHON_IMAGE": "mirror.example/python:3.12-slim",
            "TICKCAST_POSTGRES_IMAGE": "mirror.example/pg:16",
            "TICKCAST_BROWSE_ADDRESS": "0.0.0.0",
            "TICKCAST_BROWSE_PORT": "9001",
        },
    )["services"]
    for name in ("tickcast", "browse", "tickcast-pg"):
        assert services[name]["build"]["args"] == {"PYTHON_IMAGE": "mirror.example/python:3.12-slim"}
    assert services["postgres"]["image"] == "mirror.example/pg:16"
    assert services["browse"]["ports"] == ["0.0.0.0:9001:8001/tcp"]


def test_the_compose_file_avoids_what_one_of_the_two_composes_lacks():
    """docker-compose 1.29's validation (above) rejects most of v2's later keys; these are the ones
    it would not notice, or that v2 warns about."""
    raw = yaml.safe_load(COMPOSE.read_text())  # v2's !reset and !override tags would fail here

    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for item in node:
                yield from keys(item)

    assert not {"version", "name", "include"} & set(raw)  # v2 calls `version` obsolete
    assert not {"start_interval", "required", "develop", "additional_contexts"} & set(keys(raw))
    code = "\n".join(line.split(" #")[0] for line in COMPOSE.read_text().splitlines() if not line.startswith("#"))
    assert ":-${" not in code  # nested defaults: v2 only


def test_the_tickcast_service_command_runs_natively(tmp_path):
    """Exactly the service's command and environment from docker-compose.yml, with /data mapped to a
    temporary directory and the config chosen the way users do (TICKCAST_CONFIG)."""
    config = tmp_path / "config" / "tickcast.toml"
    config.parent.mkdir()
    config.write_text(FAST_CONFIG)
    service = compose_config(env={"TICKCAST_CONFIG": str(config), "TZ": "UTC"})["services"]["tickcast"]
    data = tmp_path / "data"
    env = {k: str(v) for k, v in service["environment"].items()}
    assert env.pop("TICKCAST_DATA_DIR") == "/data"
    env["TICKCAST_DATA_DIR"] = str(data)
    assert env["TICKCAST_CONFIG"] == str(config)
    command = service["command"]
    daemon = Daemon(command[1:], env)  # Daemon runs the installed `tickcast` entry point
    daemon.wait_for("catching up the run scheduled for")  # a fresh install catches up the last schedule
    daemon.wait_for("finished: ok")
    health = service["healthcheck"]["test"]
    assert health[0] == "CMD"
    assert run_cli(*health[2:], env=env).returncode == 0
    assert daemon.terminate() == 0
    rows = db_rows(tmp_path, "SELECT count(*), count(DISTINCT series_id) FROM forecasts")
    assert rows == [((5 + 18) * ROWS_PER_STEP, 2)]  # every model at every level
    published = "SELECT count(*) FROM forecasts WHERE model = 'published' AND level = 0.8"
    assert db_rows(tmp_path, published) == [(5 + 18,)]
    assert (data / "tickcast.db-wal").exists() or (data / "tickcast.db").stat().st_size > 0


@pytest.fixture
def populated(tmp_path, make_series):
    """A database with two runs over a CSV series, so the first run's targets have actual values."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    values = 50 + np.cumsum(rng.normal(0, 1, 200))
    dates = pd.bdate_range("2023-01-02", periods=200)
    make_series("walk", values[:190], dates=dates[:190])
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(
        FAST_CONFIG.replace('sample = ["sp500", "core-cpi"]', 'sample = ["core-cpi"]')
        + '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\n'
    )
    env = {"TICKCAST_CONFIG": str(cfg), "TICKCAST_DATA_DIR": str(tmp_path / "data")}
    assert run_cli("run", "-q", env=env).returncode == 0
    make_series("walk", values, dates=dates)
    assert run_cli("run", "-q", env=env).returncode == 0
    return env


def test_datasette_serves_the_canned_queries(populated):
    port = free_port()
    browse = compose_config()["services"]["browse"]["command"]
    args = browse[1:]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    daemon = Daemon(args, populated)
    try:
        base = f"http://127.0.0.1:{port}/tickcast"
        latest = fetch_json(f"{base}/latest.json?_shape=array")
        # one row per published step: its narrowest interval, and its widest around it
        assert {r["series_key"] for r in latest} == {"csv:walk", "sample:core-cpi"} and len(latest) == 5 + 18
        assert all(r["wide_lower"] <= r["lower"] <= r["forecast"] <= r["upper"] <= r["wide_upper"] for r in latest)
        assert {(r["level"], r["wide_level"]) for r in latest} == {(LEVELS[0], LEVELS[-1])}
        history = fetch_json(f"{base}/forecast_vs_actual.json?key=csv:walk&_shape=array")
        assert len(history) == 10  # two origins x five steps
        judged = [r for r in history if r["actual"] is not None]
        assert len(judged) == 5 and all(r["inside_interval"] in (0, 1) for r in judged)
        assert all(r["error"] == pytest.approx(r["actual"] - r["forecast"], abs=1e-3) for r in judged)
        walk_fit = next(r["fit_id"] for r in latest if r["series_key"] == "csv:walk")
        curve = fetch_json(f"{base}/loss_curve.json?key=csv:walk&_shape=array")  # by series key, not fit id
        assert [r["epoch"] for r in curve][:2] == [0, 1] and all(r["train_loss"] > 0 for r in curve)
        assert {r["fit_id"] for r in curve} == {walk_fit}
        ledger = fetch_json(f"{base}/accuracy.json?_shape=array")  # the published forecast, at each level
        assert [(r["series_key"], r["step"], r["level"], r["n"]) for r in ledger] == [
            ("csv:walk", step, level, 1) for step in range(1, 6) for level in LEVELS
        ]
        first_level = [r for r in ledger if r["level"] == LEVELS[0]]
        for row, judged_row in zip(first_level, sorted(judged, key=lambda r: r["step"])):
            assert row["mae"] == pytest.approx(abs(judged_row["error"]), abs=1e-3)
            assert row["coverage"] == judged_row["inside_interval"]
        monthly = fetch_json(f"{base}/accuracy_by_month.json?key=csv:walk&_shape=array")
        assert sum(r["n"] for r in monthly) == 5 * len(LEVELS) and all(len(r["month"]) == 7 for r in monthly)
        by_model = fetch_json(f"{base}/accuracy_by_model.json?_shape=array")
        assert sorted((r["model"], r["level"], r["n"]) for r in by_model) == sorted(
            (m, level, 5) for m in ("published", *MEMBERS) for level in LEVELS
        )
        published = next(r for r in by_model if (r["model"], r["level"]) == ("published", LEVELS[0]))
        assert published["mae"] == pytest.approx(sum(r["mae"] for r in first_level) / 5, abs=1e-3)
        # read-only, canned queries only: a write, or a SELECT of one's own, is refused
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}.json?sql=delete+from+forecasts", timeout=10)
        assert refused.value.code == 400
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}.json?sql=select+1", timeout=10)
        assert refused.value.code == 403
        assert len(fetch_json(f"{base}/latest.json?_shape=array")) == 5 + 18
    finally:
        daemon.proc.send_signal(signal.SIGINT)
        daemon.proc.wait(timeout=30)


def test_dockerfile_matches_the_package_metadata():
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    named = image_extras()
    assert named and named <= extras, f"Dockerfile names extras {named - extras} that pyproject.toml lacks"
    assert not named & {"dev", "bench"}, "the image must not carry test or benchmark extras"
    assert "plot" in named, "the image keeps `tickcast plot` (matplotlib is the plot extra)"
    assert 'CMD ["tickcast", "serve"]' in dockerfile and "tickcast" in project["scripts"]
    for package in ("service", "models", "migrations"):
        assert f"COPY {package} ./{package}" in dockerfile
    # the official base by default, replaceable with a build argument (compose passes it through)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.12-slim$", dockerfile, re.M)
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${PYTHON_IMAGE}", "deps", "${PYTHON_IMAGE}"]
    assert re.search(r"^USER tickcast$", dockerfile, re.M) and 'VOLUME ["/data"]' in dockerfile
    assert "TICKCAST_DATA_DIR=/data" in dockerfile
    assert not re.search(r"^EXPOSE", dockerfile, re.M)  # only the browse service listens (compose: expose)
    # Classic-builder syntax only: docker-compose 1.29 builds without BuildKit.
    instructions = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    assert not any("--mount" in line for line in instructions) and not dockerfile.startswith("# syntax")
    deps_stage, build_stage, final_stage = dockerfile.split("\nFROM ")[1:]
    assert "--require-hashes -r /tmp/requirements.lock" in deps_stage and "COPY requirements.lock" in deps_stage
    assert "--no-index" in build_stage  # tickcast itself adds nothing to what the lock installed
    # The final stage copies the locked environment, then tickcast's own files (gathered under
    # /stage from its install's RECORD); no wheels or sources reach it.
    assert re.findall(r"^COPY .*", final_stage, re.M) == [
        "COPY --from=deps /opt/tickcast /opt/tickcast",
        "COPY --from=build /stage/ /",
    ]
    assert "distribution('tickcast').files" in build_stage
    assert "gcc" not in final_stage and "build-essential" not in final_stage
    # every subcommand the images and compose run exists
    for command in re.findall(r'"tickcast", "([a-z]+)"', dockerfile + COMPOSE.read_text()):
        assert command in cli_commands()
    assert sys.version_info >= tuple(int(x) for x in project["requires-python"].lstrip(">=").split("."))


def image_extras() -> set[str]:
    named = set()
    for group in re.findall(r"(?:\.|tickcast)\[([a-z,]+)\]", (ROOT / "Dockerfile").read_text()):
        named |= set(group.split(","))
    return named


def locked_versions() -> dict[str, list[tuple[str, str]]]:
    """requirements.lock as {name: [(version, marker)]} (a package may have one version per Python)."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)\s*(?:;\s*(.*?))?\s*\\?$", line)
        if found:
            name, version, marker = found.groups()
            pins.setdefault(re.sub(r"[-_.]+", "-", name).lower(), []).append((version, marker or ""))
    return pins


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_the_lock_pins_every_requirement_of_the_image_within_pyproject_ranges(python):
    """requirements.lock (make lock) must cover what pyproject.toml asks of the image, on every
    Python the image may have, with versions inside the declared ranges; a dependency added or a
    range moved without `make lock` fails here, not in a build."""
    from packaging.markers import Marker
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in sorted(image_extras()):
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    env = {
        "python_version": python,
        "python_full_version": python + ".0",
        "implementation_name": "cpython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
    }
    pins = locked_versions()
    assert len(pins) > 20  # the whole tree, not only the direct dependencies
    for requirement in requirements:
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name == "tickcast":
            continue
        chosen = [v for v, marker in pins.get(name, []) if not marker or Marker(marker).evaluate(env)]
        assert len(chosen) == 1, f"{requirement.name}: not pinned exactly once for Python {python} ({pins.get(name)})"
        assert requirement.specifier.contains(chosen[0], prereleases=True), (
            f"requirements.lock pins {requirement.name}=={chosen[0]}, outside {requirement}: run make lock"
        )
    lock_text = (ROOT / "requirements.lock").read_text()
    assert lock_text.count("--hash=sha256:") >= len(pins)  # every pin carries its hashes
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^IMAGE_EXTRAS := (.*)$", makefile, re.M).group(1).split() == sorted(image_extras())


def test_the_readme_sql_runs_on_a_populated_database(populated, tmp_path):
    """The README's SQL is what people paste into sqlite3: every statement must run and the main
    ones must return rows."""
    import sqlite3

    block = re.search(r"```sql\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    statements = [
        s
        for s in (
            "\n".join(line for line in part.splitlines() if not line.strip().startswith("--"))
            for part in block.split(";")
        )
        if s.strip()
    ]
    assert len(statements) >= 5
    conn = sqlite3.connect(tmp_path / "data" / "tickcast.db")
    results = [conn.execute(s).fetchall() for s in statements]
    conn.close()
    assert len(results[0]) == 5 + 18  # latest forecasts: a trading week (csv:walk), 18 months (core-cpi)
    assert len({(r[0], r[4]) for r in results[0]}) == 5 + 18  # one row per series and step
    assert len(results[1]) == 5  # the first run's forecasts now have actual values
    assert results[2] and results[4]  # skill per series; recent runs (the loss-curve query names sample:sp500)
