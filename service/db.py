"""Engines, transactions and migrations.

SQLite (the default) is opened in WAL mode with a busy timeout and foreign keys on. Writers take
the write lock up front (``BEGIN IMMEDIATE``) so that a reader-turned-writer never hits SQLite's
instant "database is locked" on lock upgrade; readers use plain deferred transactions and never
block the writer. PostgreSQL runs the same code through psycopg 3.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from importlib import resources
from typing import Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from .errors import DatabaseError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "tickcast_write"


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3 (the driver we ship)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseError(f"malformed database URL {url!r}: expected e.g. sqlite:///tickcast.db "
                            "or postgresql://user@host/dbname") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")
    return parsed


def describe(engine_or_url: Engine | str) -> str:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else normalize_url(engine_or_url)
    return url.render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite files the parent directory is created if missing."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        parent = os.path.dirname(os.path.abspath(database))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the database directory {parent}: {exc.strerror}") from None
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours (see "begin").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        if database and database != ":memory:":
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: commits on success, rolls back on any exception."""
    with engine.execution_options(**{_WRITE: True}).begin() as conn:
        yield conn


# --- migrations ---------------------------------------------------------------------------------

def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("tickcast.migrations")))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the schema (a no-op when already at head). Returns (revision before, revision after).

    On SQLite the migration runs inside ``BEGIN IMMEDIATE``, so two processes upgrading a new
    database at once serialise instead of both creating tables."""
    before = current_revision(engine)
    head = head_revision()
    if before == head and revision == "head":
        return before, head
    with engine.execution_options(**{_WRITE: True}).connect() as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()
    return before, current_revision(engine) or ""


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.execution_options(**{_WRITE: True}).connect() as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()


def open_database(url: str) -> Engine:
    """Engine for ``url`` with the schema upgraded to head: what every command starts with."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open database {describe(url)}: {exc.orig}") from None
    return engine
