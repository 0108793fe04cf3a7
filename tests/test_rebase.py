"""Re-based histories (splits, dividends, re-exported files) and `tickcast ingest --full`: the stored
history is replaced in one transaction, old forecasts are rescaled, old fits are not continued; on
both backends, with the real yfinance against the Yahoo stand-in and with CSV files and URLs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.run.cycle import run_cycle
from tickcast.service.run.ingest import ingest
from tickcast.service.run.rebase import Rebase, confirm_rebase, detect_rebase, keep_unsent

from .support.fake_yahoo import bars_from_closes
from .support.httpserver import Reply
from .support.small_model import FAST_MODEL
from .support.tables import ROWS_PER_STEP, fits_by_key, observations, series_row


def values(dates, numbers) -> pd.Series:
    """A history as ``stored_values`` and ``as_series`` give it: indexed by its stamps."""
    return pd.Series(numbers, index=pd.DatetimeIndex([pd.Timestamp(d) for d in dates]), dtype="float64")


DAYS = ["2024-11-18", "2024-11-19", "2024-11-20", "2024-11-21", "2024-11-22"]


# --- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "new,expected",
    [
        ([50.0, 50.5, 51.0, 51.5, 52.0], Rebase(0.5, date(2024, 11, 22))),  # a 2:1 split: every value halved
        ([98.0, 98.98, 99.96, 100.94, 101.92], Rebase(0.98, date(2024, 11, 22))),  # a 2 % dividend
        ([50.0, 50.5, 51.0, 103.0, 104.0], Rebase(0.5, date(2024, 11, 20))),  # split effective on the 21st
        ([100.0, 101.0, 102.0, 103.0, 104.5], None),  # the last bar revised: a revision
        ([100.0, 101.0, 102.0, 103.0, 104.0], None),  # nothing changed
        ([100.00001, 101.00001, 102.0, 103.0, 104.0], None),  # float noise, not a factor (1e-7)
        ([50.0, 101.0, 102.0, 103.0, 104.0], None),  # one value moved: a revision
        ([50.0, 60.0, 51.0, 51.5, 52.0], None),  # moved, but not by one factor
    ],
)
def test_detect_rebase(new, expected):
    stored = values(DAYS, [100.0, 101.0, 102.0, 103.0, 104.0])
    assert detect_rebase(stored, values(DAYS, new)) == (None if expected is None else pytest.approx(expected))


def test_a_rebase_is_confirmed_by_most_of_the_full_history():
    dates = pd.bdate_range("2024-01-01", periods=100).strftime("%Y-%m-%d")
    stored = values(dates, np.linspace(100, 120, 100))
    suspect = Rebase(0.5, stored.index[-1])
    assert confirm_rebase(stored, stored * 0.5, suspect) == suspect
    revised_two = stored.copy()
    revised_two.iloc[-2:] *= 0.5  # only the last two moved: a revision that looked like a re-basing
    assert confirm_rebase(stored, revised_two, suspect) is None


# --- with the Yahoo stand-in: a split, then a dividend, between runs ------------------------------


def served(fake_yahoo, symbol) -> list[tuple[date, float]]:
    bars = fake_yahoo.bars[symbol]
    return [(ts.date(), float(v)) for ts, v in bars["adjclose"].items()]


def same_history(stored, expected) -> bool:
    return [d for d, _ in stored] == [d for d, _ in expected] and [v for _, v in stored] == pytest.approx(
        [v for _, v in expected], rel=1e-12
    )


def forecasts_by_origin(engine, key):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.forecasts)
            .join(schema.series, schema.series.c.id == schema.forecasts.c.series_id)
            .where(schema.series.c.key == key)
            .order_by(
                schema.forecasts.c.origin_ts,
                schema.forecasts.c.model,
                schema.forecasts.c.level,
                schema.forecasts.c.step,
            )
        ).all()
    out = {}
    for row in rows:
        out.setdefault(row.origin_ts, []).append(row)
    return out


def largest_daily_move(engine, key) -> float:
    v = np.array([value for _, value in observations(engine, key)])
    return float(np.max(np.abs(np.diff(np.log(v)))))


def test_a_split_and_a_dividend_between_runs_replace_the_history(fresh_db, make_settings, fake_yahoo, db_url):
    rng = np.random.default_rng(5)
    index = pd.bdate_range("2023-06-01", "2024-11-22")
    closes = pd.Series(200 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index)))), index=index)
    fake_yahoo.add("ACME", bars_from_closes(closes))
    settings = make_settings(
        '[watchlist]\nyahoo = ["ACME"]\n' + FAST_MODEL, db_url=db_url, yahoo_base_url=fake_yahoo.base_url
    )
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "ok"
    (before,) = forecasts_by_origin(engine, "yahoo:ACME").values()

    # A 2:1 split effective on Monday 25 November: Yahoo halves every earlier price, close and adjusted
    after = pd.bdate_range("2024-11-25", "2024-11-29")
    bars = fake_yahoo.bars["ACME"].copy()
    bars[["open", "high", "low", "close", "adjclose"]] *= 0.5
    fresh = bars_from_closes(pd.Series(closes.iloc[-1] * 0.5 * np.linspace(1.001, 1.005, len(after)), index=after))
    fake_yahoo.add("ACME", pd.concat([bars, fresh]))
    second = run_cycle(engine, settings)
    assert second.status == "ok" and second.outcomes[0].mode == "cold"

    assert same_history(observations(engine, "yahoo:ACME"), served(fake_yahoo, "ACME"))
    assert largest_daily_move(engine, "yahoo:ACME") < 0.06  # no fake -50 % return at the seam
    note = series_row(engine, "yahoo:ACME").last_note
    assert "history re-based by the source" in note and "factor of 0.5;" in note
    assert f"{5 * ROWS_PER_STEP} stored forecast(s) rescaled" in note  # every model's, at every level
    old_origin = date(2024, 11, 22)
    rescaled = forecasts_by_origin(engine, "yahoo:ACME")[old_origin]
    assert len(rescaled) == len(before) == 5 * ROWS_PER_STEP
    for was, now in zip(before, rescaled):
        assert (now.value, now.lower, now.upper) == pytest.approx((was.value * 0.5, was.lower * 0.5, was.upper * 0.5))
        assert now.rescaled_by == pytest.approx(0.5)
    first_fit, second_fit = fits_by_key(engine)["yahoo:ACME"]
    assert first_fit.history_replaced_at is not None and second_fit.history_replaced_at is None
    assert second_fit.mode == "cold" and second_fit.warm_started_from is None

    # A dividend going ex on Monday 2 December: only the adjusted close of earlier days moves (x 0.98)
    bars = fake_yahoo.bars["ACME"].copy()
    bars["adjclose"] *= 0.98
    later = bars_from_closes(pd.Series([closes.iloc[-1] * 0.5] * 3, index=pd.bdate_range("2024-12-02", periods=3)))
    fake_yahoo.add("ACME", pd.concat([bars, later]))
    third = run_cycle(engine, settings)
    assert third.status == "ok" and third.outcomes[0].mode == "cold"
    assert same_history(observations(engine, "yahoo:ACME"), served(fake_yahoo, "ACME"))
    assert "factor of 0.98;" in series_row(engine, "yahoo:ACME").last_note
    twice = forecasts_by_origin(engine, "yahoo:ACME")[old_origin]
    assert [f.value for f in twice] == pytest.approx([f.value * 0.5 * 0.98 for f in before])
    assert {round(f.rescaled_by, 12) for f in twice} == {0.49}
    assert [f.history_replaced_at is not None for f in fits_by_key(engine)["yahoo:ACME"]] == [True, True, False]
    # a quiet day after: nothing replaced, a warm start
    fake_yahoo.add(
        "ACME",
        pd.concat(
            [
                fake_yahoo.bars["ACME"],
                bars_from_closes(pd.Series([closes.iloc[-1] * 0.5], index=pd.bdate_range("2024-12-05", periods=1))),
            ]
        ),
    )
    fourth = run_cycle(engine, settings)
    assert fourth.outcomes[0].mode == "warm"
    assert "re-based" not in (series_row(engine, "yahoo:ACME").last_note or "")


# --- CSV sources --------------------------------------------------------------------------------


def write_csv(path, dates, numbers) -> None:
    pd.DataFrame({"date": [d.strftime("%Y-%m-%d") for d in dates], "value": numbers}).to_csv(path, index=False)


@pytest.fixture
def walk_file(tmp_path):
    dates = pd.bdate_range("2024-01-01", periods=60)
    numbers = list(100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 60))))
    path = tmp_path / "walk.csv"
    write_csv(path, dates[:50], numbers[:50])
    return path, dates, numbers


def test_a_re_based_csv_file_replaces_the_history(fresh_db, make_settings, walk_file, db_url):
    path, dates, numbers = walk_file
    settings = make_settings(
        '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\nprice = true\n' + FAST_MODEL, db_url=db_url
    )
    engine = fresh_db()
    run_cycle(engine, settings)
    (before,) = forecasts_by_origin(engine, "csv:walk").values()
    rebased = [v * 2.5 for v in numbers]  # the file re-exported in another unit, with 5 more days
    write_csv(path, dates[:55], rebased[:55])
    summary = run_cycle(engine, settings)
    assert summary.outcomes[0].mode == "cold"
    assert [v for _, v in observations(engine, "csv:walk")] == pytest.approx(rebased[:55])
    assert "factor of 2.5;" in series_row(engine, "csv:walk").last_note
    rescaled = forecasts_by_origin(engine, "csv:walk")[dates[49].date()]
    assert [f.value for f in rescaled] == pytest.approx([f.value * 2.5 for f in before])


def test_two_values_revised_alike_are_a_revision_not_a_rebase(fresh_db, make_settings, walk_file, db_url):
    path, dates, numbers = walk_file
    settings = make_settings('[[series]]\nkey = "csv:walk"\npath = "walk.csv"\n', db_url=db_url)
    engine = fresh_db()
    ingest(engine, settings)
    revised = list(numbers[:50])
    window = dates[49] - pd.Timedelta(days=settings.sources.overlap_days)
    first = int((dates[:50] >= window).argmax())  # the oldest day of the overlap
    revised[first] *= 1.1  # it and the next day revised by the same 10 %: it looks like a re-basing...
    revised[first + 1] *= 1.1
    overlap = [d.date() for d in dates[first:50]]
    suspect = detect_rebase(
        values([d.isoformat() for d in overlap], numbers[first:50]),
        values([d.isoformat() for d in overlap], revised[first:50]),
    )
    assert suspect == pytest.approx(Rebase(1.1, dates[first + 1].date()))
    write_csv(path, dates[:50], revised)  # ...but the full history does not confirm it
    (result,) = ingest(engine, settings)
    assert (result.new_rows, result.revised_rows, result.replaced) == (0, 2, False)
    assert [v for _, v in observations(engine, "csv:walk")] == pytest.approx(revised)
    assert series_row(engine, "csv:walk").last_note is None


def test_a_failed_full_fetch_keeps_the_stored_history(fresh_db, make_settings, http_server, db_url):
    dates = pd.bdate_range("2024-01-01", periods=30)

    def body(scale: float) -> str:
        return "date,value\n" + "".join(f"{d:%Y-%m-%d},{(100 + i) * scale}\n" for i, d in enumerate(dates))

    http_server.route("/walk.csv", Reply(200, body(1.0)))
    settings = make_settings(f'[[series]]\nkey = "csv:walk"\nurl = "{http_server.base_url}/walk.csv"\n', db_url=db_url)
    engine = fresh_db()
    ingest(engine, settings)
    stored = observations(engine, "csv:walk")
    http_server.route("/walk.csv", Reply(200, body(0.5)), Reply(404, "gone"))  # re-based, then gone
    (result,) = ingest(engine, settings)
    assert result.status == "failed" and "HTTP 404" in result.error
    assert observations(engine, "csv:walk") == stored


# --- tickcast ingest --full -----------------------------------------------------------------------


def test_ingest_full_replaces_what_the_overlap_ignores(fresh_db, make_settings, walk_file, db_url, tmp_path, capsys):
    path, dates, numbers = walk_file
    config = tmp_path / "tickcast.toml"
    config.write_text('[[series]]\nkey = "csv:walk"\npath = "walk.csv"\n' + FAST_MODEL)
    settings = make_settings(config.read_text(), db_url=db_url)
    engine = fresh_db()
    run_cycle(engine, settings)
    changed = list(numbers[:50])
    changed[5] = 123.0  # revised long ago, before the overlap
    keep = [i for i in range(50) if i != 7]  # and a row removed at the source
    write_csv(path, [dates[i] for i in keep], [changed[i] for i in keep])
    ingest(engine, settings)  # the usual ingest ignores both (documented in the README)
    assert [v for _, v in observations(engine, "csv:walk")] == pytest.approx(numbers[:50])

    argv = ["--db", db_url, "--config", str(config), "ingest", "--full", "csv:walk"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "history re-fetched in full and replaced (49 rows: 0 new, 1 revised, 1 removed)" in out
    assert same_history(observations(engine, "csv:walk"), [(dates[i].date(), changed[i]) for i in keep])
    (fit,) = fits_by_key(engine)["csv:walk"]
    assert fit.history_replaced_at is not None
    (forecast,) = {f.rescaled_by for fs in forecasts_by_origin(engine, "csv:walk").values() for f in fs}
    assert forecast is None  # no re-basing factor: the forecasts stand as they were made
    assert run_cycle(engine, settings).outcomes[0].mode == "cold"

    assert main(argv) == 0  # again: nothing changed, nothing replaced
    assert "history re-fetched in full: unchanged" in capsys.readouterr().out
    assert [f.history_replaced_at is None for f in fits_by_key(engine)["csv:walk"]] == [False, True]


def test_ingest_full_needs_keys_and_keeps_data_when_the_source_fails(
    fresh_db, make_settings, walk_file, db_url, tmp_path, capsys
):
    path, _, _ = walk_file
    config = tmp_path / "tickcast.toml"
    config.write_text('[[series]]\nkey = "csv:walk"\npath = "walk.csv"\n')
    assert main(["--db", db_url, "--config", str(config), "ingest", "--full"]) == 2
    assert capsys.readouterr().err.startswith("tickcast: --full replaces stored histories: name the series")
    engine = fresh_db()
    ingest(engine, make_settings(config.read_text(), db_url=db_url))
    stored = observations(engine, "csv:walk")
    path.write_text("date,value\n")
    assert main(["--db", db_url, "--config", str(config), "ingest", "--full", "csv:walk"]) == 1
    assert "csv:walk: no valid observations" in capsys.readouterr().err
    assert observations(engine, "csv:walk") == stored


def test_a_crash_while_replacing_leaves_the_old_history_whole(fresh_db, make_settings, walk_file, db_url, tmp_path):
    """kill -9 inside the replacing transaction (a real `tickcast` process): nothing is half-written."""
    import signal

    from .support.cli import run_cli

    path, dates, numbers = walk_file
    config = tmp_path / "tickcast.toml"
    config.write_text('[[series]]\nkey = "csv:walk"\npath = "walk.csv"\n' + FAST_MODEL)
    engine = fresh_db()
    run_cycle(engine, make_settings(config.read_text(), db_url=db_url))
    stored, forecasts = observations(engine, "csv:walk"), forecasts_by_origin(engine, "csv:walk")
    write_csv(path, dates[:50], [v * 0.5 for v in numbers[:50]])
    crashed = run_cli(
        "--db",
        db_url,
        "--config",
        str(config),
        "ingest",
        "--full",
        "csv:walk",
        env={"TICKCAST_KILL_AT": "ingest-write:1"},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert observations(engine, "csv:walk") == stored
    assert forecasts_by_origin(engine, "csv:walk") == forecasts
    assert [f.history_replaced_at for f in fits_by_key(engine)["csv:walk"]] == [None]
    done = run_cli("--db", db_url, "--config", str(config), "ingest", "--full", "csv:walk")
    assert done.returncode == 0, done.stderr
    assert "factor of 0.5;" in series_row(engine, "csv:walk").last_note


def test_stored_dates_a_rolling_source_no_longer_sends_are_kept_on_the_new_basis():
    """A source that sends only its last N days after a split: the older stored dates are added
    back, those up to the re-basing's last old-basis date times its factor, later ones as stored,
    the result sorted by date and the count of dates added back returned."""
    frame = pd.DataFrame({"ts": pd.to_datetime(["2024-01-05", "2024-01-03"]), "value": [50.0, 52.0]})
    stored = values([f"2024-01-0{d}" for d in range(1, 6)], [100.0, 102.0, 104.0, 108.0, 110.0])
    merged, added = keep_unsent(frame, stored, Rebase(factor=0.5, through=date(2024, 1, 2)))
    assert added == 3  # 1st, 2nd (old basis) and 4th (after the split: as stored)
    assert [d.date() for d in merged["ts"]] == [date(2024, 1, d) for d in (1, 2, 3, 4, 5)]
    assert merged["value"].tolist() == [50.0, 51.0, 52.0, 108.0, 50.0]
    assert list(merged.columns) == ["ts", "value"] and merged.index.tolist() == [0, 1, 2, 3, 4]
    same, none = keep_unsent(frame, stored.iloc[[2, 4]], Rebase(factor=0.5, through=date(2024, 1, 2)))
    assert none == 0 and same is frame  # nothing unsent: the frame as fetched
