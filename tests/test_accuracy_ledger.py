"""``tickcast accuracy`` on a ledger of several series, models and interval levels: every score of
``accuracy(by="model")`` against the same aggregation done in Python on the ``forecast_errors``
rows (test_accuracy checks those rows exactly), the order of every listing, a skill left empty
where the naive forecast was perfect, and the scored forecasts the plot draws. Both backends."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.accuracy import accuracy, scored_forecasts
from tickcast.service.db import write_transaction

from .support.tables import add_series

NOW = datetime(2024, 6, 1, tzinfo=UTC)
DAYS = [date(2024, 1, 25) + timedelta(days=i) for i in range(14)]  # January into February
MODELS = {"published": 0.0, "rnn": 0.6, "ets": -1.7}  # each model's bias on top of a common error
LEVELS = (0.8, 0.95)


def build(engine) -> dict[str, int]:
    """Three series: "csv:b" rises by 3 a day with a wobble; "csv:a" repeats one value (its naive
    forecast is perfect, so no skill); "csv:c" alternates 0.4 apart (a naive error below 1). Every
    model forecasts every day 1 and 2 steps ahead, at two levels; the last targets have no actual
    yet. Returns series key -> id."""
    rng = np.random.default_rng(11)
    ids = {}
    with write_transaction(engine) as conn:
        for key, values in (
            ("csv:b", [50.0 + 3 * i + (0.5 if i % 3 == 0 else -0.2) for i in range(len(DAYS))]),
            ("csv:a", [20.0] * len(DAYS)),
            ("csv:c", [30.0 + 0.4 * (i % 2) for i in range(len(DAYS))]),
        ):
            sid, fit = add_series(conn, key, NOW)
            ids[key] = sid
            known = len(DAYS) - 3  # the last three days are not observed yet
            conn.execute(
                sa.insert(schema.observations),
                [dict(series_id=sid, ts=d, value=v) for d, v in zip(DAYS[:known], values[:known])],
            )
            rows = []
            for i in range(len(DAYS) - 2):
                for step in (1, 2):
                    target = i + step
                    common = float(rng.normal(0, 0.6))
                    for model, bias in MODELS.items():
                        for level in LEVELS:
                            half = (0.7 if level == 0.8 else 1.5) * (1 + step / 2)
                            value = values[target] + common + bias
                            rows.append(
                                dict(
                                    series_id=sid,
                                    fit_id=fit,
                                    origin_ts=DAYS[i],
                                    model=model,
                                    step=step,
                                    target_ts=DAYS[target],
                                    value=value,
                                    lower=value - half,
                                    upper=value + half * 0.8,
                                    level=level,
                                    created_at=NOW,
                                )
                            )
            conn.execute(sa.insert(schema.forecasts), rows)
    return ids


def error_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.forecast_errors))]


def aggregate(rows: list[dict]) -> dict:
    """The scores of a group of forecast_errors rows, in Python."""
    abs_err = [r["abs_error"] for r in rows]
    naive = sum(r["naive_abs_error"] for r in rows) / len(rows)
    apes = [r["ape_pct"] for r in rows if r["ape_pct"] is not None]
    return {
        "n": len(rows),
        "mae": sum(abs_err) / len(rows),
        "rmse": math.sqrt(sum(r["error"] ** 2 for r in rows) / len(rows)),
        "mape_pct": sum(apes) / len(apes) if apes else None,
        "naive_mae": naive,
        "skill": 1 - (sum(abs_err) / len(rows)) / naive if naive > 0 else None,
        "coverage": sum(r["inside"] for r in rows) / len(rows),
        "winkler": sum(r["winkler"] for r in rows) / len(rows),
    }


def close(expected: dict):
    return {k: pytest.approx(v, rel=1e-9, abs=1e-12) if isinstance(v, float) else v for k, v in expected.items()}


def test_scores_by_model_are_the_python_aggregates_of_the_scored_rows(fresh_db):
    engine = fresh_db()
    build(engine)
    errors = error_rows(engine)
    groups: dict[tuple, list[dict]] = {}
    for r in errors:
        groups.setdefault((r["series_key"], r["model"], float(r["level"])), []).append(r)
    assert len(groups) == 3 * len(MODELS) * len(LEVELS)
    expected = [{"series_key": s, "model": m, "level": lv, **aggregate(rows)} for (s, m, lv), rows in groups.items()]
    expected.sort(key=lambda e: (e["series_key"], e["level"], e["mae"]))  # best model first at each level
    rows, columns = accuracy(engine, by="model")
    assert [{k: r[k] for k in columns} for r in rows] == [close(e) for e in expected]
    assert [r["model"] for r in rows[:3]] == ["published", "rnn", "ets"]  # csv:a, level 0.8: by MAE
    flat = [r for r in rows if r["series_key"] == "csv:a"]
    assert all(r["naive_mae"] == 0 and r["skill"] is None for r in flat)  # a perfect naive forecast: no skill
    for key, low, high in (("csv:b", 1.0, 10.0), ("csv:c", 0.0, 1.0)):  # a naive error below 1 has a skill too
        mine = [r for r in rows if r["series_key"] == key]
        assert all(low < r["naive_mae"] < high and r["skill"] is not None for r in mine)


@pytest.mark.parametrize("by", ["step", "month"])
def test_every_listing_is_ordered_by_series_model_period_and_level(fresh_db, by):
    engine = fresh_db()
    ids = build(engine)
    rows, _ = accuracy(engine, by=by, model="all")
    order = [(r["series_key"], r["model"], r[by], r["level"]) for r in rows]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert {r["series_key"] for r in rows} == set(ids) and {r["model"] for r in rows} == set(MODELS)
    assert {r["level"] for r in rows} == set(LEVELS)
    one, _ = accuracy(engine, "csv:b", by=by)
    assert [(r["series_key"], r["model"]) for r in one] == [("csv:b", "published")] * len(one)
    assert [(r[by], r["level"]) for r in one] == sorted((r[by], r["level"]) for r in one)
    errors = error_rows(engine)
    for r in one:  # each is its rows' aggregate
        period = (lambda e: e["step"]) if by == "step" else (lambda e: e["target_ts"].strftime("%Y-%m"))
        mine = [
            e
            for e in errors
            if e["series_key"] == "csv:b"
            and e["model"] == "published"
            and float(e["level"]) == r["level"]
            and period(e) == r[by]
        ]
        assert {k: r[k] for k in ("n", "mae", "rmse", "coverage")} == close(
            {k: aggregate(mine)[k] for k in ("n", "mae", "rmse", "coverage")}
        )


def test_the_scored_forecasts_are_the_series_published_ones_at_its_first_level_newest_last(fresh_db):
    engine = fresh_db()
    ids = build(engine)
    got = scored_forecasts(engine, ids["csv:b"])
    mine = [
        e
        for e in error_rows(engine)
        if e["series_id"] == ids["csv:b"] and e["model"] == "published" and float(e["level"]) == 0.8
    ]
    assert len(got) == len(mine) == 19  # targets up to the last observed day: 10 one step ahead, 9 two
    assert sorted((g["target_ts"], g["step"]) for g in got) == sorted((e["target_ts"], e["step"]) for e in mine)
    targets = [g["target_ts"] for g in got]
    assert targets == sorted(targets)  # oldest target first
    assert {(g["series_id"], g["model"], float(g["level"])) for g in got} == {(ids["csv:b"], "published", 0.8)}
    newest = scored_forecasts(engine, ids["csv:b"], limit=5)
    assert [(g["target_ts"], g["step"]) for g in newest] == [(g["target_ts"], g["step"]) for g in got[-5:]]
    assert min(g["target_ts"] for g in newest) >= sorted(targets)[-5]


def test_the_scored_forecasts_are_the_newest_five_hundred_by_default(fresh_db):
    engine = fresh_db()
    days = [date(2022, 1, 1) + timedelta(days=i) for i in range(520)]
    with write_transaction(engine) as conn:
        sid, fit = add_series(conn, "csv:long", NOW)
        conn.execute(
            sa.insert(schema.observations), [dict(series_id=sid, ts=d, value=100.0 + i) for i, d in enumerate(days)]
        )
        conn.execute(
            sa.insert(schema.forecasts),
            [
                dict(
                    series_id=sid,
                    fit_id=fit,
                    origin_ts=days[i],
                    model="published",
                    step=1,
                    target_ts=days[i + 1],
                    value=101.0 + i,
                    lower=100.0 + i,
                    upper=102.0 + i,
                    level=0.8,
                    created_at=NOW,
                )
                for i in range(len(days) - 1)
            ],
        )
    got = scored_forecasts(engine, sid)
    assert len(got) == 500 and [g["target_ts"] for g in got] == days[-500:]
