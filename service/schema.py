"""The tables, as SQLAlchemy Core metadata.

Alembic's revisions in ``migrations/`` are the only thing that creates or changes the schema; this
module mirrors them so queries can be written against ``Table`` objects and so a test can ask
Alembic's autogenerate whether the two have drifted apart. Timestamps are UTC; dates are ISO.
Observation, origin and target stamps are dates, or times within a day for hourly series
(``service/stamps.py``).
"""

from __future__ import annotations

import sqlalchemy as sa

from .stamps import StampType

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UTCDateTime = sa.DateTime(timezone=True)

series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("symbol", sa.String(200), nullable=False),
    sa.Column("field", sa.String(100)),
    sa.Column("frequency", sa.String(4)),
    sa.Column("name", sa.String(200)),
    sa.Column("is_price", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_fetch_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("last_note", sa.Text),  # what validation dropped on the last fetch, if anything
    sa.Column(
        "calendar",
        sa.String(20),
        comment="trading calendar of the target dates of a daily series: an "
        "exchange_calendars code (XNYS, XLON ...) or us-federal; NULL: weekdays",
    ),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("ts", StampType(), primary_key=True),
    sa.Column("value", sa.Double, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trigger", sa.String(20), nullable=False),  # manual, schedule, catch-up
    sa.Column("status", sa.String(20), nullable=False),  # running, ok, partial, failed
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("series_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("series_ok", sa.Integer, nullable=False, server_default="0"),
    sa.Column("series_failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("series_skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("new_observations", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.Column("host", sa.String(200)),
    sa.Column("pid", sa.Integer),
    sa.Index(None, "status"),
)


# Training across series (migration 0004): the column comments, also stated in the README.
# Which model made a forecast: PUBLISHED is the forecast tickcast publishes (its models combined); the
# others are the names of the models combined (migration 0006).
PUBLISHED = "published"
MODEL_COMMENTS = {
    ("forecasts", "model"): "the model that made the forecast: published (the forecast tickcast publishes, "
    "its models combined) or one of them (rnn, ets, theta ...)",
    ("forecasts", "backfilled"): "1: made by tickcast backfill at a past origin, from the data up to it only",
    ("fits", "backfill"): "1: a fit made by tickcast backfill at a past origin (never a series' newest fit)",
    ("fits", "combination"): "how the published forecast combined the models (JSON: weights per model, the rule)",
}

FIT_COMMENTS = {
    "scope": "series: the series' own model; group: one model across the series of a group (the shared fit has "
    "series_id NULL and the weights; each member's row points to it with group_fit_id)",
    "group_key": "the group (frequency/season length, e.g. M/12) of a fit with scope group, or of a series fit "
    "that model.training = auto chose over the group's model",
    "group_fit_id": "on a member's row: the group's shared fit (weights and loss history) its forecasts came from",
    "n_series": "on a shared fit: how many series it was trained across",
    "note": "what the service decided and why: auto's choice between the group's model and per-series models, a "
    "warm start replaced by a cold fit",
}

fits = sa.Table(
    "fits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="SET NULL")),
    # NULL for a group's shared fit (scope 'group'): its members' rows name their series
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id", ondelete="CASCADE")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # ok, failed, skipped
    sa.Column("error", sa.Text),
    sa.Column("mode", sa.String(10)),  # cold (from scratch) or warm (fine-tuned from warm_started_from)
    sa.Column("warm_started_from", sa.Integer, sa.ForeignKey("fits.id", ondelete="SET NULL")),
    sa.Column("cell", sa.String(10)),
    sa.Column("hyperparams", sa.JSON),
    sa.Column("settings_hash", sa.String(64)),
    sa.Column("transform", sa.String(20)),
    sa.Column("train_start", StampType()),
    sa.Column("train_end", StampType()),
    sa.Column("n_obs", sa.Integer),
    sa.Column("epochs", sa.Integer),
    sa.Column("best_epoch", sa.Integer),
    sa.Column("train_loss", sa.Double),
    sa.Column("val_loss", sa.Double),
    sa.Column("mae", sa.Double),
    sa.Column("rmse", sa.Double),
    sa.Column("smape", sa.Double),
    sa.Column("mase", sa.Double),
    sa.Column("naive_mae", sa.Double),
    sa.Column("naive_rmse", sa.Double),
    sa.Column("naive_smape", sa.Double),
    sa.Column("naive_mase", sa.Double),
    sa.Column(
        "skill",
        sa.Double,
        comment="1 - mae / naive_mae on the backtest, a fraction: 0.05 = 5 % lower MAE "
        "than the naive forecast; > 0 beats it",
    ),
    sa.Column("backtest_n", sa.Integer),
    sa.Column("seconds", sa.Double),
    sa.Column("weights", sa.LargeBinary),
    sa.Column(
        "history_replaced_at",
        UTCDateTime,
        comment="when the series' history was replaced after this fit "
        "(re-based by the source, or ingest --full): the fit is on the old basis and is never warm-started "
        "from",
    ),
    sa.Column("scope", sa.String(10), nullable=False, server_default="series", comment=FIT_COMMENTS["scope"]),
    sa.Column("group_key", sa.String(50), comment=FIT_COMMENTS["group_key"]),
    sa.Column(
        "group_fit_id", sa.Integer, sa.ForeignKey("fits.id", ondelete="SET NULL"), comment=FIT_COMMENTS["group_fit_id"]
    ),
    sa.Column("n_series", sa.Integer, comment=FIT_COMMENTS["n_series"]),
    sa.Column("note", sa.Text, comment=FIT_COMMENTS["note"]),
    sa.Column("backfill", sa.Integer, nullable=False, server_default="0", comment=MODEL_COMMENTS[("fits", "backfill")]),
    sa.Column("combination", sa.JSON, comment=MODEL_COMMENTS[("fits", "combination")]),
    sa.Index(None, "series_id", "status"),
    sa.Index(None, "run_id"),
    sa.Index(None, "group_fit_id"),
)

loss_history = sa.Table(
    "loss_history",
    metadata,
    sa.Column("fit_id", sa.Integer, sa.ForeignKey("fits.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),  # 0 is the loss before the first update
    sa.Column("train_loss", sa.Double, nullable=False),
    sa.Column("val_loss", sa.Double),
    sa.Column("grad_norm", sa.Double),
    sa.Column("clip_fraction", sa.Double),
)

forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("origin_ts", StampType(), primary_key=True),  # the last observation the forecast starts from
    sa.Column(
        "model",
        sa.String(32),
        primary_key=True,
        server_default=PUBLISHED,
        comment=MODEL_COMMENTS[("forecasts", "model")],
    ),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("fit_id", sa.Integer, sa.ForeignKey("fits.id", ondelete="CASCADE"), nullable=False),
    sa.Column("target_ts", StampType(), nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("lower", sa.Double, nullable=False),
    sa.Column("upper", sa.Double, nullable=False),
    sa.Column(
        "level",
        sa.Double,
        primary_key=True,
        comment="nominal coverage of [lower, upper], a fraction (0.8 = 80 %)",
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column(
        "interval_factor",
        sa.Double,
        nullable=False,
        server_default="1",
        comment="factor applied to the model's interval half-widths before storing (adaptive conformal "
        "feedback); 1 = the model's own interval",
    ),
    sa.Column(
        "rescaled_by",
        sa.Double,
        comment="product of the re-basing factors (splits, dividends) applied to "
        "value, lower and upper after the forecast was made; NULL = never rescaled",
    ),
    sa.Column(
        "backfilled",
        sa.Integer,
        nullable=False,
        server_default="0",
        comment=MODEL_COMMENTS[("forecasts", "backfilled")],
    ),
    sa.Index(None, "fit_id"),
)

# The view people query first (created by migration 0001): one row per series and step from its
# newest successful fit, with the last observed value, the change in percent (change_pct: 1.5 means
# +1.5 %) and the backtest skill (a fraction: 0.05 means a 5 % lower MAE than the naive forecast).
# Units everywhere: a column named *_pct is in percent; every other ratio (skill, coverage, level,
# clip_fraction) is a fraction.
latest_forecasts = sa.table(
    "latest_forecasts",
    sa.column("series_key", sa.String),
    sa.column("series_name", sa.String),
    sa.column("last_ts", StampType()),
    sa.column("last_value", sa.Double),
    sa.column("target_ts", StampType()),
    sa.column("step", sa.Integer),
    sa.column("forecast", sa.Double),
    sa.column("lower", sa.Double),
    sa.column("upper", sa.Double),
    sa.column("level", sa.Double),
    sa.column("change_pct", sa.Double),
    sa.column("skill", sa.Double),
    sa.column("mase", sa.Double),
    sa.column("naive_mase", sa.Double),
    sa.column("fit_id", sa.Integer),
    sa.column("fitted_at", UTCDateTime),
)

# The realised-accuracy ledger (migration 0003). forecast_errors: one row per forecast whose target
# date has an actual, beside the naive forecast from the same origin (the value observed there).
forecast_errors = sa.table(
    "forecast_errors",
    sa.column("series_key", sa.String),
    sa.column("series_id", sa.Integer),
    sa.column("fit_id", sa.Integer),
    sa.column("model", sa.String),
    sa.column("origin_ts", StampType()),
    sa.column("target_ts", StampType()),
    sa.column("step", sa.Integer),
    sa.column("forecast", sa.Double),
    sa.column("lower", sa.Double),
    sa.column("upper", sa.Double),
    sa.column("level", sa.Double),
    sa.column("actual", sa.Double),
    sa.column("naive_forecast", sa.Double),
    sa.column("error", sa.Double),
    sa.column("abs_error", sa.Double),
    sa.column("naive_abs_error", sa.Double),
    sa.column("ape_pct", sa.Double),
    sa.column("inside", sa.Double),
    sa.column("winkler", sa.Double),
    sa.column("interval_factor", sa.Double),
    sa.column("rescaled_by", sa.Double),
    sa.column("backfilled", sa.Integer),
)

# Its aggregates: per series, step and level (forecast_accuracy), and per series, target month and
# level (forecast_accuracy_monthly, with ``month`` as YYYY-MM instead of ``step``).
_ACCURACY_SCORES = ("n", "mae", "rmse", "mape_pct", "naive_mae", "skill", "coverage", "winkler")
forecast_accuracy = sa.table(
    "forecast_accuracy",
    sa.column("series_key", sa.String),
    sa.column("model", sa.String),
    sa.column("step", sa.Integer),
    sa.column("level", sa.Double),
    sa.column("n", sa.Integer),
    *(sa.column(name, sa.Double) for name in _ACCURACY_SCORES[1:]),
    sa.column("first_target_ts", StampType()),
    sa.column("last_target_ts", StampType()),
)
forecast_accuracy_monthly = sa.table(
    "forecast_accuracy_monthly",
    sa.column("series_key", sa.String),
    sa.column("model", sa.String),
    sa.column("month", sa.String),
    sa.column("level", sa.Double),
    sa.column("n", sa.Integer),
    *(sa.column(name, sa.Double) for name in _ACCURACY_SCORES[1:]),
    sa.column("first_target_ts", StampType()),
    sa.column("last_target_ts", StampType()),
)

# The views the migrations create (service/drift.py recreates them).
VIEWS = (latest_forecasts, forecast_errors, forecast_accuracy, forecast_accuracy_monthly)

# One row per lease name ("run"): who holds it and until when. Claimed with an atomic upsert that
# only overwrites an expired or abandoned holder (see service/lease.py).
run_lease = sa.Table(
    "run_lease",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    # migration 0005: the holder identified by more than its pid
    sa.Column(
        "process_start",
        sa.BigInteger,
        comment="the holder's start time in clock ticks since boot (/proc/<pid>/stat): with pid, the process",
    ),
    sa.Column(
        "boot_id",
        sa.String(64),
        comment="the holder's kernel boot id (/proc/sys/kernel/random/boot_id): with host, the machine and boot",
    ),
)
