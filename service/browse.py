"""``tickcast browse``: Datasette over the SQLite database, with the canned queries of
``datasette/metadata.json``. Datasette opens the file read-only (``?mode=ro``), so browsing never
blocks or changes what the service writes."""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib import resources

from .errors import TickcastError
from .settings import Settings


def datasette_argv(settings: Settings, host: str, port: int) -> list[str]:
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
    ]
