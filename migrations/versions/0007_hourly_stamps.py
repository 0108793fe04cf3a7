"""Stamps within a day: hourly series.

``observations.ts``, ``forecasts.origin_ts`` and ``target_ts``, ``fits.train_start`` and
``train_end`` hold a date, or a time within a day for an hourly series (service/stamps.py):

- PostgreSQL: the columns become ``timestamp without time zone`` (a date becomes its midnight).
  The views that read them are dropped and recreated around the change, as 0006 made them.
- SQLite: nothing to change. The columns hold ISO text: dates stay ``YYYY-MM-DD``, and a time within
  a day is written ``YYYY-MM-DD HH:MM:SS``.

The downgrade refuses while any stored stamp has a time of day: a date column cannot hold it, and
an hourly series' rows would collide on their date. Remove the hourly series first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import importlib

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = (
    ("observations", "ts"),
    ("forecasts", "origin_ts"),
    ("forecasts", "target_ts"),
    ("fits", "train_start"),
    ("fits", "train_end"),
)


def _views():
    return importlib.import_module("tickcast.migrations.versions.0006_models_levels_backfill")


def _retype(bind, sql_type: str) -> None:
    views = _views()
    for view in views.VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {sql_type} USING {column}::{sql_type}")
    for sql in (
        views.LATEST_FORECASTS,
        views.FORECAST_ERRORS,
        views.FORECAST_ACCURACY,
        views.FORECAST_ACCURACY_MONTHLY,
    ):
        op.execute(sql)
    views._comment_views(bind)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _retype(bind, "timestamp")


def within_a_day(bind) -> list[str]:
    """The columns that hold a stamp with a time of day, with how many."""
    if bind.dialect.name == "postgresql":
        has_time = "{column} <> date_trunc('day', {column})"
    else:
        has_time = "length(CAST({column} AS TEXT)) > 10"
    found = []
    for table, column in COLUMNS:
        n = bind.exec_driver_sql(f"SELECT COUNT(*) FROM {table} WHERE {has_time.format(column=column)}").scalar()
        if n:
            found.append(f"{n} in {table}.{column}")
    return found


def downgrade() -> None:
    bind = op.get_bind()
    found = within_a_day(bind)
    if found:
        raise RuntimeError(
            "cannot downgrade below 0007: stamps within a day (hourly series) are stored ("
            + ", ".join(found)
            + "): a date column cannot hold them; remove those series first"
        )
    if bind.dialect.name == "postgresql":
        _retype(bind, "date")
