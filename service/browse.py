"""``tickcast browse``: Datasette over the SQLite database, with the canned queries of
``datasette/metadata.json``. Datasette opens the file read-only (``?mode=ro``), so browsing never
blocks or changes what the service writes.

Ad-hoc SQL is off unless ``--allow-sql`` turns it on: a SELECT of one's own can ask for anything
(``randomblob(400000000)`` returned 533 MB past the time limit), and Datasette has no
authentication. Listening on every interface (``0.0.0.0``) is allowed, with a warning."""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib import resources

from .errors import TickcastError
from .settings import Settings


def exposure_warning(host: str, port: int) -> str | None:
    """One line for a browser that anyone on the network can reach (None: this machine only)."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    return (
        f"browse listens on {host}:{port}: Datasette has no authentication, so anyone who can reach this "
        "port reads every table; listen on 127.0.0.1 (the default) unless that is what you want"
    )


def datasette_argv(settings: Settings, host: str, port: int, allow_sql: bool = False) -> list[str]:
    """The command that serves the configured database with Datasette; one clear error for a
    database it cannot serve (not a SQLite file) or a missing Datasette. Creates or upgrades the
    schema first, so that there is something to browse."""
    from .db import normalize_url, open_database

    url = normalize_url(settings.db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise TickcastError(
            "browse serves a SQLite database file with Datasette; for PostgreSQL use psql or another client"
        )
    if importlib.util.find_spec("datasette") is None:
        raise TickcastError("Datasette is not installed: pip install 'tickcast[browse]'")
    open_database(settings.db_url, busy_timeout=settings.busy_timeout).dispose()
    metadata = resources.files("tickcast.service").joinpath("datasette", "metadata.json")
    return [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        os.path.abspath(url.database),
        "--metadata",
        str(metadata),
        "--host",
        host,
        "--port",
        str(port),
        "--setting",
        "sql_time_limit_ms",
        "5000",
        "--setting",
        "default_allow_sql",
        "on" if allow_sql else "off",
    ]
