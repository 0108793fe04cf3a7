"""Initial schema: series, observations, runs, fits, loss_history, forecasts and latest_forecasts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen: later changes go in new revisions, never here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)

LATEST_FORECASTS = """
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
WHERE ft.id = (SELECT MAX(f2.id) FROM fits f2
               WHERE f2.series_id = f.series_id AND f2.status = 'ok')
"""


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("symbol", sa.String(200), nullable=False),
        sa.Column("field", sa.String(100)),
        sa.Column("frequency", sa.String(4)),
        sa.Column("name", sa.String(200)),
        sa.Column("is_price", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_fetch_at", UTC),
        sa.Column("last_success_at", UTC),
        sa.Column("last_error", sa.Text),
        sa.Column("last_note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_series"),
        sa.UniqueConstraint("key", name="uq_series_key"),
    )
    op.create_table(
        "observations",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("ts", sa.Date, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "ts", name="pk_observations"),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], ondelete="CASCADE", name="fk_observations_series_id_series"
        ),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC),
        sa.Column("series_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("series_ok", sa.Integer, nullable=False, server_default="0"),
        sa.Column("series_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("series_skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("new_observations", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("host", sa.String(200)),
        sa.Column("pid", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "fits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer),
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("mode", sa.String(10)),
        sa.Column("warm_started_from", sa.Integer),
        sa.Column("cell", sa.String(10)),
        sa.Column("hyperparams", sa.JSON),
        sa.Column("settings_hash", sa.String(64)),
        sa.Column("transform", sa.String(20)),
        sa.Column("train_start", sa.Date),
        sa.Column("train_end", sa.Date),
        sa.Column("n_obs", sa.Integer),
        sa.Column("epochs", sa.Integer),
        sa.Column("best_epoch", sa.Integer),
        *(
            sa.Column(name, sa.Double)
            for name in (
                "train_loss",
                "val_loss",
                "mae",
                "rmse",
                "smape",
                "mase",
                "naive_mae",
                "naive_rmse",
                "naive_smape",
                "naive_mase",
                "skill",
            )
        ),
        sa.Column("backtest_n", sa.Integer),
        sa.Column("seconds", sa.Double),
        sa.Column("weights", sa.LargeBinary),
        sa.PrimaryKeyConstraint("id", name="pk_fits"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="SET NULL", name="fk_fits_run_id_runs"),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"], ondelete="CASCADE", name="fk_fits_series_id_series"),
        sa.ForeignKeyConstraint(
            ["warm_started_from"], ["fits.id"], ondelete="SET NULL", name="fk_fits_warm_started_from_fits"
        ),
    )
    op.create_index("ix_fits_series_id_status", "fits", ["series_id", "status"])
    op.create_index("ix_fits_run_id", "fits", ["run_id"])
    op.create_table(
        "loss_history",
        sa.Column("fit_id", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("train_loss", sa.Double, nullable=False),
        sa.Column("val_loss", sa.Double),
        sa.Column("grad_norm", sa.Double),
        sa.Column("clip_fraction", sa.Double),
        sa.PrimaryKeyConstraint("fit_id", "epoch", name="pk_loss_history"),
        sa.ForeignKeyConstraint(["fit_id"], ["fits.id"], ondelete="CASCADE", name="fk_loss_history_fit_id_fits"),
    )
    op.create_table(
        "forecasts",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("origin_ts", sa.Date, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("fit_id", sa.Integer, nullable=False),
        sa.Column("target_ts", sa.Date, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("lower", sa.Double, nullable=False),
        sa.Column("upper", sa.Double, nullable=False),
        sa.Column("level", sa.Double, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "origin_ts", "step", name="pk_forecasts"),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"], ondelete="CASCADE", name="fk_forecasts_series_id_series"),
        sa.ForeignKeyConstraint(["fit_id"], ["fits.id"], ondelete="CASCADE", name="fk_forecasts_fit_id_fits"),
    )
    op.create_index("ix_forecasts_fit_id", "forecasts", ["fit_id"])
    op.execute(LATEST_FORECASTS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS latest_forecasts")
    op.drop_table("forecasts")
    op.drop_table("loss_history")
    op.drop_table("fits")
    op.drop_table("runs")
    op.drop_table("observations")
    op.drop_table("series")
