"""service/db.py on real SQLite files (and a real PostgreSQL server where the backend matters):
database URLs and what each wrong one says, SQLite's connection settings, write transactions and
the lock they take, the schema's revision and what cannot be trusted about it, upgrades and
downgrades, repairs, and opening a database to write or to read."""

from __future__ import annotations

import logging
import math
import sqlite3

import pytest
import sqlalchemy as sa

from tickcast.service import db
from tickcast.service.errors import DatabaseError, NoDatabase, SchemaError

HEAD = "0007"
VIEWS = {"latest_forecasts", "forecast_errors", "forecast_accuracy", "forecast_accuracy_monthly"}
NEEDS_TICKCAST = "run 'tickcast init' or 'tickcast run' first"


def message(call) -> str:
    with pytest.raises((DatabaseError, SchemaError, NoDatabase)) as raised:
        call()
    assert "\n" not in str(raised.value)
    return str(raised.value)


# --- URLs ------------------------------------------------------------------------------------------------


def test_postgres_urls_mean_psycopg_3_and_others_keep_their_driver():
    for url in ("postgresql://u:p@h:5432/d", "postgres://u:p@h/d"):
        assert db.normalize_url(url).drivername == "postgresql+psycopg"
    assert db.normalize_url("postgresql+psycopg2://u@h/d").drivername == "postgresql+psycopg2"
    assert db.normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_a_url_that_does_not_parse_or_names_another_database_is_one_line():
    said = message(lambda: db.normalize_url("postgresql://user:secret@host:port/db"))
    assert said == (
        "malformed database URL 'postgresql://***@host:port/db': expected e.g. sqlite:///tickcast.db or "
        "postgresql://user@host:5432/dbname"
    )
    assert message(lambda: db.normalize_url("not a url")).startswith("malformed database URL 'not a url': ")
    assert message(lambda: db.normalize_url("mysql://localhost/x")) == (
        "unsupported database 'mysql': use sqlite or postgresql"
    )


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_a_sqlite_url_must_name_a_file(url):
    assert message(lambda: db.make_engine(url)) == (
        f"the database URL {url!r} names no file: an in-memory SQLite database keeps nothing once "
        "tickcast exits (an empty variable in --db or TICKCAST_DB_URL gives one); name a file, e.g. "
        "sqlite:///data/tickcast.db"
    )


def test_a_sqlite_url_takes_no_options(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db?mode=ro&cache=shared"
    assert message(lambda: db.make_engine(url)) == (
        f"the database URL {url.replace('?mode=ro&cache=shared', '?***')!r} has options (cache, mode): "
        "tickcast opens SQLite files its own way (WAL, a busy timeout) and takes none; remove them"
    )
    db.check_sqlite_url(db.normalize_url("postgresql://h/d?sslmode=require"), "postgresql://h/d?sslmode=require")


def test_described_without_the_password():
    assert db.describe("postgresql://u:secret@h/d") == "postgresql+psycopg://u:***@h/d"
    engine = db.make_engine("postgresql://u:secret@127.0.0.1:9/d", busy_timeout=1)
    try:
        assert db.describe(engine) == "postgresql+psycopg://u:***@127.0.0.1:9/d"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite:///rel/x.db", "rel/x.db"),
        ("sqlite:////abs/x.db", "/abs/x.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:x.db?mode=ro&uri=true", None),
        ("postgresql://h/d", None),
    ],
)
def test_the_file_of_a_sqlite_url(url, file):
    assert db.sqlite_file(url) == file
    assert db.sqlite_file(db.normalize_url(url)) == file


# --- SQLite's engine -------------------------------------------------------------------------------------


def test_a_new_file_gets_its_directories_unless_told_not_to(tmp_path):
    nested = tmp_path / "a" / "b" / "x.db"
    db.make_engine(f"sqlite:///{nested}").dispose()
    assert nested.parent.is_dir()
    other = tmp_path / "c" / "d" / "x.db"
    db.make_engine(f"sqlite:///{other}", create=False).dispose()
    assert not other.parent.exists()
    (tmp_path / "file").write_text("")
    said = message(lambda: db.make_engine(f"sqlite:///{tmp_path / 'file' / 'x.db'}"))
    assert said == f"cannot create the database directory {tmp_path / 'file'}: File exists"


@pytest.mark.parametrize(("seconds", "ms"), [(2.5, 2500), (0.0001, 1), (0, 1)])
def test_a_connection_waits_the_busy_timeout_in_milliseconds_at_least_one(tmp_path, seconds, ms):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout=seconds)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == ms
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL, with WAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("SELECT sqrt(16.0)").scalar() == 4.0
    finally:
        engine.dispose()


def test_a_write_transaction_holds_the_write_lock_from_its_start_and_a_read_does_not(tmp_path):
    path = tmp_path / "x.db"
    engine = db.make_engine(f"sqlite:///{path}", busy_timeout=0.05)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with engine.begin() as conn:  # a read: BEGIN (deferred)
            conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO t VALUES (1)")
            other.execute("COMMIT")
        with db.write_transaction(engine) as conn:  # BEGIN IMMEDIATE before any statement
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT v FROM t ORDER BY v").scalars().all() == [1, 2]
    finally:
        other.close()
        engine.dispose()


def test_a_write_transaction_commits_or_rolls_back_whole(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with db.write_transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
    with pytest.raises(ZeroDivisionError):
        with db.write_transaction(engine, wait=1) as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            _ = 1 / 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    engine.dispose()


# --- revisions, upgrades, downgrades ----------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'tickcast.db'}")
    yield engine
    engine.dispose()


def test_the_head_is_the_newest_migration():
    assert db.head_revision() == HEAD


def test_upgrades_say_where_they_started_and_ended_and_downgrades_remove_everything(engine):
    assert db.current_revision(engine) is None
    assert db.upgrade(engine, "0003") == (None, "0003")
    assert db.current_revision(engine) == "0003"  # an older revision tickcast knows
    assert db.upgrade(engine) == ("0003", HEAD)
    assert db.upgrade(engine) == (HEAD, HEAD)
    assert VIEWS <= set(sa.inspect(engine).get_view_names())
    db.downgrade(engine, "0005")
    assert db.current_revision(engine) == "0005"
    db.downgrade(engine)
    assert db.current_revision(engine) is None
    assert sa.inspect(engine).get_table_names() == ["alembic_version"]  # Alembic's, empty
    assert sa.inspect(engine).get_view_names() == []


def _versions(engine, *rows):
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
        for row in rows:
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES (?)", (row,))


def test_a_revision_that_cannot_be_trusted_is_said(engine):
    db.upgrade(engine)
    where = db.describe(engine)
    _versions(engine, "0006", "0005")
    assert message(lambda: db.current_revision(engine)) == (
        f"alembic_version in {where} has 2 rows (0006, 0005); a tickcast database has exactly one: the "
        "revision its tables are at"
    )
    _versions(engine, "0099")
    assert message(lambda: db.current_revision(engine)) == (
        f"the database {where} is at schema revision '0099', which this tickcast does not know (it knows "
        "0001, 0002, 0003, 0004, 0005, 0006, 0007): it was upgraded by a newer tickcast, or alembic_version was "
        "changed by hand"
    )
    _versions(engine)
    said = message(lambda: db.current_revision(engine))
    assert said.startswith(f"alembic_version in {where} is empty but the database has tickcast tables (fits, ")
    assert said.endswith(
        "so its schema revision is unknown: restore alembic_version from a backup, or record the revision "
        "the tables are at with 'alembic stamp REVISION'"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    assert f"alembic_version in {where} is missing but" in message(lambda: db.current_revision(engine))


def test_the_views_the_migrations_create():
    views = db.migration_view_definitions()
    assert set(views) == VIEWS
    assert all(sql.startswith(f"CREATE VIEW {name}") for name, sql in views.items())


def test_repairs_recreate_what_can_be_and_refuse_what_cannot(engine):
    db.upgrade(engine)
    assert db.repair(engine) == []
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP VIEW latest_forecasts")
    assert db.repair(engine) == ["recreated the view latest_forecasts"]
    assert "latest_forecasts" in sa.inspect(engine).get_view_names()
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP VIEW latest_forecasts")
        conn.exec_driver_sql("ALTER TABLE series DROP COLUMN last_note")
    assert message(lambda: db.repair(engine)) == (
        f"the schema of {db.describe(engine)} has drifted from its migrations: column series.last_note is "
        "missing; tickcast cannot recreate the data these held: restore them from a backup"
    )
    assert "latest_forecasts" not in sa.inspect(engine).get_view_names()  # nothing changed


# --- opening a database ---------------------------------------------------------------------------------


def test_open_database_creates_upgrades_and_repairs_saying_so(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'tickcast.db'}"
    engine = db.open_database(url)
    assert db.current_revision(engine) == HEAD
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP VIEW forecast_accuracy_monthly")
    engine.dispose()
    with caplog.at_level(logging.WARNING, logger="tickcast"):
        engine = db.open_database(url)
    engine.dispose()
    assert f"schema drift in {url}: recreated the view forecast_accuracy_monthly" in caplog.messages


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    url = f"sqlite:///{tmp_path}"  # a directory
    assert message(lambda: db.open_database(url)) == f"cannot open database {url}: unable to open database file"
    assert message(lambda: db.open_existing_database(url)) == (
        f"cannot open database {url}: unable to open database file"
    )


def test_reading_needs_a_database_tickcast_made_and_upgrades_an_older_one(tmp_path):
    path = tmp_path / "tickcast.db"
    url = f"sqlite:///{path}"
    assert message(lambda: db.open_existing_database(url)) == f"no database at {path}: {NEEDS_TICKCAST}"
    assert not path.exists()  # nothing created
    sqlite3.connect(path).close()
    assert message(lambda: db.open_existing_database(url)) == f"no tickcast tables in {path}: {NEEDS_TICKCAST}"
    old = db.make_engine(url)
    db.upgrade(old, "0004")
    old.dispose()
    engine = db.open_existing_database(url)
    assert db.current_revision(engine) == HEAD
    engine.dispose()


def test_reading_refuses_a_drifted_schema_but_not_a_missing_index(tmp_path):
    url = f"sqlite:///{tmp_path / 'tickcast.db'}"
    engine = db.open_database(url)
    index = sa.inspect(engine).get_indexes("fits")[0]["name"]
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {index}")
    db.open_existing_database(url).dispose()  # slower reads, not wrong ones
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP VIEW latest_forecasts")
    engine.dispose()
    said = message(lambda: db.open_existing_database(url))
    assert said.startswith(f"the schema of {url} has drifted from its migrations (")
    assert "latest_forecasts" in said and said.endswith("): run 'tickcast init' to repair it")


def test_no_tickcast_tables_in_a_postgresql_database_names_it(pg_server):
    with pg_server.database() as url:
        assert message(lambda: db.open_existing_database(url)) == (
            f"no tickcast tables in {db.describe(url)}: {NEEDS_TICKCAST}"
        )


class _WithoutSqrt:
    """A SQLite connection as a build without the math functions presents it."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, *args):
        if "sqrt" in sql:
            raise sqlite3.OperationalError("no such function: sqrt")
        return self.conn.execute(sql, *args)

    def create_function(self, *args, **kwargs):
        return self.conn.create_function(*args, **kwargs)


def test_a_sqlite_without_sqrt_gets_ours_for_the_accuracy_views():
    """The views' RMSE needs sqrt(): NULL for NULL and negatives, deterministic (usable in an index)."""
    conn = sqlite3.connect(":memory:")
    db._ensure_sqrt(_WithoutSqrt(conn))
    row = conn.execute("SELECT sqrt(16.0), sqrt(0.0), sqrt(-1.0), sqrt(NULL), sqrt(2)").fetchone()
    assert row == (4.0, 0.0, None, None, math.sqrt(2))
    conn.execute("CREATE TABLE t (v REAL)")
    conn.execute("CREATE INDEX t_root ON t (sqrt(v))")  # refused for a function not deterministic
    conn.close()


class _Recording:
    """A real SQLite connection that records the functions registered on it."""

    def __init__(self, conn):
        self.conn, self.registered = conn, []

    def execute(self, sql, *args):
        return self.conn.execute(sql, *args)

    def create_function(self, name, narg, fn, **kwargs):
        self.registered.append((name, narg, fn, kwargs))
        return self.conn.create_function(name, narg, fn, **kwargs)


def test_our_sqrt_is_registered_only_where_sqlite_has_none():
    present = _Recording(sqlite3.connect(":memory:"))
    db._ensure_sqrt(present)
    assert present.registered == []
    conn = sqlite3.connect(":memory:")
    missing = _Recording(conn)
    missing.execute = _WithoutSqrt(conn).execute
    db._ensure_sqrt(missing)
    [(name, narg, fn, kwargs)] = missing.registered
    assert (name, narg, kwargs) == ("sqrt", 1, {"deterministic": True})
    assert (fn(16.0), fn(0.0), fn(-1e-9), fn(None)) == (4.0, 0.0, None, None)


def test_long_urls_are_quoted_cut_to_120_characters():
    from tickcast.service.errors import mask_url, quoted

    long_port = "postgresql://host:" + "9" * 200 + "x/db"
    said = message(lambda: db.normalize_url(long_port))
    assert said == (
        f"malformed database URL {quoted(long_port, 120)}: expected e.g. sqlite:///tickcast.db or "
        "postgresql://user@host:5432/dbname"
    )
    assert len(quoted(long_port, 120)) < len(quoted(long_port, 121)) and quoted(long_port, 120) != quoted(long_port)
    long_options = "sqlite:///" + "d/" * 80 + "x.db?mode=ro"
    assert message(lambda: db.make_engine(long_options)).startswith(
        f"the database URL {quoted(mask_url(long_options), 120)} has options (mode)"
    )


def _migration(folder, name, text):
    (folder / name).write_text(text, encoding="utf-8")


def test_revisions_are_read_from_plain_or_annotated_lines_and_merges_have_two_parents(tmp_path):
    _migration(tmp_path, "a.py", 'revision = "a"\ndown_revision = None\n')
    _migration(tmp_path, "b.py", 'revision: str = "b"\ndown_revision: str | None = "a"\n')
    _migration(tmp_path, "c.py", 'revision = "c"\ndown_revision = "a"\n')
    _migration(tmp_path, "__init__.py", 'revision = "not a migration"\n')
    _migration(tmp_path, "notes.txt", 'revision = "not python"\n')
    assert db._revision_parents(tmp_path) == {"a": (None,), "b": ("a",), "c": ("a",)}
    assert message(lambda: db.head_revision(tmp_path)) == "the migrations have 2 heads (b, c); expected one"
    _migration(tmp_path, "d.py", "revision = 'd'\ndown_revision = ('b', 'c')  # merges b and c — ü\n")
    assert db._revision_parents(tmp_path)["d"] == ("b", "c")
    assert db.head_revision(tmp_path) == "d"


def test_an_upgrade_takes_the_write_lock_first_and_never_goes_back(tmp_path):
    from tickcast.service.locks import DatabaseLocked

    path = tmp_path / "tickcast.db"
    engine = db.make_engine(f"sqlite:///{path}", busy_timeout=0.3)
    with engine.connect():
        pass  # the file made, in WAL mode
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseLocked, match="stayed locked for 0.3 s"):
            db.upgrade(engine)
        other.execute("COMMIT")
        assert db.upgrade(engine, "base") == (None, "")  # nothing to do
        db.upgrade(engine)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseLocked):
            db.downgrade(engine, "0005")
        other.execute("COMMIT")
        assert db.upgrade(engine, "0005") == (HEAD, HEAD)  # an upgrade never goes back
        assert db.current_revision(engine) == HEAD
    finally:
        other.close()
        engine.dispose()


def test_every_problem_that_cannot_be_repaired_is_said(engine):
    db.upgrade(engine)
    with engine.begin() as conn:
        for view in ("latest_forecasts", "forecast_accuracy_monthly", "forecast_accuracy", "forecast_errors"):
            conn.exec_driver_sql(f"DROP VIEW {view}")
        conn.exec_driver_sql("ALTER TABLE series DROP COLUMN last_note")
        conn.exec_driver_sql("ALTER TABLE fits DROP COLUMN note")
    said = message(lambda: db.repair(engine))
    assert said == (
        f"the schema of {db.describe(engine)} has drifted from its migrations: column series.last_note is "
        "missing; column fits.note is missing; tickcast cannot recreate the data these held: restore them "
        "from a backup"
    )


def test_reading_waits_as_long_as_it_is_told_and_leaves_indexes_out_of_what_it_says(tmp_path):
    url = f"sqlite:///{tmp_path / 'tickcast.db'}"
    engine = db.open_database(url)
    index = sa.inspect(engine).get_indexes("fits")[0]["name"]
    reading = db.open_existing_database(url, busy_timeout=2)
    with reading.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2000
    reading.dispose()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {index}")
        conn.exec_driver_sql("DROP VIEW latest_forecasts")
    engine.dispose()
    said = message(lambda: db.open_existing_database(url))
    assert "latest_forecasts" in said and index not in said


def test_a_postgresql_engine_waits_for_locks_as_told_and_replaces_connections_the_server_dropped(pg_server):
    import psycopg

    with pg_server.database() as url:
        engine = db.make_engine(url, busy_timeout=1.5)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "1500ms"
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            # the pooled connection is killed on the server (a restart, an idle timeout)
            with psycopg.connect(pg_server.url().replace("+psycopg", ""), autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            with engine.connect() as conn:  # pinged first, and replaced
                assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        finally:
            engine.dispose()
