"""Training across series: fits of a group.

- ``fits.series_id`` may be NULL: a group's shared fit (one model across the series of one
  frequency) belongs to no single series;
- ``fits.scope``: 'series' (every fit so far) or 'group' (the shared fit, and each member's row);
- ``fits.group_key`` (e.g. 'M/12'), ``fits.group_fit_id`` (a member's row -> the shared fit, whose
  weights and loss history it uses), ``fits.n_series`` (on the shared fit), ``fits.note`` (what the
  service decided and why).

On SQLite the table is copied (SQLite cannot drop a NOT NULL in place): the ``latest_forecasts``
view, which reads it, is dropped and recreated around the copy, foreign keys are off during the
migration (see migrations/env.py) and checked before it commits. The downgrade removes the shared
fits (their weights and loss histories); the members' rows and forecasts stay.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The same texts are the columns' ``comment`` in service/schema.py (the drift test compares them).
COMMENTS = {
    "scope": "series: the series' own model; group: one model across the series of a group (the shared fit has "
    "series_id NULL and the weights; each member's row points to it with group_fit_id)",
    "group_key": "the group (frequency/season length, e.g. M/12) of a fit with scope group, or of a series fit "
    "that model.training = auto chose over the group's model",
    "group_fit_id": "on a member's row: the group's shared fit (weights and loss history) its forecasts came from",
    "n_series": "on a shared fit: how many series it was trained across",
    "note": "what the service decided and why: auto's choice between the group's model and per-series models, a "
    "warm start replaced by a cold fit",
}

# Migration 0001's view, verbatim: recreated after SQLite's copy of fits.
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


def _new_columns() -> list[sa.Column]:
    return [
        sa.Column("scope", sa.String(10), nullable=False, server_default="series", comment=COMMENTS["scope"]),
        sa.Column("group_key", sa.String(50), comment=COMMENTS["group_key"]),
        sa.Column("group_fit_id", sa.Integer, comment=COMMENTS["group_fit_id"]),
        sa.Column("n_series", sa.Integer, comment=COMMENTS["n_series"]),
        sa.Column("note", sa.Text, comment=COMMENTS["note"]),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP VIEW IF EXISTS latest_forecasts")
        with op.batch_alter_table("fits", recreate="always") as batch:
            batch.alter_column("series_id", existing_type=sa.Integer, nullable=True)
            for column in _new_columns():
                batch.add_column(column)
            batch.create_foreign_key("fk_fits_group_fit_id_fits", "fits", ["group_fit_id"], ["id"], ondelete="SET NULL")
            batch.create_index("ix_fits_group_fit_id", ["group_fit_id"])
        op.execute(LATEST_FORECASTS)
        _check_foreign_keys(bind)
        return
    op.alter_column("fits", "series_id", existing_type=sa.Integer, nullable=True)
    for column in _new_columns():
        op.add_column("fits", column)
    op.create_foreign_key("fk_fits_group_fit_id_fits", "fits", "fits", ["group_fit_id"], ["id"], ondelete="SET NULL")
    op.create_index("ix_fits_group_fit_id", "fits", ["group_fit_id"])


def downgrade() -> None:
    bind = op.get_bind()
    shared = "SELECT id FROM fits WHERE series_id IS NULL"
    op.execute(f"DELETE FROM loss_history WHERE fit_id IN ({shared})")
    op.execute(f"UPDATE fits SET warm_started_from = NULL WHERE warm_started_from IN ({shared})")
    op.execute("UPDATE fits SET group_fit_id = NULL")
    op.execute("DELETE FROM fits WHERE series_id IS NULL")
    if bind.dialect.name == "sqlite":
        op.execute("DROP VIEW IF EXISTS latest_forecasts")
        with op.batch_alter_table("fits", recreate="always") as batch:
            batch.drop_index("ix_fits_group_fit_id")
            batch.drop_constraint("fk_fits_group_fit_id_fits", type_="foreignkey")
            for column in reversed(_new_columns()):
                batch.drop_column(column.name)
            batch.alter_column("series_id", existing_type=sa.Integer, nullable=False)
        op.execute(LATEST_FORECASTS)
        _check_foreign_keys(bind)
        return
    op.drop_index("ix_fits_group_fit_id", table_name="fits")
    op.drop_constraint("fk_fits_group_fit_id_fits", "fits", type_="foreignkey")
    for column in reversed(_new_columns()):
        op.drop_column("fits", column.name)
    op.alter_column("fits", "series_id", existing_type=sa.Integer, nullable=False)


def _check_foreign_keys(bind) -> None:
    """After copying a table with foreign keys off: every reference must still resolve."""
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration 0004 would leave {len(broken)} broken foreign key(s), e.g. {tuple(broken[0])}")
