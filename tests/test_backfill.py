"""`tickcast backfill`: the forecasts the service would have published at past origins, each from the
data up to its origin only (no look-ahead), stored marked as backfilled, scored by the ledger at once,
and never a series' newest fit (nor the fit the next run continues). Both backends."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.db import write_transaction
from tickcast.service.run.cycle import run_cycle

from .support.small_model import FAST_MODEL
from .support.tables import LEVELS, ROWS_PER_STEP, fits_by_key, published, table

N = 260  # business days
H = 5  # the horizon of trading-day series


@pytest.fixture
def world(make_series, make_settings, db_url, tmp_path):
    """csv:walk, run once (its newest fit), and the arguments of the command line on it."""
    rng = np.random.default_rng(11)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N + 1)))
    dates = pd.bdate_range("2022-01-03", periods=N + 1)
    make_series("walk", values[:N], dates=dates[:N])
    toml = '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\nprice = true\n' + FAST_MODEL
    (tmp_path / "t.toml").write_text(toml)
    settings = make_settings(toml, db_url=db_url)
    base = ["--db", db_url, "--config", str(tmp_path / "t.toml")]

    def grow(n: int) -> None:
        make_series("walk", values[:n], dates=dates[:n])

    return settings, base, [d.date() for d in dates], grow


def backfilled(engine) -> dict:
    """origin -> the backfilled forecasts from it, (model, level, step, value, lower, upper) sorted."""
    out: dict = {}
    for f in table(engine, "forecasts"):
        if f["backfilled"]:
            out.setdefault(f["origin_ts"], []).append(
                (f["model"], f["level"], f["step"], f["value"], f["lower"], f["upper"])
            )
    return {origin: sorted(rows) for origin, rows in out.items()}


def test_backfill_stores_past_origins_marked_and_the_newest_fit_stays_the_newest(world, fresh_db, capsys):
    settings, base, dates, grow = world
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "ok"
    (newest,) = fits_by_key(engine)["csv:walk"]
    assert main([*base, "backfill", "--origins", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("backfill run 2: ok (1 series backfilled") and "0 failed" in out, out
    (run,) = [r for r in table(engine, "runs") if r["id"] == 2]
    assert (run["trigger"], run["status"]) == ("backfill", "ok")
    fits = fits_by_key(engine)["csv:walk"]
    filled = [f for f in fits if f.backfill]
    # one horizon apart, back from the newest origin whose every target is observed
    origins = [dates[N - 1 - H * k] for k in (3, 2, 1)]
    assert [f.train_end for f in filled] == origins
    for fit in filled:
        assert (fit.status, fit.mode, fit.run_id, fit.warm_started_from) == ("ok", "cold", 2, None)
        assert fit.weights and fit.combination["weights"] and fit.id > newest.id
        assert fit.n_obs == dates.index(fit.train_end) + 1  # the data up to its origin, and no more
    by_origin = backfilled(engine)
    assert sorted(by_origin) == origins
    assert all(len(rows) == H * ROWS_PER_STEP for rows in by_origin.values())
    rows = table(engine, "forecasts")
    assert {f["backfilled"] for f in rows if f["origin_ts"] == newest.train_end} == {0}
    # their targets are observed: the ledger scores them at once
    printed = json.loads(_run(capsys, base, "accuracy", "--format", "json"))
    assert [(r["model"], r["step"], r["level"], r["n"]) for r in printed] == [
        ("published", step, level, 3) for step in range(1, H + 1) for level in LEVELS
    ]
    # the newest fit stays the newest: the view, `tickcast forecasts`, `tickcast history`
    with engine.connect() as conn:
        latest = conn.execute(sa.select(schema.latest_forecasts)).all()
    assert {(r.fit_id, r.last_ts) for r in latest} == {(newest.id, newest.train_end)}
    shown = json.loads(_run(capsys, base, "forecasts", "--format", "json"))
    assert {(r["fit_id"], r["last_ts"]) for r in shown} == {(newest.id, str(newest.train_end))}
    assert _run(capsys, base, "history", "csv:walk").startswith(f"fit {newest.id} ")
    # a backfill repeated has nothing left to fill at those origins
    repeated = _run(capsys, base, "backfill", "--origins", "3")
    assert repeated.startswith("backfill run 3: ok (0 series backfilled, 1 had nothing left to fill"), repeated
    assert backfilled(engine) == by_origin
    # and the next run (one more day) continues the newest fit, not a backfilled one
    grow(N + 1)
    again = run_cycle(engine, settings)
    assert [(o.fit, o.mode) for o in again.outcomes] == [("trained", "warm")]
    assert fits_by_key(engine)["csv:walk"][-1].warm_started_from == newest.id


def _run(capsys, base, *args) -> str:
    assert main([*base, *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_backfill_uses_no_data_after_its_origins(world, fresh_db, capsys):
    """Change every observation after the backfilled origins (their targets included) and backfill
    them again: each origin's forecasts, at every model and level, come out the same."""
    settings, base, dates, _ = world
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "ok"
    _run(capsys, base, "backfill", "--origins", "2")
    first = backfilled(engine)
    assert len(first) == 2 and all(len(rows) == H * ROWS_PER_STEP for rows in first.values())
    newest_origin = max(first)
    with write_transaction(engine) as conn:  # the backfill undone, and a different future
        conn.execute(sa.delete(schema.fits).where(schema.fits.c.backfill == 1))
        conn.execute(
            sa.update(schema.observations)
            .where(schema.observations.c.ts > newest_origin)
            .values(value=schema.observations.c.value * 3 + 7)
        )
    assert backfilled(engine) == {}
    _run(capsys, base, "backfill", "--origins", "2")
    assert backfilled(engine) == first
    # the check can fail: data changed up to an origin changes that origin's forecasts
    with write_transaction(engine) as conn:
        conn.execute(sa.delete(schema.fits).where(schema.fits.c.backfill == 1))
        conn.execute(
            sa.update(schema.observations)
            .where(schema.observations.c.ts == newest_origin)
            .values(value=schema.observations.c.value * 1.1)
        )
    _run(capsys, base, "backfill", "--origins", "2")
    again = backfilled(engine)
    assert again[min(first)] == first[min(first)] and again[newest_origin] != first[newest_origin]


def test_backfill_since_a_date_and_its_mistakes(world, fresh_db, capsys):
    settings, base, dates, _ = world
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "ok"
    since = dates[N - 1 - 4 * H]
    _run(capsys, base, "backfill", "csv:walk", "--since", since.isoformat())
    assert sorted(backfilled(engine)) == [dates[N - 1 - H * k] for k in (4, 3, 2, 1)]
    assert all(f["backfilled"] == 1 for f in published(table(engine, "forecasts")) if f["origin_ts"] < dates[N - 1])
    assert main([*base, "backfill", "--since", "2024-13-01"]) == 2  # a usage error
    assert "--since must be a date YYYY-MM-DD" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one of --origins and --since, not both
        main([*base, "backfill", "--origins", "1", "--since", "2022-06-01"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_backfill_run_is_not_the_scheduled_run(world, fresh_db, capsys):
    """A backfill neither ingests nor forecasts from today: `tickcast health` and the scheduler's
    catch-up look past it, to the newest run that did."""
    from tickcast.service.clock import utcnow
    from tickcast.service.queries import completed_run_since, health

    settings, base, _, _ = world
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "ok"
    between = utcnow()
    _run(capsys, base, "backfill", "--origins", "1")
    assert [(r["id"], r["trigger"], r["status"]) for r in table(engine, "runs")] == [
        (1, "manual", "ok"),
        (2, "backfill", "ok"),
    ]
    assert not completed_run_since(engine, between)  # a missed scheduled run is still caught up
    ok, message = health(engine, settings)
    assert ok and message.startswith("ok: run 1 (ok)"), message
