"""A schema someone tampered with: a dropped view, table, column or index, and an ``alembic_version``
that is missing, empty, doubled or names a revision tickcast does not know. What the migrations own
and can be recreated safely is repaired (by `init` and by every write command as it starts); the
rest is one clear line, exit 1, saying exactly what was found. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tickcast.service.cli import main

SERIES = [float(i % 7 + 10) for i in range(30)]


@pytest.fixture
def tampered(tmp_path, db_url, make_series, capsys, monkeypatch):
    """A populated database (one short series, its rows, one run) and a way to run SQL on it as an
    outsider would: without tickcast's engine (on SQLite: no foreign-key enforcement)."""
    for key in ("TICKCAST_CONFIG", "TICKCAST_DB_URL", "TICKCAST_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    make_series("alpha", SERIES)
    config = tmp_path / "tickcast.toml"
    config.write_text('[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"\n[forecast]\nmin_length = 100\n')
    base = ["--db", db_url, "--config", str(config)]
    assert main(base + ["run"]) == 0  # too short to train: ingested and skipped, quickly
    capsys.readouterr()

    def sql(*statements: str) -> None:
        engine = sa.create_engine(db_url)
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        engine.dispose()

    def tickcast(*argv: str) -> tuple[int, str, str]:
        code = main(base + list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return sql, tickcast


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def count(tickcast_sql_url, table: str) -> int:
    engine = sa.create_engine(tickcast_sql_url)
    with engine.connect() as conn:
        n = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return n


# --- repaired ---------------------------------------------------------------------------------------


def test_init_recreates_a_dropped_view(tampered, db_url, ledger):
    sql, tickcast = tampered
    sql("DROP VIEW latest_forecasts")
    code, out, _ = tickcast("forecasts")
    assert code == 1
    code, out, err = tickcast("init")
    assert code == 0, err
    assert "already at revision" in out and "schema drift repaired: recreated the view latest_forecasts" in out
    assert count(db_url, "latest_forecasts") == 0  # there again, and queryable
    assert tickcast("init")[1].count("repaired") == 0  # nothing left to repair
    ledger.record("schema: dropped view, init")


def test_a_read_command_names_the_drift_and_the_fix(tampered, ledger):
    sql, tickcast = tampered
    sql("DROP VIEW latest_forecasts")
    code, _, err = tickcast("forecasts")
    assert code == 1
    assert one_line(err).endswith(
        "has drifted from its migrations (missing or altered views: latest_forecasts): run 'tickcast init' to repair it"
    )
    ledger.record("schema: dropped view, read command")


def test_run_repairs_the_view_before_doing_any_work(tampered, db_url, caplog, ledger):
    sql, tickcast = tampered
    sql("DROP VIEW latest_forecasts")
    code, out, err = tickcast("run")
    assert code == 0, err
    assert "schema drift in " in caplog.text and "recreated the view latest_forecasts" in caplog.text  # logged
    assert count(db_url, "runs") == 2
    ledger.record("schema: dropped view, run")


def test_a_dropped_lease_table_and_index_are_recreated(tampered, db_url, ledger):
    sql, tickcast = tampered
    sql("DROP TABLE run_lease", "DROP INDEX ix_fits_run_id")
    code, out, err = tickcast("init")
    assert code == 0, err
    assert "recreated the empty table run_lease" in out and "recreated the index ix_fits_run_id" in out
    assert tickcast("run")[0] == 0  # the lease works again
    assert count(db_url, "run_lease") == 0
    ledger.record("schema: dropped table and index, init")


# --- not repairable: exactly what is wrong ----------------------------------------------------------


def test_a_dropped_table_that_stored_rows_refer_to_is_named_not_recreated(tampered, db_url, backend, ledger):
    sql, tickcast = tampered
    sql("DROP TABLE series" + (" CASCADE" if backend == "postgresql" else ""))  # the view goes with it on PostgreSQL
    for command in ("init", "run"):
        code, _, err = tickcast(command)
        assert code == 1
        line = one_line(err)
        assert "has drifted from its migrations: table series is missing and stored rows refer to it: " in line
        assert "observations.series_id (30 rows)" in line and "restore them from a backup" in line
    assert count(db_url, "observations") == 30  # untouched
    ledger.record("schema: dropped table with dependent rows")


def test_a_dropped_column_is_named(tampered, db_url, ledger):
    sql, tickcast = tampered
    sql("ALTER TABLE fits DROP COLUMN naive_rmse")
    code, _, err = tickcast("run")
    assert code == 1
    assert "column fits.naive_rmse is missing" in one_line(err)
    assert count(db_url, "runs") == 1  # nothing started
    ledger.record("schema: dropped column")


@pytest.mark.parametrize(
    "tamper,found",
    [
        (
            ["UPDATE alembic_version SET version_num = 'f00dcafe'"],
            "is at schema revision 'f00dcafe', which this tickcast does not know (it knows 0001, ",
        ),
        (["INSERT INTO alembic_version VALUES ('0001')"], "alembic_version in {url} has 2 rows ("),
        (["DELETE FROM alembic_version"], "alembic_version in {url} is empty but the database has tickcast tables ("),
        (["DROP TABLE alembic_version"], "alembic_version in {url} is missing but the database has tickcast tables ("),
    ],
    ids=["unknown", "two rows", "empty", "missing"],
)
def test_an_untrustworthy_alembic_version_is_one_line_exit_1(tamper, found, tampered, db_url, ledger):
    sql, tickcast = tampered
    sql(*tamper)
    url = sa.make_url(db_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    expected = found.format(url=url.render_as_string(hide_password=True))
    for command in ("init", "run", "health", "forecasts"):
        code, _, err = tickcast(command)
        assert code == 1, (command, err)
        assert expected in one_line(err), (command, err)
    assert count(db_url, "observations") == 30
    ledger.record("schema: tampered alembic_version", injected=4, survived=4)


@pytest.mark.parametrize("view", ["forecast_errors", "forecast_accuracy", "forecast_accuracy_monthly"])
def test_init_recreates_a_dropped_ledger_view(tampered, db_url, backend, ledger, view):
    """The accuracy ledger's views too, on either backend from the migrations' one SQL; dropping the
    base view takes its dependants with it on PostgreSQL (CASCADE), and all come back."""
    sql, tickcast = tampered
    sql(f"DROP VIEW {view}" + (" CASCADE" if backend == "postgresql" else ""))
    code, out, err = tickcast("init")
    assert code == 0, err
    assert f"recreated the view {view}" in out
    for name in ("forecast_errors", "forecast_accuracy", "forecast_accuracy_monthly"):
        assert count(db_url, name) == 0  # there again, and queryable
    assert tickcast("init")[1].count("repaired") == 0
    ledger.record("schema: dropped view, init")
