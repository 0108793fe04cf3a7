"""Every model's forecast, at several interval levels, and forecasts made for past origins.

- ``forecasts.model``: which model made the row: ``published`` (the forecast tickcast publishes: the
  combination of its models) or one of the models combined (``rnn``, ``ets``, ``theta`` ...), so the
  ledger scores each of them on what really happened; rows stored before are ``published``.
- one row per interval level: the key of ``forecasts`` becomes (series_id, origin_ts, model, step,
  level), so a forecast carries an 80 % and a 95 % interval (``forecast.levels``);
- ``forecasts.backfilled`` and ``fits.backfill``: made by ``tickcast backfill`` at a past origin,
  from the data up to it only; a backfilled fit is never a series' newest fit (nor continued);
- ``fits.combination``: how the published forecast combined the models (JSON: weights per model and
  what the combination did);
- the views: ``latest_forecasts`` shows the published forecast of each series' newest fit (not
  backfilled), one row per step and level; ``forecast_errors`` and the accuracy views carry
  ``model`` (and ``backfilled``), and score per model.

On SQLite the forecasts table is copied (its key changes): the views are dropped and recreated
around the copy, foreign keys are off during the migration (see migrations/env.py) and checked
before it commits.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PUBLISHED = "published"

# The same texts are the columns' ``comment`` in service/schema.py (the drift test compares them).
COMMENTS = {
    ("forecasts", "model"): "the model that made the forecast: published (the forecast tickcast publishes, "
    "its models combined) or one of them (rnn, ets, theta ...)",
    ("forecasts", "backfilled"): "1: made by tickcast backfill at a past origin, from the data up to it only",
    ("fits", "backfill"): "1: a fit made by tickcast backfill at a past origin (never a series' newest fit)",
    ("fits", "combination"): "how the published forecast combined the models (JSON: weights per model, the rule)",
}

LATEST_FORECASTS = f"""
CREATE VIEW latest_forecasts AS
SELECT s.key AS series_key,
       s.name AS series_name,
       f.origin_ts AS last_ts,
       o.value AS last_value,
       f.target_ts AS target_ts,
       f.step AS step,
       f.value AS forecast,
       f.lower AS lower,
       f.upper AS upper,
       f.level AS level,
       CASE WHEN o.value IS NULL OR o.value = 0 THEN NULL
            ELSE 100.0 * (f.value - o.value) / ABS(o.value) END AS change_pct,
       ft.skill AS skill,
       ft.mase AS mase,
       ft.naive_mase AS naive_mase,
       ft.id AS fit_id,
       ft.created_at AS fitted_at
FROM forecasts f
JOIN fits ft ON ft.id = f.fit_id
JOIN series s ON s.id = f.series_id
LEFT JOIN observations o ON o.series_id = f.series_id AND o.ts = f.origin_ts
WHERE f.model = '{PUBLISHED}'
  AND ft.id = (SELECT MAX(f2.id) FROM fits f2
               WHERE f2.series_id = f.series_id AND f2.status = 'ok' AND f2.backfill = 0)
"""

FORECAST_ERRORS = """
CREATE VIEW forecast_errors AS
SELECT s.key AS series_key,
       f.series_id AS series_id,
       f.fit_id AS fit_id,
       f.model AS model,
       f.origin_ts AS origin_ts,
       f.target_ts AS target_ts,
       f.step AS step,
       f.value AS forecast,
       f.lower AS lower,
       f.upper AS upper,
       f.level AS level,
       a.value AS actual,
       o.value AS naive_forecast,
       a.value - f.value AS error,
       ABS(a.value - f.value) AS abs_error,
       ABS(a.value - o.value) AS naive_abs_error,
       CASE WHEN a.value = 0 THEN NULL ELSE 100.0 * ABS(a.value - f.value) / ABS(a.value) END AS ape_pct,
       CAST(CASE WHEN a.value >= f.lower AND a.value <= f.upper THEN 1 ELSE 0 END AS DOUBLE PRECISION) AS inside,
       (f.upper - f.lower)
         + CASE WHEN a.value < f.lower THEN 2.0 / (1 - f.level) * (f.lower - a.value)
                WHEN a.value > f.upper THEN 2.0 / (1 - f.level) * (a.value - f.upper)
                ELSE 0 END AS winkler,
       f.interval_factor AS interval_factor,
       f.rescaled_by AS rescaled_by,
       f.backfilled AS backfilled
FROM forecasts f
JOIN series s ON s.id = f.series_id
JOIN observations a ON a.series_id = f.series_id AND a.ts = f.target_ts
JOIN observations o ON o.series_id = f.series_id AND o.ts = f.origin_ts
"""

_SCORES = """COUNT(*) AS n,
       AVG(abs_error) AS mae,
       SQRT(AVG(error * error)) AS rmse,
       AVG(ape_pct) AS mape_pct,
       AVG(naive_abs_error) AS naive_mae,
       CASE WHEN AVG(naive_abs_error) > 0 THEN 1 - AVG(abs_error) / AVG(naive_abs_error) END AS skill,
       AVG(inside) AS coverage,
       AVG(winkler) AS winkler,
       MIN(target_ts) AS first_target_ts,
       MAX(target_ts) AS last_target_ts"""

FORECAST_ACCURACY = f"""
CREATE VIEW forecast_accuracy AS
SELECT series_key, model, step, level,
       {_SCORES}
FROM forecast_errors
GROUP BY series_key, model, step, level
"""

_MONTH = "substr(CAST(target_ts AS TEXT), 1, 7)"  # one spelling for both backends (see 0003)

FORECAST_ACCURACY_MONTHLY = f"""
CREATE VIEW forecast_accuracy_monthly AS
SELECT series_key, model, {_MONTH} AS month, level,
       {_SCORES}
FROM forecast_errors
GROUP BY series_key, model, {_MONTH}, level
"""

VIEWS = ("forecast_accuracy_monthly", "forecast_accuracy", "forecast_errors", "latest_forecasts")  # dependants first

# Before: the views of 0003 and 0004 (the downgrade puts them back).
OLD_VIEWS = (
    ("latest_forecasts", "0004_group_fits", "LATEST_FORECASTS"),
    ("forecast_errors", "0003_accuracy_ledger", "FORECAST_ERRORS"),
    ("forecast_accuracy", "0003_accuracy_ledger", "FORECAST_ACCURACY"),
    ("forecast_accuracy_monthly", "0003_accuracy_ledger", "FORECAST_ACCURACY_MONTHLY"),
)


def _forecast_columns() -> list[sa.Column]:
    return [
        sa.Column(
            "model", sa.String(32), nullable=False, server_default=PUBLISHED, comment=COMMENTS[("forecasts", "model")]
        ),
        sa.Column(
            "backfilled",
            sa.Integer,
            nullable=False,
            server_default="0",
            comment=COMMENTS[("forecasts", "backfilled")],
        ),
    ]


def _fit_columns() -> list[sa.Column]:
    return [
        sa.Column("backfill", sa.Integer, nullable=False, server_default="0", comment=COMMENTS[("fits", "backfill")]),
        sa.Column("combination", sa.JSON, comment=COMMENTS[("fits", "combination")]),
    ]


def _drop_views() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")


def upgrade() -> None:
    bind = op.get_bind()
    _drop_views()
    for column in _fit_columns():
        op.add_column("fits", column)
    if bind.dialect.name == "sqlite":
        _copy_forecasts(bind, NEW_KEY, extra=True)
    else:
        for column in _forecast_columns():
            op.add_column("forecasts", column)
        op.execute("ALTER TABLE forecasts DROP CONSTRAINT pk_forecasts")
        op.create_primary_key("pk_forecasts", "forecasts", list(NEW_KEY))
    for sql in (LATEST_FORECASTS, FORECAST_ERRORS, FORECAST_ACCURACY, FORECAST_ACCURACY_MONTHLY):
        op.execute(sql)
    _comment_views(bind)


def _comment_views(bind) -> None:
    """A view recreated loses its column comments (PostgreSQL): 0003's units, put back."""
    if bind.dialect.name != "postgresql":
        return
    for view, columns in _old("0003_accuracy_ledger", "VIEW_COMMENTS").items():
        for column, text in columns.items():
            op.execute(f"COMMENT ON COLUMN {view}.{column} IS '{text.replace(chr(39), chr(39) * 2)}'")


def _old(module: str, name: str):
    """A constant of an earlier migration (their views' SQL, their comments)."""
    return getattr(importlib.import_module(f"tickcast.migrations.versions.{module}"), name)


def downgrade() -> None:
    bind = op.get_bind()
    _drop_views()
    # Back to one row per series, origin and step: the published forecast at its first level.
    op.execute(f"DELETE FROM forecasts WHERE model <> '{PUBLISHED}' OR backfilled = 1")
    op.execute(
        "DELETE FROM forecasts WHERE level > (SELECT MIN(f2.level) FROM forecasts f2 WHERE f2.series_id = "
        "forecasts.series_id AND f2.origin_ts = forecasts.origin_ts AND f2.step = forecasts.step)"
    )
    if bind.dialect.name == "sqlite":
        _copy_forecasts(bind, OLD_KEY, extra=False)
    else:
        op.execute("ALTER TABLE forecasts DROP CONSTRAINT pk_forecasts")
        op.drop_column("forecasts", "backfilled")
        op.drop_column("forecasts", "model")
        op.create_primary_key("pk_forecasts", "forecasts", list(OLD_KEY))
    op.execute("DELETE FROM loss_history WHERE fit_id IN (SELECT id FROM fits WHERE backfill = 1)")
    op.execute("DELETE FROM fits WHERE backfill = 1")
    for column in reversed(_fit_columns()):
        op.drop_column("fits", column.name)
    for _view, module, name in OLD_VIEWS:
        op.execute(_old(module, name))
    _comment_views(bind)


NEW_KEY = ("series_id", "origin_ts", "model", "step", "level")
OLD_KEY = ("series_id", "origin_ts", "step")


def _forecasts_table(name: str, key: tuple[str, ...], extra: bool) -> list:
    """The columns and constraints of forecasts as 0001 and 0003 made it (``extra``: with this
    migration's columns)."""
    columns = [
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("origin_ts", sa.Date, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("fit_id", sa.Integer, nullable=False),
        sa.Column("target_ts", sa.Date, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("lower", sa.Double, nullable=False),
        sa.Column("upper", sa.Double, nullable=False),
        sa.Column("level", sa.Double, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_factor", sa.Double, nullable=False, server_default="1"),
        sa.Column("rescaled_by", sa.Double),
    ]
    return [
        *columns,
        *(_forecast_columns() if extra else []),
        sa.PrimaryKeyConstraint(*key, name="pk_forecasts"),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"], ondelete="CASCADE", name="fk_forecasts_series_id_series"),
        sa.ForeignKeyConstraint(["fit_id"], ["fits.id"], ondelete="CASCADE", name="fk_forecasts_fit_id_fits"),
    ]


def _copy_forecasts(bind, key: tuple[str, ...], extra: bool) -> None:
    """SQLite cannot change a table's key in place: build the new table, copy, swap (foreign keys
    are off during migrations, see migrations/env.py, and checked after the copy)."""
    new = op.create_table("_forecasts_new", *_forecasts_table("_forecasts_new", key, extra))
    columns = ", ".join(c.name for c in new.columns if c.name not in ("model", "backfilled"))
    op.execute(f"INSERT INTO _forecasts_new ({columns}) SELECT {columns} FROM forecasts")
    op.execute("DROP TABLE forecasts")
    op.execute("ALTER TABLE _forecasts_new RENAME TO forecasts")
    op.create_index("ix_forecasts_fit_id", "forecasts", ["fit_id"])
    _check_foreign_keys(bind)


def _check_foreign_keys(bind) -> None:
    """After copying a table with foreign keys off: every reference must still resolve."""
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration 0006 would leave {len(broken)} broken foreign key(s), e.g. {tuple(broken[0])}")
