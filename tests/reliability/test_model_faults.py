"""Models that cannot be used, and series that give a model nothing to learn (issue 13, #2 and #5),
on both backends: a stored model blob that is random bytes, truncated, has NaN weights, a header
that disagrees with its arrays, or belongs to another architecture is replaced by a cold fit in the
same run, with a note (never "internal error"); a constant series, or one whose newest fifth is
constant, is forecast flat."""

from __future__ import annotations

import math
import struct

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.models import AutoForecaster, persist
from tickcast.models.auto_persist import MAGIC as AUTO_MAGIC
from tickcast.service import schema
from tickcast.service.db import write_transaction
from tickcast.service.run import published
from tickcast.service.run.cycle import run_cycle

from ..support.small_model import small_model
from ..support.tables import LEVELS

MODEL = small_model(training="group", group_min_series=3, full_retrain_days=100)


def random_bytes(blob: bytes) -> bytes:
    return np.random.default_rng(7).bytes(len(blob))


def truncated(blob: bytes) -> bytes:
    return blob[: len(blob) // 2]


# A stored model is an AutoForecaster blob: its magic, the length of its core, the core (settings,
# combination weights, residual quantiles) and each member's own blob back to back.
def _split(blob: bytes) -> tuple[dict, dict, dict[str, bytes]]:
    assert blob.startswith(AUTO_MAGIC)
    start = len(AUTO_MAGIC) + 8
    (size,) = struct.unpack("<Q", blob[len(AUTO_MAGIC) : start])
    meta, arrays = persist.unpack(blob[start : start + size])
    parts, pos = {}, start + size
    for name, length in zip(meta["names"], meta["blob_lengths"]):
        parts[name] = blob[pos : pos + length]
        pos += length
    return meta, arrays, parts


def _join(meta: dict, arrays: dict, parts: dict[str, bytes]) -> bytes:
    meta = {**meta, "blob_lengths": [len(parts[name]) for name in meta["names"]]}
    core = persist.pack(meta, arrays)
    return b"".join([AUTO_MAGIC, struct.pack("<Q", len(core)), core, *(parts[name] for name in meta["names"])])


def _rnn_changed(blob: bytes, change) -> bytes:
    """The blob with its RNN member's blob changed by ``change(meta, arrays)`` (the combination intact)."""
    meta, arrays, parts = _split(blob)
    rnn_meta, rnn_arrays = persist.unpack(parts["rnn"])
    change(rnn_meta, rnn_arrays)
    parts["rnn"] = persist.pack(rnn_meta, rnn_arrays)
    return _join(meta, arrays, parts)


def nan_weights(blob: bytes) -> bytes:
    def change(meta, arrays):
        arrays["weights"][0, 3] = math.nan

    return _rnn_changed(blob, change)


def header_disagrees(blob: bytes) -> bytes:
    def change(meta, arrays):
        meta["members"] = meta["members"] * 2  # twice the ensemble members its weights hold

    return _rnn_changed(blob, change)


def combination_disagrees(blob: bytes) -> bytes:
    """The combination's own header: more models than it holds weights for."""
    meta, arrays, parts = _split(blob)
    arrays["weights"] = arrays["weights"][:, :-1]
    return _join(meta, arrays, parts)


def weights_cut_short(blob: bytes) -> bytes:
    def change(meta, arrays):
        arrays["weights"] = arrays["weights"][:, :-5]  # fewer weights than its cell has

    return _rnn_changed(blob, change)


def another_architecture(blob: bytes) -> bytes:
    """A sound model, of another architecture: it loads, and its warm start fails."""
    previous = AutoForecaster.from_bytes(blob)
    params = previous.get_params()
    model = AutoForecaster(**{**params, "rnn": {**params["rnn"], "hidden_size": 4}})
    y = 50 + np.cumsum(np.random.default_rng(1).normal(0, 1, 80))
    if previous.n_series_ == 1:
        return model.fit(y).to_bytes()
    return model.fit_many([y + 10 * i for i in range(previous.n_series_)]).to_bytes()


CORRUPTIONS = [
    random_bytes,
    truncated,
    nan_weights,
    header_disagrees,
    combination_disagrees,
    weights_cut_short,
    another_architecture,
]


@pytest.fixture
def model_world(make_series, make_settings, db_url):
    """csv:walk (trading days) trains alone; csv:m0..m2 (monthly) train as a group."""
    rng = np.random.default_rng(4)
    walk = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, 301)))
    days = pd.bdate_range("2021-01-04", periods=301)
    months = pd.date_range("2015-01-01", periods=49, freq="MS")
    monthly = [rng.uniform(20, 90) * (1 + 0.2 * np.sin(np.arange(49) * np.pi / 6 + i)) for i in range(3)]

    def make(extra_point: bool = False):
        n = 1 if extra_point else 0
        make_series("walk", walk[: 300 + n], dates=days[: 300 + n])
        tables = '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\nprice = true\n'
        for i, values in enumerate(monthly):
            make_series(f"m{i}", values[: 48 + n], dates=months[: 48 + n])
            tables += f'[[series]]\nkey = "csv:m{i}"\npath = "m{i}.csv"\n'
        return make_settings(tables + MODEL, db_url=db_url)

    return make


def newest_fits(engine) -> dict:
    """key (None for the group's shared fit) -> the newest fit row."""
    fits, series = schema.fits, schema.series
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(fits, series.c.key)
            .join(series, series.c.id == fits.c.series_id, isouter=True)
            .order_by(fits.c.id)
        ).all()
    return {row.key: row for row in rows}


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_a_model_that_cannot_be_used_is_replaced_by_a_cold_fit_with_a_note(corrupt, fresh_db, model_world, ledger):
    engine = fresh_db()
    assert run_cycle(engine, model_world()).status == "ok"
    before = newest_fits(engine)
    with write_transaction(engine) as conn:  # what a bad disk, a bad restore or a bad hand would leave
        for key in ("csv:walk", None):
            conn.execute(
                sa.update(schema.fits)
                .where(schema.fits.c.id == before[key].id)
                .values(weights=corrupt(before[key].weights))
            )
    summary = run_cycle(engine, model_world(extra_point=True))
    assert summary.status == "ok", [o.error for o in summary.outcomes]
    assert {o.key: (o.fit, o.mode) for o in summary.outcomes} == {
        key: ("trained", "cold") for key in ("csv:walk", "csv:m0", "csv:m1", "csv:m2")
    }
    after = newest_fits(engine)
    for key, label in (("csv:walk", "model"), (None, "group model")):
        fit = after[key]
        assert (fit.status, fit.mode, fit.warm_started_from, fit.error) == ("ok", "cold", None, None)
        expected = (
            f"the warm start from the previous {label} failed (ValueError: warm_start model differs in "
            "{'rnn.hidden_size': (4, 8)}"
            if corrupt is another_architecture
            else f"the {label} to continue from could not be loaded ("
        )
        assert fit.note.startswith(expected) and fit.note.endswith(": trained cold"), fit.note
        member = key or "csv:m0"  # the new model is the one whose forecasts are stored, and they are sound
        with engine.connect() as conn:
            stored = list(
                conn.execute(
                    sa.select(schema.latest_forecasts.c.forecast)
                    .where(schema.latest_forecasts.c.series_key == member, schema.latest_forecasts.c.level == LEVELS[0])
                    .order_by(schema.latest_forecasts.c.step)
                ).scalars()
            )
        forecasts = np.array(published.load(fit.weights).predict_many(len(stored)))
        assert forecasts.shape == (1 if key else 3, len(stored)) and np.all(np.isfinite(forecasts))
        assert stored == pytest.approx(list(forecasts[0]), rel=1e-12)
    for key in ("csv:m0", "csv:m1", "csv:m2"):
        assert after[key].group_fit_id == after[None].id and after[key].note == after[None].note
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.latest_forecasts)).scalar() == (
            5 + 3 * 18
        ) * len(LEVELS)
    ledger.record(f"models: stored blob {corrupt.__name__}", injected=2, survived=2)


@pytest.mark.parametrize("training", ["series", "group"])
def test_constant_series_are_forecast_flat(training, fresh_db, make_series, make_settings, db_url, ledger):
    days = pd.bdate_range("2022-01-03", periods=200)
    make_series("held", [4.25] * 200, dates=days)  # a policy rate held for months
    tail = np.r_[100 + np.cumsum(np.random.default_rng(2).normal(0, 1, 150)), np.full(50, 97.5)]
    make_series("halted", tail, dates=days)  # a ticker halted for its newest quarter
    settings = make_settings(
        '[[series]]\nkey = "csv:held"\npath = "held.csv"\n'
        '[[series]]\nkey = "csv:halted"\npath = "halted.csv"\nprice = true\n'
        + MODEL.replace('training = "group"', f'training = "{training}"').replace(
            "group_min_series = 3", "group_min_series = 2"
        ),
        db_url=db_url,
    )
    engine = fresh_db()
    summary = run_cycle(engine, settings)
    assert summary.status == "ok", [o.error for o in summary.outcomes]
    fits = newest_fits(engine)
    for key, level in (("csv:held", 4.25), ("csv:halted", 97.5)):
        fit = fits[key]
        assert fit.status == "ok" and fit.error is None and fit.scope == training
        assert fit.naive_mae == 0.0 and fit.skill is None  # the naive forecast is perfect: no skill to compute
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(schema.latest_forecasts).where(schema.latest_forecasts.c.series_key == key)
            ).all()
        assert len(rows) == 5 * len(LEVELS)  # a trading week (the horizon of trading-day series), each level
        for row in rows:
            assert row.lower <= row.forecast <= row.upper and row.upper - row.lower < 0.05 * level
        if key == "csv:held":
            assert all(row.forecast == pytest.approx(level, rel=1e-9) for row in rows)
    ledger.record(f"models: constant series ({training})", injected=2, survived=2)
