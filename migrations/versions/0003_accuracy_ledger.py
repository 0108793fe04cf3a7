"""The realised-accuracy ledger, trading calendars and re-based histories.

- views ``forecast_errors`` (one row per forecast whose target date has an actual),
  ``forecast_accuracy`` (per series, step and interval level) and ``forecast_accuracy_monthly``
  (per series, target month and level);
- ``series.calendar``: the trading calendar of a series' target dates;
- ``fits.history_replaced_at``: set when the series' history was replaced after the fit (a re-based
  source, or ``tickcast ingest --full``): the fit is on the old basis and is never continued;
- ``forecasts.interval_factor``: the factor applied to the model's interval (adaptive conformal);
  ``forecasts.rescaled_by``: the re-basing factor(s) applied to a stored forecast since it was made;
- column comments (PostgreSQL) stating the units: ``*_pct`` columns are percent, every other ratio
  (skill, coverage, level) a fraction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The same texts are the columns' ``comment`` in service/schema.py (the drift test compares them).
TABLE_COMMENTS = {
    ("series", "calendar"): "trading calendar of the target dates of a daily series: an exchange_calendars "
    "code (XNYS, XLON ...) or us-federal; NULL: weekdays",
    ("fits", "skill"): "1 - mae / naive_mae on the backtest, a fraction: 0.05 = 5 % lower MAE than the naive "
    "forecast; > 0 beats it",
    ("fits", "history_replaced_at"): "when the series' history was replaced after this fit (re-based by the "
    "source, or ingest --full): the fit is on the old basis and is never "
    "warm-started from",
    ("forecasts", "level"): "nominal coverage of [lower, upper], a fraction (0.8 = 80 %)",
    ("forecasts", "interval_factor"): "factor applied to the model's interval half-widths before storing "
    "(adaptive conformal feedback); 1 = the model's own interval",
    ("forecasts", "rescaled_by"): "product of the re-basing factors (splits, dividends) applied to value, lower "
    "and upper after the forecast was made; NULL = never rescaled",
}

VIEW_COMMENTS = {
    "latest_forecasts": {
        "change_pct": "change from last_value to the forecast, in percent (1.5 = +1.5 %)",
        "skill": "backtest skill 1 - MAE / naive MAE, a fraction (0.05 = 5 % better than the naive forecast)",
        "level": "nominal interval coverage, a fraction (0.8 = 80 %)",
    },
    "forecast_errors": {
        "ape_pct": "absolute percentage error, in percent; NULL when the actual is 0",
        "inside": "1 when the actual fell inside [lower, upper], else 0",
        "winkler": "interval (Winkler) score: width + 2/(1 - level) x the distance outside the interval",
    },
    **{
        view: {
            "mape_pct": "mean absolute percentage error, in percent",
            "naive_mae": "MAE of the naive forecast (the value at the origin) over the same forecasts",
            "skill": "1 - mae / naive_mae, a fraction (0.05 = 5 % lower MAE than the naive forecast)",
            "coverage": "fraction of actuals inside the interval, to compare with level (a fraction too)",
            "winkler": "mean interval (Winkler) score, in the series' units: lower is better",
        }
        for view in ("forecast_accuracy", "forecast_accuracy_monthly")
    },
}

# One row per forecast whose target date has an actual; the naive forecast is the observed value at
# the forecast's origin, so both are scored over the same forecasts.
FORECAST_ERRORS = """
CREATE VIEW forecast_errors AS
SELECT s.key AS series_key,
       f.series_id AS series_id,
       f.fit_id AS fit_id,
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
       f.rescaled_by AS rescaled_by
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
SELECT series_key, step, level,
       {_SCORES}
FROM forecast_errors
GROUP BY series_key, step, level
"""

# One spelling for both backends (a date as text is YYYY-MM-DD on each): service/drift.py recreates
# a dropped view from the migrations' SQL, so the SQL must not depend on the database.
_MONTH = "substr(CAST(target_ts AS TEXT), 1, 7)"

FORECAST_ACCURACY_MONTHLY = f"""
CREATE VIEW forecast_accuracy_monthly AS
SELECT series_key, {_MONTH} AS month, level,
       {_SCORES}
FROM forecast_errors
GROUP BY series_key, {_MONTH}, level
"""

VIEWS = ("forecast_accuracy_monthly", "forecast_accuracy", "forecast_errors")  # dependants first


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("series", sa.Column("calendar", sa.String(20)))
    op.add_column("fits", sa.Column("history_replaced_at", sa.DateTime(timezone=True)))
    op.add_column("forecasts", sa.Column("interval_factor", sa.Double, nullable=False, server_default="1"))
    op.add_column("forecasts", sa.Column("rescaled_by", sa.Double))
    op.execute(FORECAST_ERRORS)
    op.execute(FORECAST_ACCURACY)
    op.execute(FORECAST_ACCURACY_MONTHLY)
    if dialect == "postgresql":  # SQLite has no column comments: the README and schema.py carry them
        for (table, column), text in TABLE_COMMENTS.items():
            op.execute(f"COMMENT ON COLUMN {table}.{column} IS '{_quoted(text)}'")
        for view, columns in VIEW_COMMENTS.items():
            for column, text in columns.items():
                op.execute(f"COMMENT ON COLUMN {view}.{column} IS '{_quoted(text)}'")


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("COMMENT ON COLUMN fits.skill IS NULL")
        op.execute("COMMENT ON COLUMN forecasts.level IS NULL")
        for view, columns in VIEW_COMMENTS.items():
            if view == "latest_forecasts":
                for column in columns:
                    op.execute(f"COMMENT ON COLUMN latest_forecasts.{column} IS NULL")
    op.drop_column("forecasts", "rescaled_by")
    op.drop_column("forecasts", "interval_factor")
    op.drop_column("fits", "history_replaced_at")
    op.drop_column("series", "calendar")


def _quoted(text: str) -> str:
    return text.replace("'", "''")
