"""``tickcast browse``: Datasette over the SQLite database, with the canned queries and table
descriptions of ``datasette/metadata.json`` and the charts of the ``datasette/tickcast_charts.py``
plugin. Datasette opens the file read-only (``?mode=ro``), so browsing never blocks or changes what
the service writes.

Datasette keys metadata by database name, which is the file's stem (``tc.db`` is ``tc``): the
packaged metadata is written for the name ``tickcast`` and re-keyed to the actual name at launch,
then handed to Datasette on its standard input (``--metadata -``, from an unlinked temporary file),
so that nothing is left behind. Like every read command, browse never creates a database: with none
it says so in one line (``--wait`` waits for one, for a container started beside the service).

Ad-hoc SQL is off unless ``--allow-sql`` turns it on: a SELECT of one's own can ask for anything
(``randomblob(400000000)`` returned 533 MB past the time limit), and Datasette has no
authentication. Listening on every interface (``0.0.0.0``) is allowed, with a warning."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import NoDatabase, TickcastError
from .settings import Settings

# The database name metadata.json is written for (the default file, tickcast.db).
METADATA_NAME = "tickcast"


@dataclass
class Launch:
    """What `tickcast browse` executes: the command, and the metadata to give it on stdin."""

    argv: list[str]
    metadata: dict


def exposure_warning(host: str, port: int) -> str | None:
    """One line for a browser that anyone on the network can reach (None: this machine only)."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    return (
        f"browse listens on {host}:{port}: Datasette has no authentication, so anyone who can reach this "
        "port reads every table; listen on 127.0.0.1 (the default) unless that is what you want"
    )


def install_hint() -> str:
    """How to install Datasette for this tickcast: in a checkout, the checkout's own environment."""
    checkout = Path(__file__).resolve().parent.parent
    pip = shlex.quote(str(Path(sys.executable).parent / "pip"))
    if (checkout / "pyproject.toml").exists() and (checkout / "service" / "browse.py").exists():
        return f"{pip} install -e {shlex.quote(str(checkout) + '[browse]')} (make run in {checkout} installs it too)"
    return f"{pip} install 'tickcast[browse]'"


def datasette_name(path: str) -> str:
    """The name Datasette serves a database file under (and keys its metadata by)."""
    return Path(path).stem


def metadata_for(name: str) -> dict:
    """The packaged metadata, for a database served under ``name``."""
    text = resources.files("tickcast.service").joinpath("datasette", "metadata.json").read_text()
    metadata = json.loads(text)
    metadata["databases"] = {name: metadata["databases"][METADATA_NAME]}
    return metadata


def plugins_dir() -> str:
    return str(resources.files("tickcast.service").joinpath("datasette"))


def wait_for_database(open_it: Callable[[], object], wait: float, say: Callable[[str], None]) -> None:
    """Open the database, waiting up to ``wait`` seconds for it to be created (NoDatabase until then)."""
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            open_it()
            return
        except NoDatabase as missing:
            if time.monotonic() >= deadline:
                raise
            if not said:
                say(f"{missing}; waiting up to {wait:g} s for it")
                said = True
            time.sleep(1)


def datasette_launch(
    settings: Settings,
    host: str,
    port: int,
    allow_sql: bool = False,
    wait: float = 0,
    say: Callable[[str], None] = lambda line: None,
) -> Launch:
    """The command that serves the configured database with Datasette, and its metadata; one clear
    error for a database it cannot serve (not a SQLite file, none at all) or a missing Datasette.
    Upgrades an older schema first, as every read command does."""
    from .db import normalize_url, open_existing_database

    url = normalize_url(settings.db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise TickcastError(
            "browse serves a SQLite database file with Datasette; for PostgreSQL use psql or another client"
        )
    if importlib.util.find_spec("datasette") is None:
        raise TickcastError(f"Datasette is not installed: {install_hint()}")
    wait_for_database(
        lambda: open_existing_database(settings.db_url, busy_timeout=settings.busy_timeout).dispose(), wait, say
    )
    path = os.path.abspath(url.database)
    argv = [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        path,
        "--metadata",
        "-",  # on stdin: see the module's docstring
        "--plugins-dir",
        plugins_dir(),
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
    return Launch(argv, metadata_for(datasette_name(path)))
