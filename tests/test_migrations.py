"""Alembic is the only source of the schema: upgrade from empty, downgrade to base, no drift."""

from datetime import UTC

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tickcast.service import db, schema

TABLES = {"series", "observations", "runs", "fits", "loss_history", "forecasts", "run_lease"}
VIEWS = {"latest_forecasts", "forecast_errors", "forecast_accuracy", "forecast_accuracy_monthly"}


def _tables_and_views(engine):
    inspector = sa.inspect(engine)
    return set(inspector.get_table_names()), set(inspector.get_view_names())


def test_upgrade_from_empty_creates_every_table_and_view(fresh_db):
    engine = fresh_db(upgraded=False)
    assert db.current_revision(engine) is None
    before, after = db.upgrade(engine)
    assert (before, after) == (None, db.head_revision())
    tables, views = _tables_and_views(engine)
    assert TABLES <= tables
    assert views == VIEWS
    with engine.connect() as conn:  # the views are queryable (and empty)
        for view in (
            schema.latest_forecasts,
            schema.forecast_errors,
            schema.forecast_accuracy,
            schema.forecast_accuracy_monthly,
        ):
            assert conn.execute(sa.select(view)).all() == []


def test_upgrade_twice_is_a_no_op(fresh_db):
    engine = fresh_db()
    assert db.upgrade(engine) == (db.head_revision(), db.head_revision())


def test_opening_a_database_at_head_does_not_import_alembic(tmp_path):
    """What every command does first: a database already at head is opened without Alembic (a
    tenth of a second of each command's start-up); one that is not is upgraded with it."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'tickcast.db'}"
    script = (
        "import sys; from tickcast.service.db import open_database; "
        f"open_database({url!r}).dispose(); print('alembic' in sys.modules)"
    )
    opened = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True) for _ in range(2)]
    assert [done.stdout.strip() for done in opened] == ["True", "False"], [done.stderr for done in opened]


def test_downgrade_to_base_removes_everything(fresh_db):
    engine = fresh_db()
    db.downgrade(engine, "base")
    tables, views = _tables_and_views(engine)
    assert tables & TABLES == set() and views == set()
    assert db.current_revision(engine) is None
    db.upgrade(engine)  # and back up again
    assert TABLES <= _tables_and_views(engine)[0]


def test_models_and_migrations_do_not_drift(fresh_db):
    engine = fresh_db()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata)
    assert diff == []


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(sqlite_url):
    from tickcast.service.settings import DEFAULT_BUSY_TIMEOUT_MINUTES

    engine = db.open_database(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == DEFAULT_BUSY_TIMEOUT_MINUTES * 60_000
    engine.dispose()
    engine = db.open_database(sqlite_url, busy_timeout=90)
    with db.write_transaction(engine) as conn:  # a write leaves the connection's own timeout as it was
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 90_000
    engine.dispose()


def test_foreign_keys_cascade(fresh_db):
    engine = fresh_db()
    from datetime import date, datetime

    with db.write_transaction(engine) as conn:
        sid = conn.execute(
            sa.insert(schema.series)
            .values(key="csv:x", source="csv", symbol="x", created_at=datetime.now(UTC))
            .returning(schema.series.c.id)
        ).scalar_one()
        conn.execute(sa.insert(schema.observations).values(series_id=sid, ts=date(2020, 1, 1), value=1.0))
    with db.write_transaction(engine) as conn:
        conn.execute(sa.delete(schema.series).where(schema.series.c.id == sid))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.observations)).scalar() == 0


def test_malformed_database_url_is_one_clear_error():
    import pytest

    from tickcast.service.errors import DatabaseError

    with pytest.raises(DatabaseError, match="malformed database URL"):
        db.make_engine("not a url")
    with pytest.raises(DatabaseError, match="unsupported database 'mysql'"):
        db.make_engine("mysql://localhost/x")


def test_the_head_revision_read_from_the_files_is_alembics():
    """db.head_revision reads the migration files without importing Alembic (read commands start
    faster); it must name the head Alembic itself finds."""
    from alembic.script import ScriptDirectory

    assert db.head_revision() == ScriptDirectory.from_config(db.alembic_config()).get_current_head()


def test_upgrading_a_0002_database_keeps_its_forecasts_and_scores_them(fresh_db, backend):
    """0003 adds columns with defaults and the ledger views over data that is already there; its
    downgrade drops them and keeps the data."""
    from datetime import date, datetime

    engine = fresh_db(upgraded=False)
    db.upgrade(engine, "0002")
    now = datetime(2024, 1, 3, tzinfo=UTC)
    with db.write_transaction(engine) as conn:
        sid = conn.execute(
            sa.text(
                "INSERT INTO series (key, source, symbol, created_at, is_price, active) "
                "VALUES ('csv:x', 'csv', 'x', :now, :f, :t) RETURNING id"
            ),
            dict(now=now, f=False, t=True),
        ).scalar_one()
        fit = conn.execute(
            sa.text("INSERT INTO fits (series_id, created_at, status) VALUES (:sid, :now, 'ok') RETURNING id"),
            dict(sid=sid, now=now),
        ).scalar_one()
        conn.execute(
            sa.text("INSERT INTO observations (series_id, ts, value) VALUES (:sid, :ts, :v)"),
            [dict(sid=sid, ts=date(2024, 1, 1), v=10.0), dict(sid=sid, ts=date(2024, 1, 2), v=12.0)],
        )
        conn.execute(
            sa.text(
                "INSERT INTO forecasts (series_id, origin_ts, step, fit_id, target_ts, value, lower, "
                "upper, level, created_at) VALUES (:sid, :o, 1, :fit, :t, 11.0, 10.5, 11.5, 0.8, :now)"
            ),
            dict(sid=sid, o=date(2024, 1, 1), t=date(2024, 1, 2), fit=fit, now=now),
        )
    db.upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.forecasts)).one()
        assert (row.interval_factor, row.rescaled_by) == (1.0, None)
        assert conn.execute(sa.select(schema.series.c.calendar)).scalar_one() is None
        (ledger,) = conn.execute(sa.select(schema.forecast_accuracy)).all()
        assert (ledger.n, ledger.mae, ledger.naive_mae, ledger.coverage, ledger.winkler) == (
            1,
            1.0,
            2.0,
            0.0,
            pytest.approx(6.0),
        )
    db.downgrade(engine, "0002")
    assert _tables_and_views(engine)[1] == {"latest_forecasts"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM forecasts")).scalar_one() == 11.0
        assert "interval_factor" not in {c["name"] for c in sa.inspect(conn).get_columns("forecasts")}


def test_postgresql_columns_state_their_units(pg_server):
    """(SQLite has no column comments: the README and service/schema.py state the units there.)"""
    with pg_server.database() as url:
        engine = db.open_database(url)
        try:
            _assert_unit_comments(engine)
        finally:
            engine.dispose()


def _assert_unit_comments(engine):
    query = sa.text(
        "SELECT col_description(CAST(:rel AS regclass), a.attnum) FROM pg_attribute a "
        "WHERE a.attrelid = CAST(:rel AS regclass) AND a.attname = :col"
    )
    with engine.connect() as conn:

        def comment(rel, col):
            return conn.execute(query, dict(rel=rel, col=col)).scalar_one()

        assert "in percent" in comment("latest_forecasts", "change_pct")
        assert "a fraction" in comment("latest_forecasts", "skill") and "a fraction" in comment("fits", "skill")
        assert "in percent" in comment("forecast_accuracy", "mape_pct")
        assert "fraction" in comment("forecast_accuracy_monthly", "coverage")


def test_upgrading_a_0003_database_keeps_its_fits_and_lets_a_group_share_one(fresh_db, backend):
    """0004 lets fits.series_id be NULL (on SQLite by copying the table: the fits, their loss histories and
    forecasts must survive the copy, and the foreign keys must still hold and cascade); its downgrade
    removes the shared fits and keeps the rest."""
    from datetime import date, datetime

    engine = fresh_db(upgraded=False)
    db.upgrade(engine, "0003")
    now = datetime(2024, 1, 3, tzinfo=UTC)
    with db.write_transaction(engine) as conn:
        sid = conn.execute(
            sa.text(
                "INSERT INTO series (key, source, symbol, created_at, is_price, active) "
                "VALUES ('csv:x', 'csv', 'x', :now, :f, :t) RETURNING id"
            ),
            dict(now=now, f=False, t=True),
        ).scalar_one()
        first = conn.execute(
            sa.text(
                "INSERT INTO fits (series_id, created_at, status, mode, weights) "
                "VALUES (:sid, :now, 'ok', 'cold', :w) RETURNING id"
            ),
            dict(sid=sid, now=now, w=b"\x00blob"),
        ).scalar_one()
        second = conn.execute(
            sa.text(
                "INSERT INTO fits (series_id, created_at, status, mode, warm_started_from) "
                "VALUES (:sid, :now, 'ok', 'warm', :first) RETURNING id"
            ),
            dict(sid=sid, now=now, first=first),
        ).scalar_one()
        conn.execute(
            sa.text("INSERT INTO loss_history (fit_id, epoch, train_loss) VALUES (:fit, 0, 1.5)"), dict(fit=second)
        )
        conn.execute(
            sa.text("INSERT INTO observations (series_id, ts, value) VALUES (:sid, :ts, 10.0)"),
            dict(sid=sid, ts=date(2024, 1, 1)),
        )
        conn.execute(
            sa.text(
                "INSERT INTO forecasts (series_id, origin_ts, step, fit_id, target_ts, value, lower, "
                "upper, level, created_at) VALUES (:sid, :o, 1, :fit, :t, 11.0, 10.5, 11.5, 0.8, :now)"
            ),
            dict(sid=sid, o=date(2024, 1, 1), t=date(2024, 1, 2), fit=second, now=now),
        )
    db.upgrade(engine)
    with engine.connect() as conn:
        fits = conn.execute(sa.select(schema.fits).order_by(schema.fits.c.id)).all()
        assert [(f.id, f.series_id, f.scope, f.warm_started_from, f.weights) for f in fits] == [
            (first, sid, "series", None, b"\x00blob"),
            (second, sid, "series", first, None),
        ]
        assert conn.execute(sa.select(schema.loss_history.c.fit_id)).scalars().all() == [second]
        assert conn.execute(sa.select(schema.latest_forecasts.c.fit_id)).scalars().all() == [second]
        if backend == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with db.write_transaction(engine) as conn:  # a group's shared fit and a member's row pointing to it
        shared = conn.execute(
            sa.insert(schema.fits)
            .values(created_at=now, status="ok", scope="group", n_series=1)
            .returning(schema.fits.c.id)
        ).scalar_one()
        conn.execute(sa.insert(schema.loss_history).values(fit_id=shared, epoch=0, train_loss=2.0))
        conn.execute(
            sa.insert(schema.fits).values(
                series_id=sid, created_at=now, status="ok", scope="group", group_fit_id=shared
            )
        )
    with pytest.raises(sa.exc.IntegrityError):  # the foreign keys hold after the copy
        with db.write_transaction(engine) as conn:
            conn.execute(sa.insert(schema.loss_history).values(fit_id=10_000, epoch=0, train_loss=1.0))
    db.downgrade(engine, "0003")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM fits ORDER BY id")).scalars().all() == [first, second, shared + 1]
        assert conn.execute(sa.text("SELECT fit_id FROM loss_history")).scalars().all() == [second]
        assert "scope" not in {c["name"] for c in sa.inspect(conn).get_columns("fits")}
    with db.write_transaction(engine) as conn:  # and deleting the series still cascades to its fits
        conn.execute(sa.text("DELETE FROM series"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM fits")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM forecasts")).scalar() == 0


def test_the_views_schema_py_names_are_the_ones_the_migrations_create():
    """service/drift.py recreates a dropped view from the migrations' own definition and looks for
    the views schema.VIEWS names: the two lists must agree."""
    from tickcast.service.db import migration_view_definitions

    definitions = migration_view_definitions()
    assert set(definitions) == {view.name for view in schema.VIEWS}
    assert all(sql.lstrip().upper().startswith("CREATE VIEW") for sql in definitions.values())


def test_upgrading_a_0005_database_keeps_its_forecasts_as_the_published_ones_and_downgrades(fresh_db, backend):
    """0006 adds forecasts.model (and level to the key), forecasts.backfilled, fits.backfill and
    fits.combination (on SQLite by copying the forecasts table): every stored forecast survives as
    the published one, the views score it per model; the downgrade keeps the published forecasts at
    their first level and drops the members', the other levels and whatever a backfill made."""
    from datetime import date, datetime

    engine = fresh_db(upgraded=False)
    db.upgrade(engine, "0005")
    now = datetime(2024, 1, 5, tzinfo=UTC)
    d = [date(2024, 1, day) for day in (1, 2, 3, 4)]
    with db.write_transaction(engine) as conn:
        sid = conn.execute(
            sa.text(
                "INSERT INTO series (key, source, symbol, created_at, is_price, active) "
                "VALUES ('csv:x', 'csv', 'x', :now, :f, :t) RETURNING id"
            ),
            dict(now=now, f=False, t=True),
        ).scalar_one()
        fit_ids = [
            conn.execute(
                sa.text(
                    "INSERT INTO fits (series_id, created_at, status, mode, weights) "
                    "VALUES (:sid, :now, 'ok', 'cold', :w) RETURNING id"
                ),
                dict(sid=sid, now=now, w=blob),
            ).scalar_one()
            for blob in (b"\x00first", b"\x00second")
        ]
        conn.execute(
            sa.text("INSERT INTO loss_history (fit_id, epoch, train_loss) VALUES (:fit, 0, 1.5)"), dict(fit=fit_ids[1])
        )
        for ts, value in zip(d, (10.0, 11.0, 12.0, 13.0)):
            conn.execute(
                sa.text("INSERT INTO observations (series_id, ts, value) VALUES (:sid, :ts, :v)"),
                dict(sid=sid, ts=ts, v=value),
            )
        old = [  # (origin, step, fit, target, value, lower, upper, factor)
            (d[0], 1, fit_ids[0], d[1], 10.5, 10.0, 11.5, 1.0),
            (d[0], 2, fit_ids[0], d[2], 11.0, 10.0, 11.5, 1.0),
            (d[1], 1, fit_ids[1], d[2], 12.5, 12.0, 13.0, 1.25),
            (d[1], 2, fit_ids[1], d[3], 14.0, 13.0, 15.0, 1.25),
        ]
        for o, step, fit, t, v, lo, hi, factor in old:
            conn.execute(
                sa.text(
                    "INSERT INTO forecasts (series_id, origin_ts, step, fit_id, target_ts, value, lower, upper, "
                    "level, created_at, interval_factor) VALUES (:sid, :o, :s, :fit, :t, :v, :lo, :hi, 0.8, :now, :f)"
                ),
                dict(sid=sid, o=o, s=step, fit=fit, t=t, v=v, lo=lo, hi=hi, now=now, f=factor),
            )
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    f = schema.forecasts.c

    def stored(conn):
        return conn.execute(
            sa.select(f.origin_ts, f.step, f.fit_id, f.target_ts, f.value, f.lower, f.upper, f.interval_factor)
            .order_by(f.origin_ts, f.step)
            .where(f.model == "published")
        ).all()

    with engine.connect() as conn:
        assert [tuple(r) for r in stored(conn)] == old
        assert set(conn.execute(sa.select(f.model, f.level, f.backfilled)).all()) == {("published", 0.8, 0)}
        fits = conn.execute(sa.select(schema.fits).order_by(schema.fits.c.id)).all()
        assert [(x.id, x.weights, x.backfill, x.combination) for x in fits] == [
            (fit_ids[0], b"\x00first", 0, None),
            (fit_ids[1], b"\x00second", 0, None),
        ]
        assert conn.execute(sa.select(schema.loss_history.c.fit_id)).scalars().all() == [fit_ids[1]]
        latest = conn.execute(sa.select(schema.latest_forecasts).order_by(schema.latest_forecasts.c.step)).all()
        assert [(r.fit_id, r.step, r.forecast, r.level) for r in latest] == [
            (fit_ids[1], 1, 12.5, 0.8),
            (fit_ids[1], 2, 14.0, 0.8),
        ]
        errors = conn.execute(
            sa.select(schema.forecast_errors).order_by(
                schema.forecast_errors.c.origin_ts, schema.forecast_errors.c.step
            )
        ).all()
        assert [(e.model, e.origin_ts, e.step, e.error, e.backfilled) for e in errors] == [
            ("published", d[0], 1, 0.5, 0),
            ("published", d[0], 2, 1.0, 0),
            ("published", d[1], 1, -0.5, 0),
            ("published", d[1], 2, -1.0, 0),
        ]
        by_step = conn.execute(sa.select(schema.forecast_accuracy).order_by(schema.forecast_accuracy.c.step)).all()
        assert [(r.model, r.step, r.level, r.n) for r in by_step] == [
            ("published", 1, 0.8, 2),
            ("published", 2, 0.8, 2),
        ]
        if backend == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # What 0006 stores: a member's forecast and another level beside the published one, a backfill.
    with db.write_transaction(engine) as conn:
        row = dict(series_id=sid, origin_ts=d[1], step=1, fit_id=fit_ids[1], target_ts=d[2], created_at=now)
        conn.execute(
            sa.insert(schema.forecasts).values(**row, model="rnn", level=0.8, value=12.0, lower=11.0, upper=13.0)
        )
        conn.execute(
            sa.insert(schema.forecasts).values(**row, model="published", level=0.95, value=12.5, lower=11.5, upper=13.5)
        )
        backfill = conn.execute(
            sa.insert(schema.fits)
            .values(series_id=sid, created_at=now, status="ok", mode="cold", backfill=1, combination={"weights": {}})
            .returning(schema.fits.c.id)
        ).scalar_one()
        conn.execute(sa.insert(schema.loss_history).values(fit_id=backfill, epoch=0, train_loss=1.0))
        conn.execute(
            sa.insert(schema.forecasts).values(
                series_id=sid, origin_ts=d[2], step=1, fit_id=backfill, target_ts=d[3], created_at=now,
                model="published", level=0.8, value=12.9, lower=12.0, upper=14.0, backfilled=1,
            )
        )  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError):  # the key is (series, origin, model, step, level)
        with db.write_transaction(engine) as conn:
            conn.execute(
                sa.insert(schema.forecasts).values(**row, model="rnn", level=0.8, value=1.0, lower=0.0, upper=2.0)
            )
    with pytest.raises(sa.exc.IntegrityError):  # the foreign keys hold after the copy
        with db.write_transaction(engine) as conn:
            conn.execute(
                sa.insert(schema.forecasts).values(
                    series_id=sid, origin_ts=d[3], step=1, fit_id=10_000, target_ts=d[3], created_at=now,
                    value=1.0, lower=0.0, upper=2.0, level=0.8,
                )
            )  # fmt: skip
    with engine.connect() as conn:  # the newest fit is a backfill: the view still shows fit 2's forecast
        latest = conn.execute(sa.select(schema.latest_forecasts)).all()
        assert {(r.fit_id, r.level) for r in latest} == {(fit_ids[1], 0.8), (fit_ids[1], 0.95)}
        models = conn.execute(sa.select(schema.forecast_accuracy.c.model).distinct()).scalars().all()
        assert sorted(models) == ["published", "rnn"]
    db.downgrade(engine, "0005")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT origin_ts, step, fit_id, target_ts, value, lower, upper, interval_factor FROM forecasts "
                "ORDER BY origin_ts, step"
            )
        ).all()
        assert [(_day(r[0]), r[1], r[2], _day(r[3]), *r[4:]) for r in rows] == old
        assert conn.execute(sa.text("SELECT id FROM fits ORDER BY id")).scalars().all() == fit_ids
        assert conn.execute(sa.text("SELECT fit_id FROM loss_history")).scalars().all() == [fit_ids[1]]
        inspector = sa.inspect(conn)
        assert {"model", "backfilled"}.isdisjoint(c["name"] for c in inspector.get_columns("forecasts"))
        assert {"backfill", "combination"}.isdisjoint(c["name"] for c in inspector.get_columns("fits"))
        assert conn.execute(sa.text("SELECT count(*) FROM latest_forecasts")).scalar() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM forecast_accuracy")).scalar() == 2
    with db.write_transaction(engine) as conn:  # and deleting the series still cascades
        conn.execute(sa.text("DELETE FROM series"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM forecasts")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM fits")).scalar() == 0
    db.upgrade(engine)  # and up again
    assert db.current_revision(engine) == db.head_revision()


def _day(value):
    from datetime import date

    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def test_0007_lets_stamps_hold_hours_keeps_every_date_and_downgrades_only_without_hours(fresh_db, backend):
    """0007: the stamp columns hold a time within a day (PostgreSQL: timestamp instead of date; SQLite:
    unchanged ISO text). Every date stored before reads back as the same date, the views still join
    on them; the downgrade refuses while an hourly stamp is stored (saying where), and restores the
    date columns once none is."""
    from datetime import date, datetime

    engine = fresh_db(upgraded=False)
    db.upgrade(engine, "0006")
    now = datetime(2024, 1, 5, tzinfo=UTC)
    d = [date(2024, 1, day) for day in (1, 2, 3)]
    with db.write_transaction(engine) as conn:
        conn.execute(
            sa.text("INSERT INTO series (id, key, source, symbol, created_at, is_price, active) VALUES "
                    "(1, 'csv:x', 'csv', 'x', :now, :f, :t), (2, 'csv:h', 'csv', 'h', :now, :f, :t)"),
            dict(now=now, f=False, t=True),
        )  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO fits (id, series_id, created_at, status, train_start, train_end, backfill) "
                    "VALUES (1, 1, :now, 'ok', :a, :b, 0)"),
            dict(now=now, a=d[0], b=d[1]),
        )  # fmt: skip
        for ts, value in zip(d, (10.0, 11.0, 12.0)):
            conn.execute(sa.text("INSERT INTO observations VALUES (1, :ts, :v)"), dict(ts=ts, v=value))
        conn.execute(
            sa.text("INSERT INTO forecasts (series_id, origin_ts, model, step, fit_id, target_ts, value, lower, upper, "
                    "level, created_at) VALUES (1, :o, 'published', 1, 1, :t, 11.5, 11.0, 12.0, 0.8, :now)"),
            dict(o=d[1], t=d[2], now=now),
        )  # fmt: skip
    db.upgrade(engine)
    kinds = {
        (c["name"]): type(c["type"]).__name__.upper()
        for table in ("observations", "forecasts", "fits")
        for c in sa.inspect(engine).get_columns(table)
        if c["name"] in ("ts", "origin_ts", "target_ts", "train_start", "train_end")
    }
    assert set(kinds.values()) == ({"DATE"} if backend == "sqlite" else {"TIMESTAMP"}), kinds
    obs, f, fits = schema.observations.c, schema.forecasts.c, schema.fits.c
    with engine.connect() as conn:
        assert conn.execute(sa.select(obs.ts, obs.value).order_by(obs.ts)).all() == list(zip(d, (10.0, 11.0, 12.0)))
        assert conn.execute(sa.select(fits.train_start, fits.train_end)).all() == [(d[0], d[1])]
        assert conn.execute(sa.select(f.origin_ts, f.target_ts)).all() == [(d[1], d[2])]
        errors = conn.execute(sa.select(schema.forecast_errors.c.target_ts, schema.forecast_errors.c.error)).all()
        assert errors == [(d[2], 0.5)]
        monthly = conn.execute(sa.select(schema.forecast_accuracy_monthly.c.month)).scalars().all()
        assert monthly == ["2024-01"]
    hours = [datetime(2024, 1, 1, 23), datetime(2024, 1, 2), datetime(2024, 1, 2, 1)]
    with db.write_transaction(engine) as conn:
        conn.execute(sa.insert(schema.observations), [dict(series_id=2, ts=t, value=1.0) for t in hours])
    with pytest.raises(RuntimeError) as refused:
        db.downgrade(engine, "0006")
    assert str(refused.value) == (
        "cannot downgrade below 0007: stamps within a day (hourly series) are stored (2 in observations.ts): a "
        "date column cannot hold them; remove those series first"
    )
    assert db.current_revision(engine) == "0007"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.observations)).scalar() == 6
    with db.write_transaction(engine) as conn:
        conn.execute(sa.delete(schema.observations).where(obs.series_id == 2))
    db.downgrade(engine, "0006")
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT ts FROM observations ORDER BY ts")).scalars().all()
        assert [_day(v) for v in raw] == d and all(type(v) in (date, str) for v in raw)
        assert [_day(v) for v in conn.execute(sa.text("SELECT target_ts FROM forecast_errors")).scalars()] == [d[2]]
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
