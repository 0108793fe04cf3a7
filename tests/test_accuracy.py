"""The realised-accuracy ledger on a database whose forecasts and later observations are known by
construction, so every figure is exact; and the adaptive interval factor it feeds. Both backends."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.accuracy import SCORES, accuracy
from tickcast.service.cli import main
from tickcast.service.db import write_transaction
from tickcast.service.queries import NothingStored
from tickcast.service.run.adaptive import adaptive_interval_factor, adaptive_interval_factors, scale_interval
from tickcast.service.run.cycle import run_cycle

from .support.small_model import FAST_MODEL
from .support.tables import LEVELS, MEMBERS, ROWS_PER_STEP, add_series, table

NOW = datetime(2024, 2, 6, tzinfo=UTC)
D0, D1, D2, D3, D4, D5 = (
    date(2024, 1, 30),
    date(2024, 1, 31),
    date(2024, 2, 1),
    date(2024, 2, 2),
    date(2024, 2, 5),
    date(2024, 2, 6),
)
ACTUALS = {D0: 100.0, D1: 102.0, D2: 99.0, D3: 104.0, D4: 100.0}
# (origin, step, target, forecast, lower, upper): the actual, error, naive error and Winkler score of
# each (level 0.8, so 2 / (1 - level) = 10) are in the comments.
FORECASTS = [
    (D0, 1, D1, 101.0, 99.0, 103.0),  # 102: +1 inside,         naive 2, winkler 4
    (D0, 2, D2, 103.0, 100.0, 106.0),  # 99:  -4 below by 1,     naive 1, winkler 6 + 10
    (D1, 1, D2, 101.0, 100.5, 101.5),  # 99:  -2 below by 1.5,   naive 3, winkler 1 + 15
    (D1, 2, D3, 103.0, 98.0, 108.0),  # 104: +1 inside,         naive 2, winkler 10
    (D2, 1, D3, 100.0, 95.0, 103.0),  # 104: +4 above by 1,     naive 5, winkler 8 + 10
    (D3, 1, D4, 105.0, 103.0, 107.0),  # 100: -5 below by 3,     naive 4, winkler 4 + 30
    (D4, 1, D5, 100.0, 90.0, 110.0),  # no actual yet: not scored
]


def build(engine, key: str = "csv:x", factors: dict | None = None) -> int:
    """One series with the observations and forecasts above; returns its id."""
    with write_transaction(engine) as conn:
        sid, fit = add_series(conn, key, NOW)
        conn.execute(sa.insert(schema.observations), [dict(series_id=sid, ts=ts, value=v) for ts, v in ACTUALS.items()])
        conn.execute(
            sa.insert(schema.forecasts),
            [
                dict(
                    series_id=sid,
                    fit_id=fit,
                    origin_ts=o,
                    step=s,
                    target_ts=t,
                    value=v,
                    lower=lo,
                    upper=hi,
                    level=0.8,
                    created_at=NOW,
                    interval_factor=(factors or {}).get(o, 1.0),
                )
                for o, s, t, v, lo, hi in FORECASTS
            ],
        )
    return sid


STEP_1 = dict(
    series_key="csv:x",
    model="published",
    step=1,
    level=0.8,
    n=4,
    mae=3.0,
    rmse=math.sqrt(11.5),
    mape_pct=100 * (1 / 102 + 2 / 99 + 4 / 104 + 5 / 100) / 4,
    naive_mae=3.5,
    skill=1 / 7,
    coverage=0.25,
    winkler=18.0,
    first_target_ts=D1,
    last_target_ts=D4,
)
STEP_2 = dict(
    series_key="csv:x",
    model="published",
    step=2,
    level=0.8,
    n=2,
    mae=2.5,
    rmse=math.sqrt(8.5),
    mape_pct=100 * (4 / 99 + 1 / 104) / 2,
    naive_mae=1.5,
    skill=-2 / 3,
    coverage=0.5,
    winkler=13.0,
    first_target_ts=D2,
    last_target_ts=D3,
)
JANUARY = dict(
    series_key="csv:x",
    model="published",
    month="2024-01",
    level=0.8,
    n=1,
    mae=1.0,
    rmse=1.0,
    mape_pct=100 / 102,
    naive_mae=2.0,
    skill=0.5,
    coverage=1.0,
    winkler=4.0,
    first_target_ts=D1,
    last_target_ts=D1,
)
FEBRUARY = dict(
    series_key="csv:x",
    model="published",
    month="2024-02",
    level=0.8,
    n=5,
    mae=3.2,
    rmse=math.sqrt(12.4),
    mape_pct=100 * (4 / 99 + 2 / 99 + 1 / 104 + 4 / 104 + 5 / 100) / 5,
    naive_mae=3.0,
    skill=-1 / 15,
    coverage=0.2,
    winkler=18.8,
    first_target_ts=D2,
    last_target_ts=D4,
)


def exactly(expected: dict):
    return {k: pytest.approx(v, rel=1e-12, abs=1e-12) if isinstance(v, float) else v for k, v in expected.items()}


def test_the_views_give_exact_figures(fresh_db):
    engine = fresh_db()
    build(engine)
    rows, columns = accuracy(engine)
    assert rows == [exactly(STEP_1), exactly(STEP_2)]
    assert columns[:4] == ["series_key", "model", "step", "level"]
    monthly, _ = accuracy(engine, "csv:x", by="month")
    assert monthly == [exactly(JANUARY), exactly(FEBRUARY)]
    with engine.connect() as conn:
        errors = conn.execute(
            sa.select(schema.forecast_errors).order_by(
                schema.forecast_errors.c.origin_ts, schema.forecast_errors.c.step
            )
        ).all()
    assert len(errors) == 6  # the forecast for 6 February has no actual yet
    assert [(e.error, e.naive_abs_error, e.inside) for e in errors] == [
        (1.0, 2.0, 1.0),
        (-4.0, 1.0, 0.0),
        (-2.0, 3.0, 0.0),
        (1.0, 2.0, 1.0),
        (4.0, 5.0, 0.0),
        (-5.0, 4.0, 0.0),
    ]
    # 2 / (1 - 0.8) is 10 up to float rounding
    assert [e.winkler for e in errors] == pytest.approx([4.0, 16.0, 16.0, 10.0, 18.0, 34.0], rel=1e-12)


def test_tickcast_accuracy_prints_the_ledger(fresh_db, db_url, tmp_path, capsys):
    engine = fresh_db()
    build(engine)
    config = tmp_path / "t.toml"
    config.write_text('[[series]]\nkey = "csv:x"\npath = "x.csv"\n')
    base = ["--db", db_url, "--config", str(config), "accuracy"]
    assert main([*base, "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == [{k: v for k, v in exactly(row).items() if "target" not in k} for row in (STEP_1, STEP_2)]
    assert main([*base, "csv:x"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "series_key",
        "model",
        "step",
        "level",
        "n",
        "mae",
        "rmse",
        "mape_pct",
        "naive_mae",
        "skill",
        "coverage",
        "winkler",
    ]
    # units as stored: mape_pct in percent, skill and coverage fractions; no % signs anywhere
    assert lines[2].split() == [
        "csv:x",
        "published",
        "1",
        "0.80",
        "4",
        "3.00",
        "3.39",
        "2.96",
        "3.50",
        "+0.143",
        "0.250",
        "18.00",
    ]
    assert lines[3].split() == [
        "csv:x",
        "published",
        "2",
        "0.80",
        "2",
        "2.50",
        "2.92",
        "2.50",
        "1.50",
        "-0.667",
        "0.500",
        "13.00",
    ]
    assert main([*base, "--by", "month", "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == "series_key,model,month,level,n,mae,rmse,mape_pct,naive_mae,skill,coverage,winkler"
    assert csv_lines[1].startswith("csv:x,published,2024-01,0.8,1,1.0,1.0,0.98039215686") and csv_lines[1].endswith(
        ",0.5,1.0,4.0"
    )
    assert csv_lines[2].split(",")[:5] == ["csv:x", "published", "2024-02", "0.8", "5"]


def test_accuracy_before_anything_is_scored_says_why(fresh_db, db_url, tmp_path, capsys):
    engine = fresh_db()
    config = tmp_path / "t.toml"
    config.write_text('[[series]]\nkey = "csv:x"\npath = "x.csv"\n')
    base = ["--db", db_url, "--config", str(config), "accuracy"]
    assert main(base) == 1
    assert (
        capsys.readouterr().err
        == "tickcast: no forecasts yet: run 'tickcast run' (or wait for the scheduled run) first\n"
    )
    sid = build(engine)
    with write_transaction(engine) as conn:  # only the forecast whose target is still ahead
        conn.execute(sa.delete(schema.forecasts).where(schema.forecasts.c.origin_ts < D4))
    with pytest.raises(
        NothingStored, match="no forecast of csv:x has been scored yet: .* first target date is 2024-02-06"
    ):
        accuracy(engine, "csv:x")
    assert main([*base, "csv:nope"]) == 1
    assert "unknown series 'csv:nope'" in capsys.readouterr().err
    assert sid


# --- the adaptive interval factor ----------------------------------------------------------------


@pytest.mark.parametrize(
    "origin,factors,rate,expected",
    [
        # targets in (D3, D4]: one miss at level 0.8 -> excess 0.8, from D3's factor 1.5
        (D4, {D3: 1.5}, 0.05, 1.5 * math.exp(0.05 * 0.8)),
        # targets in (D2, D3]: one hit, one miss -> (0.8 - 1) + (0.8 - 0) = 0.6, from D2's factor 1
        (D3, {}, 0.05, math.exp(0.05 * 0.6)),
        # targets in (D0, D1]: one hit -> -0.2: narrower
        (D1, {D0: 2.0}, 0.1, 2.0 * math.exp(-0.02)),
        # bounded: at most 4
        (D4, {D3: 3.99}, 0.5, 4.0),
        # adaptation switched off; no earlier forecasts
        (D4, {D3: 1.5}, 0.0, 1.0),
        (D0, {}, 0.05, 1.0),
        # re-storing an origin already stored (D3) looks back from the one before it (D2)
        (D3, {D2: 0.5, D3: 3.0}, 0.05, 0.5 * math.exp(0.05 * 0.6)),
    ],
)
def test_the_adaptive_factor_follows_realised_coverage(fresh_db, origin, factors, rate, expected):
    engine = fresh_db()
    sid = build(engine, factors=factors)
    with engine.connect() as conn:
        assert adaptive_interval_factor(conn, sid, origin, rate, "published", 0.8) == pytest.approx(expected, rel=1e-12)
        # each model and level learns from its own forecasts only: none stored for these
        assert adaptive_interval_factor(conn, sid, origin, rate, "rnn", 0.8) == 1.0
        assert adaptive_interval_factor(conn, sid, origin, rate, "published", 0.95) == 1.0


def test_the_factors_of_several_models_and_levels_each_look_back_from_their_own_previous_origin(fresh_db):
    engine = fresh_db()
    sid = build(engine, factors={D3: 1.5})  # "published" at 0.8, stored from D0 to D4
    extra = [
        ("rnn", 0.8, o, s, t, v, lo, hi, 1.2 if o == D1 else 1.0) for o, s, t, v, lo, hi in FORECASTS if o in (D0, D1)
    ] + [("published", 0.95, D2, 1, D3, 100.0, 90.0, 110.0, 2.0)]
    with write_transaction(engine) as conn:
        fit = conn.execute(sa.select(schema.fits.c.id)).scalar_one()
        conn.execute(
            sa.insert(schema.forecasts),
            [
                dict(series_id=sid, fit_id=fit, model=m, level=lv, origin_ts=o, step=s, target_ts=t, value=v,
                     lower=lo, upper=hi, interval_factor=f, created_at=NOW)
                for m, lv, o, s, t, v, lo, hi, f in extra
            ],
        )  # fmt: skip
    keys = [("published", 0.8), ("rnn", 0.8), ("published", 0.95), ("ets", 0.8)]
    with engine.connect() as conn:
        got = adaptive_interval_factors(conn, sid, D4, 0.05, keys)
        assert got == {key: adaptive_interval_factor(conn, sid, D4, 0.05, *key) for key in keys}
    assert got[("published", 0.8)] == pytest.approx(1.5 * math.exp(0.05 * 0.8), rel=1e-12)  # from D3: one miss
    # the RNN's newest origin before D4 is D1: targets in (D1, D4] are D2 (two misses) and D3 (a hit)
    assert got[("rnn", 0.8)] == pytest.approx(1.2 * math.exp(0.05 * (0.8 + 0.8 - 0.2)), rel=1e-12)
    assert got[("published", 0.95)] == pytest.approx(2.0 * math.exp(0.05 * -0.05), rel=1e-12)  # one hit at 95 %
    assert got[("ets", 0.8)] == 1.0  # never stored
    with engine.connect() as conn:
        assert adaptive_interval_factors(conn, sid, D4, 0.0, keys) == dict.fromkeys(keys, 1.0)


def test_scale_interval_scales_each_side_around_the_point():
    lower, upper = scale_interval(np.array([10.0, 20.0]), np.array([8.0, 19.0]), np.array([11.0, 24.0]), 1.5)
    assert list(lower) == [7.0, 18.5] and list(upper) == [11.5, 26.0]


def test_a_run_widens_intervals_after_misses_and_records_the_factor(
    make_settings, make_series, tmp_path, backend, request
):
    """Two twin databases, one adapting and one not: the model's forecasts are the same (seeded), so
    the adapting one's intervals are the other's scaled by the recorded factor."""
    rng = np.random.default_rng(7)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 203)))
    dates = pd.bdate_range("2023-03-01", periods=203)

    def twin(name: str, rate: float):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / (name + '.db')}"
            return url, None
        manager = request.getfixturevalue("pg_server").database()
        return manager.__enter__(), manager

    results = {}
    for name, rate in (("fixed", 0.0), ("adaptive", 0.05)):
        from tickcast.service.db import open_database

        url, manager = twin(name, rate)
        make_series("walk", values[:200], dates=dates[:200])
        settings = make_settings(
            '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\nprice = true\n'
            + FAST_MODEL
            + f"[forecast]\ninterval_adapt_rate = {rate}\n",
            db_url=url,
        )
        engine = open_database(url)
        run_cycle(engine, settings)
        with write_transaction(engine) as conn:  # the first forecasts' intervals had no width: every one misses
            conn.execute(
                sa.update(schema.forecasts).values(lower=schema.forecasts.c.value, upper=schema.forecasts.c.value)
            )
        make_series("walk", values, dates=dates)  # three more days: steps 1-3 of those forecasts are scored
        run_cycle(engine, settings)
        results[name] = sorted(
            (
                f["origin_ts"],
                f["model"],
                f["level"],
                f["step"],
                f["value"],
                f["lower"],
                f["upper"],
                f["interval_factor"],
            )
            for f in table(engine, "forecasts")
        )
        engine.dispose()
        if manager is not None:
            manager.__exit__(None, None, None)
    second_origin = dates[202].date()
    fixed = [f for f in results["fixed"] if f[0] == second_origin]
    adaptive = [f for f in results["adaptive"] if f[0] == second_origin]
    # every model's intervals at every level: each its own factor, from its own three scored misses
    assert len(fixed) == len(adaptive) == 5 * ROWS_PER_STEP
    assert {(f[1], f[2]) for f in adaptive} == {(m, lv) for m in ("published", *MEMBERS) for lv in LEVELS}
    for (_, model, level, step, value, lower, upper, f), (
        _,
        model_a,
        level_a,
        step_a,
        value_a,
        lower_a,
        upper_a,
        f_a,
    ) in zip(fixed, adaptive):
        factor = math.exp(0.05 * 3 * (level - 0))  # three scored misses at this level
        assert (model, level, step) == (model_a, level_a, step_a)
        assert f == 1.0 and f_a == pytest.approx(factor, rel=1e-12)
        assert value_a == value
        assert value - lower_a == pytest.approx(factor * (value - lower), rel=1e-9)
        assert upper_a - value == pytest.approx(factor * (upper - value), rel=1e-9)


def test_the_plot_has_a_panel_of_realised_errors_and_coverage(fresh_db):
    from tickcast.service.plot import draw_series

    engine = fresh_db()
    sid = build(engine)
    with write_transaction(engine) as conn:
        fit_id = conn.execute(sa.select(schema.fits.c.id).where(schema.fits.c.series_id == sid)).scalar_one()
        conn.execute(sa.insert(schema.loss_history).values(fit_id=fit_id, epoch=0, train_loss=1.0))
    fig = draw_series(engine, "csv:x")
    top, overview, bottom, realised, coverage = fig.axes
    earlier = [line for line in top.get_lines() if line.get_label() == "earlier forecasts"]
    assert earlier  # the scored forecasts, drawn against what happened
    assert realised.get_title() == (
        "realised: 6 scored forecast(s), MAE 2.833 vs naive 2.833, skill +0.000; coverage 0.333 of the 0.80 interval"
    )
    inside, outside = (
        [line for line in realised.get_lines() if line.get_label() == label][0] for label in ("inside", "outside")
    )
    assert list(inside.get_ydata()) == [1.0, 1.0] and list(outside.get_ydata()) == [-4.0, -2.0, 4.0, -5.0]
    (rolling, nominal) = coverage.get_lines()
    assert rolling.get_ydata()[-1] == pytest.approx(2 / 6) and list(nominal.get_ydata()) == [0.8, 0.8]
    fig.clf()


def add_model(engine, sid: int, model: str, miss: float) -> None:
    """``model``'s forecasts beside the published ones: ``miss`` above each actual (100 where none),
    with an interval of +-1 around it."""
    with write_transaction(engine) as conn:
        fit = conn.execute(sa.select(schema.fits.c.id).where(schema.fits.c.series_id == sid)).scalar_one()
        conn.execute(
            sa.insert(schema.forecasts),
            [
                dict(
                    series_id=sid,
                    fit_id=fit,
                    origin_ts=o,
                    model=model,
                    step=s,
                    target_ts=t,
                    value=ACTUALS.get(t, 100.0) + miss,
                    lower=ACTUALS.get(t, 100.0) + miss - 1,
                    upper=ACTUALS.get(t, 100.0) + miss + 1,
                    level=0.8,
                    created_at=NOW,
                )
                for o, s, t, *_ in FORECASTS
            ],
        )


def test_accuracy_by_model_ranks_every_model_on_the_same_targets(fresh_db, db_url, tmp_path, capsys):
    engine = fresh_db()
    sid = build(engine)
    add_model(engine, sid, "rnn", 0.5)  # inside its interval, 0.5 off every time
    add_model(engine, sid, "ets", 3.0)  # outside by 2, 3 off every time
    config = tmp_path / "t.toml"
    config.write_text('[[series]]\nkey = "csv:x"\npath = "x.csv"\n')
    base = ["--db", db_url, "--config", str(config), "accuracy"]
    assert main([*base, "--by", "model", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["n"]) for r in printed] == [("rnn", 6), ("published", 6), ("ets", 6)]  # best first
    by_model = {r["model"]: r for r in printed}
    assert by_model["rnn"]["mae"] == pytest.approx(0.5) and by_model["rnn"]["coverage"] == 1.0
    assert by_model["ets"]["mae"] == pytest.approx(3.0) and by_model["ets"]["coverage"] == 0.0
    assert by_model["published"]["mae"] == pytest.approx(17 / 6) and by_model["published"]["coverage"] == pytest.approx(
        2 / 6
    )
    # the same naive forecast beside each: every model is scored on the same targets
    assert [r["naive_mae"] for r in printed] == pytest.approx([17 / 6] * 3)
    assert by_model["rnn"]["skill"] == pytest.approx(1 - 0.5 / (17 / 6))
    assert set(printed[0]) == {"series_key", "model", "level", *SCORES}
    # by step, the published forecast unless another model (or all) is asked for
    rows, _ = accuracy(engine, "csv:x")
    assert {r["model"] for r in rows} == {"published"} and len(rows) == 2
    rows, _ = accuracy(engine, "csv:x", model="rnn")
    assert {r["model"] for r in rows} == {"rnn"} and [r["mae"] for r in rows] == pytest.approx([0.5, 0.5])
    rows, _ = accuracy(engine, by="month", model="all")
    assert sorted({r["model"] for r in rows}) == ["ets", "published", "rnn"] and len(rows) == 6
    assert main([*base, "--by", "model"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["series_key", "model", "level"] and lines[2].split()[:2] == ["csv:x", "rnn"]
