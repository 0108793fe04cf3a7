"""Engines, transactions and migrations.

SQLite (the default) is opened in WAL mode with a busy timeout and foreign keys on. Writers take
the write lock up front (``BEGIN IMMEDIATE``) so that a reader-turned-writer never hits SQLite's
instant "database is locked" on lock upgrade; readers use plain deferred transactions and never
block the writer. PostgreSQL runs the same code through psycopg 3.

Write commands open the database with ``open_database`` (created if missing, upgraded to the newest
schema); read commands with ``open_existing_database``, which never creates one. Alembic is imported
only when a migration runs: it costs a read command like `tickcast health` a third of a second.
"""

from __future__ import annotations

import ast
import os
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import DatabaseError, NoDatabase

if TYPE_CHECKING:
    from alembic.config import Config

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


def sqlite_file(url: str | sa.URL) -> str | None:
    """The file of a SQLite URL (None: not SQLite, in memory, or a ``file:`` URI)."""
    parsed = normalize_url(url) if isinstance(url, str) else url
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database


def make_engine(url: str, create: bool = True) -> Engine:
    """An engine for ``url``; for SQLite files the parent directory is created if missing (unless
    ``create`` is False)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    database = parsed.database or ""
    if create and sqlite_file(parsed):
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
        _ensure_sqrt(dbapi_conn)
        if database and database != ":memory:":
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def _ensure_sqrt(dbapi_conn) -> None:
    """The accuracy views use sqrt(), built into SQLite since 3.35 unless compiled out: supply it then."""
    try:
        dbapi_conn.execute("SELECT sqrt(4.0)")
    except Exception:
        import math

        dbapi_conn.create_function("sqrt", 1, lambda x: None if x is None or x < 0 else math.sqrt(x),
                                   deterministic=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: commits on success, rolls back on any exception."""
    with engine.execution_options(**{_WRITE: True}).begin() as conn:
        yield conn


# --- migrations ---------------------------------------------------------------------------------

def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("tickcast.migrations")))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration's revision, read from the migration files' ``revision`` and
    ``down_revision`` lines without importing Alembic (a test holds it to Alembic's own answer)."""
    parents: dict[str, tuple] = {}
    for script in resources.files("tickcast.migrations").joinpath("versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("__"):
            continue
        assigned = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
                getattr(node, "target", None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value is not None:
                assigned[target.id] = ast.literal_eval(node.value)
        down = assigned.get("down_revision")
        parents[assigned["revision"]] = down if isinstance(down, tuple) else (down,)
    heads = set(parents) - {parent for downs in parents.values() for parent in downs}
    if len(heads) != 1:
        raise DatabaseError(f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); expected one")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The schema revision stored in the database (None: no tickcast schema yet)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return versions[0] if len(versions) == 1 else None


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the schema (a no-op when already at head). Returns (revision before, revision after).

    On SQLite the migration runs inside ``BEGIN IMMEDIATE``, so two processes upgrading a new
    database at once serialise instead of both creating tables."""
    from alembic import command

    before = current_revision(engine)
    head = head_revision()
    if before == head and revision == "head":
        return before, head
    with engine.execution_options(**{_WRITE: True}).connect() as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()
    return before, current_revision(engine) or ""


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    with engine.execution_options(**{_WRITE: True}).connect() as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()


def open_database(url: str) -> Engine:
    """Engine for ``url`` with the schema created or upgraded to head: what write commands start with."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open database {describe(url)}: {exc.orig}") from None
    return engine


def open_existing_database(url: str) -> Engine:
    """Engine for a database tickcast has already created (upgraded to head if older): what read
    commands start with. Raises NoDatabase, and creates nothing, when there is none."""
    missing = "run 'tickcast init' or 'tickcast run' first"
    path = sqlite_file(url)
    if path is not None and not os.path.exists(path):
        raise NoDatabase(f"no database at {path}: {missing}")
    engine = make_engine(url, create=False)
    try:
        revision = current_revision(engine)
        if revision is None:
            raise NoDatabase(f"no tickcast tables in {path or describe(url)}: {missing}")
        if revision != head_revision():
            upgrade(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open database {describe(url)}: {exc.orig}") from None
    except BaseException:
        engine.dispose()
        raise
    return engine
