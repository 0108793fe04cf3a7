"""Engines, transactions and migrations.

SQLite (the default) is opened in WAL mode with a busy timeout and foreign keys on. Writers take
the write lock up front (``BEGIN IMMEDIATE``) so that a reader-turned-writer never hits SQLite's
instant "database is locked" on lock upgrade; readers use plain deferred transactions and never
block the writer. A writer waits for another process's write lock up to the busy timeout
(``service.busy_timeout_minutes``), saying so in one line (service/locks.py). PostgreSQL runs the
same code through psycopg 3, with the busy timeout as its ``lock_timeout``; a wait for another
session's lock is said in one line there too (service/pglocks.py).

Write commands open the database with ``open_database`` (created if missing, upgraded to the newest
schema); read commands with ``open_existing_database``, which never creates one. Alembic is imported
only when a migration runs: it costs a read command like `tickcast health` a third of a second.
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import schema
from .drift import apply_repairs, find_drift, unrepairable
from .errors import DatabaseError, NoDatabase, SchemaError, mask_url, quoted
from .locks import DatabaseLocked, begin_immediate
from .pglocks import backend_pid, watch_lock_waits
from .settings import DEFAULT_BUSY_TIMEOUT_MINUTES

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from alembic.config import Config

log = logging.getLogger("tickcast.db")
_WRITE = "tickcast_write"
_WAIT = "tickcast_wait"  # seconds this write transaction waits for the lock (SQLite), instead of the engine's
_LOCK_WATCH = "_tickcast_lock_watch"  # a PostgreSQL engine's watcher of lock waits (pglocks.watch_lock_waits)
_PG_LOCK_TIMEOUT = "55P03"  # PostgreSQL's lock_not_available: lock_timeout ran out


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3 (the driver we ship). A URL that
    does not parse (a port that is not a number, a broken IPv6 address) is one DatabaseError line
    quoting it without its password or query string."""
    try:
        parsed = sa.make_url(url)
        parsed.port  # noqa: B018 - SQLAlchemy checks the port only when it is read
    except (sa.exc.ArgumentError, ValueError):
        raise DatabaseError(
            f"malformed database URL {quoted(mask_url(url), 120)}: expected e.g. sqlite:///tickcast.db or "
            "postgresql://user@host:5432/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")
    return parsed


def check_sqlite_url(parsed: sa.URL, url: str) -> None:
    """A SQLite URL tickcast can keep data in: a file, and no options. ``sqlite://`` and
    ``sqlite:///`` (what ``sqlite:///$UNSET`` gives) are in memory: every write would be lost when
    tickcast exits. Options such as ``?mode=ro`` are not SQLite's to take here (SQLAlchemy would warn
    and open the file writable all the same); tickcast opens SQLite its own way."""
    if parsed.get_backend_name() != "sqlite":
        return
    shown = quoted(mask_url(url), 120)
    if sqlite_file(parsed) is None:
        raise DatabaseError(
            f"the database URL {shown} names no file: an in-memory SQLite database keeps nothing once "
            "tickcast exits (an empty variable in --db or TICKCAST_DB_URL gives one); name a file, e.g. "
            "sqlite:///data/tickcast.db"
        )
    if parsed.query:
        raise DatabaseError(
            f"the database URL {shown} has options ({', '.join(sorted(parsed.query))}): tickcast opens "
            "SQLite files its own way (WAL, a busy timeout) and takes none; remove them"
        )


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


def make_engine(url: str, create: bool = True, busy_timeout: float | None = None) -> Engine:
    """An engine for ``url``; for SQLite files the parent directory is created if missing (unless
    ``create`` is False). ``busy_timeout``: seconds a writer waits for another process's lock
    (default: ``DEFAULT_BUSY_TIMEOUT_MINUTES``)."""
    parsed = normalize_url(url)
    check_sqlite_url(parsed, url)
    wait = DEFAULT_BUSY_TIMEOUT_MINUTES * 60 if busy_timeout is None else busy_timeout
    busy_ms = max(1, int(wait * 1000))
    if parsed.get_backend_name() != "sqlite":
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args={"options": f"-c lock_timeout={busy_ms}"})
        setattr(engine, _LOCK_WATCH, watch_lock_waits(engine, describe(engine), wait))  # said in one line
        return engine
    database = parsed.database or ""
    if create and sqlite_file(parsed):
        parent = os.path.dirname(os.path.abspath(database))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the database directory {parent}: {exc.strerror}") from None
    engine = sa.create_engine(parsed, connect_args={"timeout": wait})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours (see "begin").
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cur.execute("PRAGMA foreign_keys = ON")
        _ensure_sqrt(dbapi_conn)
        if database and database != ":memory:":
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_WRITE):
            driver = conn.connection.driver_connection
            assert driver is not None  # a connection being begun is open
            begin_immediate(driver, database, options.get(_WAIT, wait), busy_ms)
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _ensure_sqrt(dbapi_conn) -> None:
    """The accuracy views use sqrt(), built into SQLite since 3.35 unless compiled out: supply it then."""
    try:
        dbapi_conn.execute("SELECT sqrt(4.0)")
    except Exception:  # noqa: BLE001 - whatever the build says (no such function, an error): supply our own
        import math

        dbapi_conn.create_function(
            "sqrt", 1, lambda x: None if x is None or x < 0 else math.sqrt(x), deterministic=True
        )


@contextmanager
def write_transaction(engine: Engine, wait: float | None = None) -> Iterator[Connection]:
    """A transaction that will write: commits on success, rolls back on any exception. ``wait``:
    seconds to wait for SQLite's write lock, if not the engine's busy timeout."""
    options = {_WRITE: True} if wait is None else {_WRITE: True, _WAIT: wait}
    watch = getattr(engine, _LOCK_WATCH, None)  # PostgreSQL
    backend = None
    try:
        with engine.execution_options(**options).begin() as conn:
            if watch is not None:
                backend = backend_pid(conn)
            yield conn
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != _PG_LOCK_TIMEOUT:
            raise
        holder = (watch.holders(backend) if watch is not None else None) or "another session"
        raise DatabaseLocked(
            f"the database {describe(engine)} stayed locked: {holder} held a lock "
            "tickcast needed for longer than service.busy_timeout_minutes"
        ) from None


# --- migrations ---------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("tickcast.migrations")))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _revision_parents(versions: Traversable | None = None) -> dict[str, tuple]:
    """Each migration's revision -> its down revisions, read from the files' ``revision`` and
    ``down_revision`` lines without importing Alembic (a test holds the head to Alembic's own answer).
    ``versions``: the folder of migration files (default: tickcast's)."""
    parents: dict[str, tuple] = {}
    folder = versions if versions is not None else resources.files("tickcast.migrations").joinpath("versions")
    for script in folder.iterdir():
        if not script.name.endswith(".py") or script.name.startswith("__"):
            continue
        assigned = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            target = (
                node.targets[0]
                if isinstance(node, ast.Assign) and len(node.targets) == 1
                else getattr(node, "target", None)
            )
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and value is not None:
                assigned[target.id] = ast.literal_eval(value)
        down = assigned.get("down_revision")
        parents[assigned["revision"]] = down if isinstance(down, tuple) else (down,)
    return parents


def head_revision(versions: Traversable | None = None) -> str:
    """The newest migration's revision (``versions``: as in :func:`_revision_parents`)."""
    parents = _revision_parents(versions)
    heads = set(parents) - {parent for downs in parents.values() for parent in downs}
    if len(heads) != 1:
        raise DatabaseError(f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); expected one")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The schema revision stored in the database (None: no tickcast schema yet).

    Raises SchemaError, saying what it found, when ``alembic_version`` cannot be trusted: missing or
    empty beside tickcast tables, more than one row, or a revision these migrations do not know."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        versioned = inspector.has_table("alembic_version")
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() if versioned else []
        if len(versions) == 1 and versions[0] == head_revision():
            return versions[0]
        ours = sorted(set(inspector.get_table_names()) & set(schema.metadata.tables))
    where = describe(engine)
    if len(versions) > 1:
        raise SchemaError(
            f"alembic_version in {where} has {len(versions)} rows ({', '.join(map(str, versions))}); "
            "a tickcast database has exactly one: the revision its tables are at"
        )
    if not versions:
        if not ours:
            return None  # an empty database
        found = "is empty" if versioned else "is missing"
        raise SchemaError(
            f"alembic_version in {where} {found} but the database has tickcast tables "
            f"({', '.join(ours)}), so its schema revision is unknown: restore alembic_version from "
            "a backup, or record the revision the tables are at with 'alembic stamp REVISION'"
        )
    known = _revision_parents()
    if versions[0] not in known:
        raise SchemaError(
            f"the database {where} is at schema revision {versions[0]!r}, which this tickcast does not "
            f"know (it knows {', '.join(sorted(known))}): it was upgraded by a newer tickcast, or "
            "alembic_version was changed by hand"
        )
    return versions[0]


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the schema (a no-op when already at head). Returns (revision before, revision after).

    On SQLite the migration runs inside ``BEGIN IMMEDIATE``, so two processes upgrading a new
    database at once serialise instead of both creating tables."""
    before = current_revision(engine)
    head = head_revision()
    if before == head and revision == "head":
        return before, head  # the common case, without importing Alembic (a tenth of a second)
    from alembic import command

    with engine.execution_options(**{_WRITE: True}).connect() as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()
    return before, current_revision(engine) or ""


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    with engine.execution_options(**{_WRITE: True}).connect() as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()


def migration_view_definitions() -> dict[str, str]:
    """name -> CREATE VIEW statement, exactly as the migrations leave them: read back from a
    scratch in-memory SQLite database upgraded to head (the migrations use the same SQL on both
    backends). Only run when a view needs repairing: it imports and runs Alembic."""
    scratch = sa.create_engine("sqlite://")
    try:
        upgrade(scratch)
        with scratch.connect() as conn:
            return dict(conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")).all())
    finally:
        scratch.dispose()


def repair(engine: Engine) -> list[str]:
    """Repair the schema drift that can be repaired (service/drift.py); returns what was done, one
    phrase each. Raises SchemaError (nothing changed) when something cannot be repaired."""
    with engine.connect() as conn:
        drift = find_drift(conn)
        if not drift:
            return []
        problems = unrepairable(conn, drift)
    if problems:
        raise SchemaError(
            f"the schema of {describe(engine)} has drifted from its migrations: {'; '.join(problems)}; "
            "tickcast cannot recreate the data these held: restore them from a backup"
        )
    definitions = migration_view_definitions() if drift.views else {}
    with write_transaction(engine) as conn:
        return apply_repairs(conn, drift, definitions)


def open_database(url: str, busy_timeout: float | None = None) -> Engine:
    """Engine for ``url`` with the schema created or upgraded to head, and drift from it repaired
    (service/drift.py): what write commands start with. ``busy_timeout`` as in ``make_engine``."""
    engine = make_engine(url, busy_timeout=busy_timeout)
    try:
        upgrade(engine)
        for done in repair(engine):
            log.warning("schema drift in %s: %s", describe(engine), done)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open database {describe(url)}: {exc.orig}") from None
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_existing_database(url: str, busy_timeout: float | None = None) -> Engine:
    """Engine for a database tickcast has already created (upgraded to head if older): what read
    commands start with. Raises NoDatabase, and creates nothing, when there is none; SchemaError
    when a table, column or view is missing (a write command, e.g. `tickcast init`, repairs that)."""
    missing = "run 'tickcast init' or 'tickcast run' first"
    path = sqlite_file(url)
    if path is not None and not os.path.exists(path):
        raise NoDatabase(f"no database at {path}: {missing}")
    engine = make_engine(url, create=False, busy_timeout=busy_timeout)
    try:
        revision = current_revision(engine)
        if revision is None:
            raise NoDatabase(f"no tickcast tables in {path or describe(url)}: {missing}")
        if revision != head_revision():
            upgrade(engine)
        with engine.connect() as conn:
            drift = find_drift(conn)
        drift.indexes = []  # slower reads, not wrong ones: the next write command recreates them
        if drift:
            raise SchemaError(
                f"the schema of {describe(engine)} has drifted from its migrations ({drift.describe()}): "
                "run 'tickcast init' to repair it"
            )
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open database {describe(url)}: {exc.orig}") from None
    except BaseException:
        engine.dispose()
        raise
    return engine
