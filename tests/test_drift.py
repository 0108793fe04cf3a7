"""Schema drift (service/drift.py) in this process, on a real database of each backend upgraded by
the migrations and then tampered with as an outsider would: what is found missing (tables, columns,
indexes, views, a view whose table is gone), how it is described, what cannot be repaired (a column,
a table stored rows point at, each named with its count), and what the repairs recreate.
tests/reliability/test_schema_drift.py runs the commands that find and repair it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.db import migration_view_definitions, open_database, write_transaction
from tickcast.service.drift import Drift, apply_repairs, find_drift, unrepairable

from .support.tables import add_series

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def database(db_url):
    """A database at head, and a way to run SQL on it without tickcast's engine."""
    engine = open_database(db_url)

    def sql(*statements: str) -> None:
        outsider = sa.create_engine(db_url)
        with outsider.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        outsider.dispose()

    yield engine, sql
    engine.dispose()


def drift_of(engine) -> Drift:
    with engine.connect() as conn:
        return find_drift(conn)


def index_of(table: str) -> str:
    return str(next(iter(schema.metadata.tables[table].indexes)).name)


def test_a_database_at_head_has_no_drift(database):
    engine, _ = database
    drift = drift_of(engine)
    assert drift == Drift() and not drift and drift.describe() == ""


def test_every_missing_table_column_index_and_view_is_found(database):
    engine, sql = database
    lease_index = [str(i.name) for i in schema.metadata.tables["runs"].indexes]
    sql(
        "DROP TABLE run_lease",
        "DROP TABLE loss_history",
        f"DROP INDEX {lease_index[0]}",
        "DROP VIEW forecast_accuracy_monthly",
        "DROP VIEW forecast_accuracy",
    )
    drift = drift_of(engine)
    assert sorted(drift.tables) == ["loss_history", "run_lease"]  # both, not only the first
    assert drift.indexes == [lease_index[0]] and drift.columns == []
    assert sorted(drift.views) == ["forecast_accuracy", "forecast_accuracy_monthly"]
    assert bool(drift)


def test_drift_is_described_in_one_line_kind_by_kind():
    drift = Drift(tables=["a", "b"], columns=["t.c"], indexes=["ix"], views=["v", "w"])
    assert drift.describe() == (
        "missing tables: a, b; missing columns: t.c; missing indexes: ix; missing or altered views: v, w"
    )
    assert Drift(views=["v"]).describe() == "missing or altered views: v" and Drift(indexes=["i"])
    assert Drift(columns=["t.c"]) and Drift(tables=["t"]) and Drift(views=["v"])


def test_a_dropped_column_is_found_and_cannot_be_repaired(database, backend):
    engine, sql = database
    if backend == "sqlite":
        sql("DROP VIEW latest_forecasts", "ALTER TABLE series DROP COLUMN last_note")
    else:
        sql("ALTER TABLE series DROP COLUMN last_note CASCADE")
    drift = drift_of(engine)
    assert drift.columns == ["series.last_note"] and drift.tables == []
    with engine.connect() as conn:
        assert unrepairable(conn, drift) == ["column series.last_note is missing"]


def test_a_missing_table_that_stored_rows_refer_to_cannot_be_recreated(database, backend):
    engine, sql = database
    with write_transaction(engine) as conn:
        add_series(conn, "csv:a", NOW)
        add_series(conn, "csv:b", NOW)
    with engine.connect() as conn:
        fits = conn.execute(sa.select(sa.func.count()).select_from(schema.fits)).scalar_one()
    cascade = " CASCADE" if backend == "postgresql" else ""
    if backend == "sqlite":  # the views read series: SQLite keeps them, describing them fails
        sql("PRAGMA foreign_keys = OFF", f"DROP TABLE series{cascade}", "DROP TABLE observations")
    else:
        sql(f"DROP TABLE series{cascade}", f"DROP TABLE observations{cascade}")
    drift = drift_of(engine)
    assert drift.tables == ["series", "observations"]  # observations, gone too, is not counted
    assert "latest_forecasts" in drift.views  # a view whose table is gone is not intact
    with engine.connect() as conn:
        problems = unrepairable(conn, drift)
    assert problems == [f"table series is missing and stored rows refer to it: fits.series_id ({fits} rows)"]


def test_a_missing_table_nothing_refers_to_is_repairable_and_recreated_with_views_and_indexes(database):
    engine, sql = database
    with write_transaction(engine) as conn:
        add_series(conn, "csv:a", NOW)  # rows elsewhere do not matter
    runs_index = index_of("runs")
    sql(
        "DROP TABLE run_lease",
        "DROP TABLE loss_history",
        f"DROP INDEX {runs_index}",
        "DROP VIEW forecast_accuracy_monthly",
    )
    drift = drift_of(engine)
    with engine.connect() as conn:
        assert unrepairable(conn, drift) == []
    with write_transaction(engine) as conn:
        done = apply_repairs(conn, drift, migration_view_definitions())
    assert done == [
        f"recreated the empty table {drift.tables[0]}",
        f"recreated the empty table {drift.tables[1]}",
        f"recreated the index {runs_index}",
        "recreated the view forecast_accuracy_monthly",
    ]
    assert sorted(drift.tables) == ["loss_history", "run_lease"]
    assert drift_of(engine) == Drift()


def test_tables_of_our_own_are_not_drift(database):
    engine, sql = database
    sql("CREATE TABLE my_notes (x integer)", "CREATE VIEW my_view AS SELECT 1 AS one")
    assert drift_of(engine) == Drift()


def test_every_table_whose_rows_refer_to_a_missing_one_is_named_with_its_count(database, backend):
    engine, sql = database
    with write_transaction(engine) as conn:
        sid, fit = add_series(conn, "csv:a", NOW)
        conn.execute(sa.insert(schema.loss_history), [{"fit_id": fit, "epoch": e, "train_loss": 1.0} for e in range(2)])
        conn.execute(
            sa.insert(schema.forecasts).values(
                series_id=sid,
                origin_ts=NOW.date(),
                model=schema.PUBLISHED,
                level=0.8,
                step=1,
                fit_id=fit,
                target_ts=NOW.date(),
                value=1.0,
                lower=0.0,
                upper=2.0,
                created_at=NOW,
            )
        )
    if backend == "sqlite":
        sql("PRAGMA foreign_keys = OFF", "DROP TABLE fits")
    else:
        sql("DROP TABLE fits CASCADE")
    drift = drift_of(engine)
    with engine.connect() as conn:
        (problem,) = unrepairable(conn, drift)
    assert problem.startswith("table fits is missing and stored rows refer to it: ")
    refs = problem.split(": ", 1)[1].split(", ")
    assert sorted(refs) == ["forecasts.fit_id (1 rows)", "loss_history.fit_id (2 rows)"]
