"""`tickcast plot`'s figure checked against the database: its size, where each panel sits, that the
forecast, the history and the earlier forecasts drawn are this series' (with another series
stored beside it), the early-stopping note word for word, and the realised-errors panel drawn from
rows given to it. tests/test_cli.py and tests/test_accuracy.py check the labels and the ledger's
figures; tests/test_hourly.py an hourly series."""

from __future__ import annotations

import struct
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

pytest.importorskip("matplotlib")

from tickcast.service.accuracy import scored_forecasts  # noqa: E402
from tickcast.service.db import open_database  # noqa: E402
from tickcast.service.errors import TickcastError  # noqa: E402
from tickcast.service.plot import draw_realised, draw_series, early_stopping_note, plot_series  # noqa: E402
from tickcast.service.queries import latest_forecasts, resolve_series  # noqa: E402
from tickcast.service.run.cycle import run_cycle  # noqa: E402
from tickcast.service.stamps import as_datetime  # noqa: E402

from .support.small_model import FAST_MODEL  # noqa: E402


@pytest.fixture
def world(make_series, make_settings, sqlite_url):
    """csv:a and csv:b (a random walk each), run, three more days of both, run again: csv:a's first
    forecasts are scored at steps 1-3."""
    rng = np.random.default_rng(8)
    dates = pd.bdate_range("2023-01-02", periods=123)
    a, b = 100 + np.cumsum(rng.normal(0, 1, 123)), 500 + np.cumsum(rng.normal(0, 5, 123))
    settings = make_settings(
        '[[series]]\nkey = "csv:a"\npath = "a.csv"\n[[series]]\nkey = "csv:b"\npath = "b.csv"\n' + FAST_MODEL,
        db_url=sqlite_url,
    )
    engine = open_database(sqlite_url)
    for n in (120, 123):
        make_series("a", a[:n], dates=dates[:n])
        make_series("b", b[:n], dates=dates[:n])
        run_cycle(engine, settings)
    yield engine, dates
    engine.dispose()


def lines(ax, label: str) -> list:
    return [line for line in ax.get_lines() if line.get_label() == label]


def observations(engine, key: str) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT o.ts, o.value FROM observations o JOIN series s ON s.id = o.series_id "
                "WHERE s.key = :k ORDER BY o.ts"
            ),
            {"k": key},
        ).all()
    return [(datetime.fromisoformat(ts), v) for ts, v in rows]  # SQLite's text, read on its own


def test_the_png_is_1100_by_1000_pixels_and_bad_paths_are_refused_in_one_line(world, tmp_path):
    engine, _ = world
    import matplotlib

    with matplotlib.rc_context({"savefig.dpi": 50}):  # a user's matplotlibrc does not resize it
        out = plot_series(engine, "csv:a", str(tmp_path / "a.png"))
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1100, 1000)
    with pytest.raises(TickcastError) as info:
        plot_series(engine, "csv:a", str(tmp_path / "a.jpg"))
    assert str(info.value) == f"plot output must be a .png file, got {str(tmp_path / 'a.jpg')!r}"
    with pytest.raises(TickcastError) as info:
        plot_series(engine, "csv:a", str(tmp_path / "no" / "a.png"))
    assert str(info.value) == f"no directory {str(tmp_path / 'no')!r} for the plot: create it first"


def test_the_panels_sit_recent_and_whole_history_above_losses_above_realised_errors(world):
    engine, _ = world
    fig = draw_series(engine, "csv:a")
    top, overview, losses, realised, _coverage = fig.axes
    assert fig.get_size_inches().tolist() == [11.0, 10.0]
    assert type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"  # labels never overlap
    places = {}
    for name, ax in (("top", top), ("overview", overview), ("losses", losses), ("realised", realised)):
        spec = ax.get_subplotspec()
        places[name] = (spec.rowspan, spec.colspan)
    assert places == {
        "top": (range(0, 1), range(0, 3)),
        "overview": (range(0, 1), range(3, 4)),
        "losses": (range(1, 2), range(0, 4)),
        "realised": (range(2, 3), range(0, 4)),
    }
    ratios = top.get_subplotspec().get_gridspec().get_height_ratios()
    assert list(ratios) == [3, 2, 2]
    fig.clf()


def test_what_is_drawn_is_this_series_own(world):
    engine, _ = world
    fig = draw_series(engine, "csv:a")
    top, overview, *_ = fig.axes
    stored = latest_forecasts(engine, "csv:a")
    history = observations(engine, "csv:a")
    (forecast,) = lines(top, "forecast")
    assert list(forecast.get_xdata()) == [history[-1][0]] + [as_datetime(f["target_ts"]) for f in stored]
    assert list(forecast.get_ydata()) == [history[-1][1]] + [f["forecast"] for f in stored]
    whole, ahead = overview.get_lines()
    assert list(whole.get_xdata()) == [t for t, _ in history] and list(whole.get_ydata()) == [v for _, v in history]
    assert list(ahead.get_ydata()) == [f["forecast"] for f in stored]
    assert list(ahead.get_xdata()) == [as_datetime(f["target_ts"]) for f in stored]
    assert overview.get_title() == f"whole history ({len(history):,} points)"
    (observed,) = lines(top, "observed")
    assert list(observed.get_xdata()) == [t for t, _ in history[-30:]]  # four horizons of 5, at least 30
    fig.clf()


def test_earlier_forecasts_are_those_whose_target_is_on_the_chart(world):
    engine, dates = world
    sid = resolve_series(engine, "csv:a").id
    scored = scored_forecasts(engine, sid)
    assert [as_datetime(f["target_ts"]) for f in scored] == [d.to_pydatetime() for d in dates[120:123]]
    for points, shown in ((3, 3), (2, 2), (1, 1)):  # the chart starts at the 1st, 2nd, 3rd scored target
        fig = draw_series(engine, "csv:a", points)
        realised = fig.axes[3]
        assert realised.get_title().startswith(f"realised: {shown} scored forecast(s), ")
        fig.clf()


@pytest.mark.parametrize(
    "hyperparams,n_series,bars",
    [
        (None, None, "1.0% of the loss and 2 standard errors"),
        ({"min_delta": 0.05, "significance": 1.5}, 1, "5.0% of the loss and 1.5 standard errors"),
        (
            {"members": ["rnn", "ets"], "rnn": {"min_delta": 0.02, "significance": 3.0}},
            2,
            "2.0% of the loss and 3 standard errors, both divided by sqrt(2) for 2 series",
        ),
        ({"rnn": {}}, 40, "1.0% of the loss and 2 standard errors, both divided by sqrt(40) for 40 series"),
    ],
)
def test_the_early_stopping_note_states_the_fits_own_bars(hyperparams, n_series, bars):
    fit = SimpleNamespace(hyperparams=hyperparams, n_series=n_series, best_epoch=7)
    assert early_stopping_note(fit) == (
        f"kept epoch 7: no later epoch lowered the validation loss by {bars} (smaller dips are noise); "
        "then refit on all the data for that many epochs"
    )


def test_the_realised_panel_draws_each_error_inside_its_interval_and_the_rolling_coverage():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = pd.Timestamp("2024-01-01")
    rows = [
        {
            "target_ts": (start + pd.Timedelta(days=i)).to_pydatetime(),
            "error": e,
            "inside": int(abs(e) <= 2),
            "forecast": 10.0 + i,
            "lower": 10.0 + i - 2,
            "upper": 10.0 + i + 3,
            "level": 0.8,
            "naive_abs_error": 2.0,
        }
        for i, e in enumerate([1.0, -3.0, 2.0, 0.5, 4.0] * 12)  # 60 forecasts
    ]
    fig, ax = plt.subplots()
    draw_realised(ax, rows)
    (bands,) = ax.collections
    segments = bands.get_segments()
    assert len(segments) == 60 and all(s[0][1] == -2.0 and s[1][1] == 3.0 for s in segments)
    (inside,), (outside,) = lines(ax, "inside"), lines(ax, "outside")
    assert list(inside.get_ydata()) == [1.0, 2.0, 0.5] * 12 and list(outside.get_ydata()) == [-3.0, 4.0] * 12
    assert list(inside.get_xdata()) == [r["target_ts"] for r in rows if r["inside"]]  # each on its target date
    assert list(outside.get_xdata()) == [r["target_ts"] for r in rows if not r["inside"]]
    from matplotlib.colors import to_hex

    assert (to_hex(inside.get_color()), inside.get_marker(), inside.get_markersize()) == ("#1f77b4", "o", 3)
    assert (to_hex(outside.get_color()), outside.get_marker(), outside.get_markersize()) == ("#d62728", "x", 5)
    assert outside.get_linestyle() == "None"  # misses are marks, not a line
    zero = [line for line in ax.get_lines() if list(line.get_ydata()) == [0, 0]]
    assert [(to_hex(z.get_color()), z.get_linewidth()) for z in zero] == [("#000000", 0.8)]
    assert ax.get_legend().get_texts()[0].get_fontsize() == pytest.approx(8.33, abs=0.01)  # "small"
    mae = np.mean(np.abs([1.0, -3.0, 2.0, 0.5, 4.0]))
    assert ax.get_title() == (
        f"realised: 60 scored forecast(s), MAE {mae:.4g} vs naive 2, skill {1 - mae / 2:+.3f}; "
        "coverage 0.600 of the 0.80 interval"
    )
    coverage = fig.axes[1]
    rolling, nominal = coverage.get_lines()
    assert rolling.get_label() == "coverage, last 50" and len(rolling.get_ydata()) == 11
    assert list(rolling.get_xdata()) == [r["target_ts"] for r in rows[49:]]  # each window ends on its date
    assert coverage.get_legend().get_texts()[0].get_fontsize() == pytest.approx(8.33, abs=0.01)
    assert np.allclose(rolling.get_ydata(), 0.6) and list(nominal.get_ydata()) == [0.8, 0.8]
    assert coverage.get_ylim() == (0.0, 1.05)
    plt.close(fig)


def test_the_recent_panel_names_the_series_and_its_skill_and_draws_earlier_forecasts_from_their_origin(world):
    engine, dates = world
    sid = resolve_series(engine, "csv:a").id
    (first,) = {f["origin_ts"] for f in scored_forecasts(engine, sid)}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT target_ts, value FROM forecasts WHERE series_id = :s AND origin_ts = :o "
                "AND model = 'published' AND level = 0.8 ORDER BY step"
            ),
            {"s": sid, "o": str(first)},
        ).all()
    history = dict(observations(engine, "csv:a"))
    fig = draw_series(engine, "csv:a", 10)
    top = fig.axes[0]
    (earlier,) = lines(top, "earlier forecasts")
    origin = datetime.fromisoformat(str(first))
    scored_targets = [datetime.fromisoformat(t) for t, _ in rows][:3]  # those with an actual by now
    assert list(earlier.get_xdata()) == [origin, *scored_targets]
    assert list(earlier.get_ydata()) == [history[origin], *[v for _, v in rows][:3]]  # from the value at the origin
    skill = latest_forecasts(engine, "csv:a")[0]["skill"]
    assert top.get_title() == f"csv:a; backtest skill {skill:+.3f} (1 - MAE / naive MAE)"
    fig.clf()


def test_before_anything_is_scored_the_realised_panel_says_why(make_series, make_settings, sqlite_url):
    from tickcast.service.accuracy import not_scored_yet

    make_series("c", 100 + np.arange(60.0), dates=pd.bdate_range("2023-01-02", periods=60))
    settings = make_settings(
        '[[series]]\nkey = "csv:c"\npath = "c.csv"\nname = "Cee"\n' + FAST_MODEL, db_url=sqlite_url
    )
    engine = open_database(sqlite_url)
    run_cycle(engine, settings)
    fig = draw_series(engine, "csv:c")
    top, realised = fig.axes[0], fig.axes[3]
    assert top.get_title().startswith("Cee — csv:c")  # a name of its own comes first
    (said,) = realised.texts
    assert not realised.axison and said.get_text() == not_scored_yet(engine, resolve_series(engine, "csv:c"))
    assert said.get_position() == (0.5, 0.5) and (said.get_ha(), said.get_va(), said.get_wrap()) == (
        "center",
        "center",
        True,
    )
    assert said.get_text()
    fig.clf()
    engine.dispose()


def test_the_loss_panel_names_its_loss_and_stars_the_kept_epochs_validation_loss(
    make_series, make_settings, sqlite_url
):
    from .support.small_model import small_model

    rng = np.random.default_rng(3)
    make_series("d", 100 + np.cumsum(rng.normal(0, 1, 150)), dates=pd.bdate_range("2023-01-02", periods=150))
    model = small_model(loss="mse", epochs=6)
    settings = make_settings('[[series]]\nkey = "csv:d"\npath = "d.csv"\n' + model, db_url=sqlite_url)
    engine = open_database(sqlite_url)
    run_cycle(engine, settings)
    with engine.connect() as conn:
        fit = conn.execute(sa.text("SELECT id, mode, cell, epochs, best_epoch FROM fits")).one()
        history = conn.execute(
            sa.text("SELECT epoch, train_loss, val_loss FROM loss_history WHERE fit_id = :f ORDER BY epoch"),
            {"f": fit.id},
        ).all()
    fig = draw_series(engine, "csv:d")
    losses = fig.axes[2]
    assert losses.get_ylabel() == "MSE (network units)"
    assert losses.get_title().split("\n")[0] == f"fit {fit.id}: {fit.mode} {fit.cell}, {fit.epochs} epochs"
    (train,), (val,) = lines(losses, "train loss"), lines(losses, "validation loss")
    assert list(train.get_ydata()) == [h.train_loss for h in history]
    assert list(val.get_ydata()) == [h.val_loss for h in history]
    assert list(train.get_xdata()) == list(val.get_xdata()) == [h.epoch for h in history]  # by epoch, from 0
    (star,) = [line for line in losses.get_lines() if line.get_marker() == "*"]
    kept = {h.epoch: h for h in history}[fit.best_epoch]
    assert list(star.get_xdata()) == [fit.best_epoch] and list(star.get_ydata()) == [kept.val_loss]
    from matplotlib.colors import to_hex

    (best,) = lines(losses, f"best epoch {fit.best_epoch} (kept)")  # green: the kept epoch, dashed
    assert (to_hex(best.get_color()), best.get_linewidth(), best.get_linestyle()) == ("#2ca02c", 1.0, "--")
    assert list(best.get_xdata()) == [fit.best_epoch, fit.best_epoch]
    assert to_hex(star.get_color()) == "#2ca02c" and star.get_markersize() == 12
    assert (val.get_linestyle(), val.get_marker(), val.get_markersize()) == ("-", "s", 3)  # squares: validation
    fig.clf()
    engine.dispose()


def test_a_missing_plot_extra_is_one_line_and_a_broken_matplotlib_is_not_called_missing(monkeypatch):
    import sys

    from tickcast.service.plot import MISSING, require_matplotlib

    require_matplotlib()  # installed here: nothing to say
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # how Python says "not installed"
    with pytest.raises(TickcastError) as info:
        require_matplotlib()
    assert str(info.value) == MISSING == "tickcast plot needs matplotlib: pip install 'tickcast[plot]'"
    assert info.value.__cause__ is None and info.value.__suppress_context__

    class BrokenDependency:  # matplotlib is there, but one of its own imports is not
        def find_spec(self, name, path=None, target=None):
            if name == "matplotlib":
                raise ModuleNotFoundError("No module named 'kiwisolver'", name="kiwisolver")
            return None

    monkeypatch.delitem(sys.modules, "matplotlib")
    monkeypatch.setattr(sys, "meta_path", [BrokenDependency(), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError) as broken:
        require_matplotlib()
    assert broken.value.name == "kiwisolver"  # the real cause, not "install the plot extra"


def test_the_realised_panel_names_its_axes_and_shows_a_skill_only_against_a_nonzero_naive_error():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def rows(naive: float) -> list[dict]:
        start = pd.Timestamp("2024-01-01")
        return [
            {
                "target_ts": (start + pd.Timedelta(days=i)).to_pydatetime(),
                "error": 0.25,
                "inside": 1,
                "forecast": 5.0,
                "lower": 4.0,
                "upper": 6.0,
                "level": 0.95,
                "naive_abs_error": naive,
            }
            for i in range(4)
        ]

    for naive, skill in ((0.0, ""), (0.5, ", skill +0.500")):  # a flat series' naive forecast is exact
        fig, ax = plt.subplots()
        draw_realised(ax, rows(naive))
        assert ax.get_title() == (
            f"realised: 4 scored forecast(s), MAE 0.25 vs naive {naive:.4g}{skill}; coverage 1.000 of the 0.95 interval"
        )
        assert ax.get_ylabel() == "actual - forecast" and fig.axes[1].get_ylabel() == "coverage (fraction)"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "interval around the forecast",
            "inside",
            "outside",
        ]
        assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["coverage, last 4", "nominal 0.95"]
        plt.close(fig)


def test_the_recent_panel_shades_the_stored_interval_and_leaves_out_a_skill_never_measured(world):
    import matplotlib.dates as mdates

    engine, _ = world
    stored = latest_forecasts(engine, "csv:a")
    fig = draw_series(engine, "csv:a")
    top, overview = fig.axes[:2]
    assert [t.get_text() for t in top.get_legend().get_texts()] == [
        "observed",
        "earlier forecasts",
        "forecast",
        "80% interval",
    ]
    (band,) = top.collections
    corners = band.get_paths()[0].vertices
    targets = mdates.date2num([as_datetime(f["target_ts"]) for f in stored])
    upper = {(x, y) for x, y in zip(targets, [f["upper"] for f in stored])}
    lower = {(x, y) for x, y in zip(targets, [f["lower"] for f in stored])}
    assert upper | lower == {tuple(v) for v in corners}  # the band runs from each lower bound to each upper one
    # the whole history's span of what the left panel shows: its first observation to the last target
    (shown,) = overview.patches
    first = mdates.date2num(lines(top, "observed")[0].get_xdata()[0])
    assert (shown.get_x(), shown.get_x() + shown.get_width()) == pytest.approx((first, targets[-1]))
    assert [t.get_text() for t in overview.get_legend().get_texts()] == ["shown left"]
    fig.clf()
    with engine.begin() as conn:  # a backtest whose naive forecast was exact has no skill
        conn.execute(sa.text("UPDATE fits SET skill = NULL"))
    fig = draw_series(engine, "csv:a")
    assert fig.axes[0].get_title() == "csv:a"
    fig.clf()


def test_the_whole_history_stops_at_the_newest_20000_points(world):
    from tickcast.service import schema
    from tickcast.service.plot import MAX_OVERVIEW_POINTS

    engine, dates = world
    sid = resolve_series(engine, "csv:a").id
    older = pd.bdate_range(end=dates[0] - pd.Timedelta(days=1), periods=MAX_OVERVIEW_POINTS)
    with engine.begin() as conn:
        conn.execute(
            schema.observations.insert(),
            [{"series_id": sid, "ts": d.date(), "value": float(i)} for i, d in enumerate(older)],
        )
    history = observations(engine, "csv:a")
    assert len(history) == MAX_OVERVIEW_POINTS + 123
    fig = draw_series(engine, "csv:a")
    overview = fig.axes[1]
    assert overview.get_title() == "whole history (20,000 points)"
    whole = overview.get_lines()[0]
    assert list(whole.get_xdata()) == [t for t, _ in history[-MAX_OVERVIEW_POINTS:]]
    fig.clf()


def test_earlier_forecasts_from_several_origins_are_named_once_in_the_legend(make_series, make_settings, sqlite_url):
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2023-01-02", periods=126)
    values = 100 + np.cumsum(rng.normal(0, 1, 126))
    settings = make_settings('[[series]]\nkey = "csv:e"\npath = "e.csv"\n' + FAST_MODEL, db_url=sqlite_url)
    engine = open_database(sqlite_url)
    for n in (120, 123, 126):  # the first two runs' forecasts are scored by the third's data
        make_series("e", values[:n], dates=dates[:n])
        run_cycle(engine, settings)
    origins = sorted({f["origin_ts"] for f in scored_forecasts(engine, resolve_series(engine, "csv:e").id)})
    assert len(origins) == 2
    fig = draw_series(engine, "csv:e", 10)
    top = fig.axes[0]
    starts = sorted(line.get_xdata()[0] for line in top.get_lines()[1:-1])  # between observed and forecast
    assert starts == [as_datetime(o) for o in origins]  # one line from each origin
    assert len(lines(top, "earlier forecasts")) == 1
    assert [t.get_text() for t in top.get_legend().get_texts()].count("earlier forecasts") == 1
    fig.clf()
    engine.dispose()


def test_the_figure_keeps_its_visual_language(world):
    """Colours carry meaning across the panels (blue: what happened; red: the forecast and its
    interval; grey: earlier forecasts; green: the kept epoch and coverage; orange: what the left
    panel shows), and each mark its style, so a reader of one chart reads them all."""
    from matplotlib.colors import to_hex, to_rgba

    engine, _ = world
    fig = draw_series(engine, "csv:a", 10)
    top, overview, losses, realised, coverage = fig.axes

    def style(line) -> tuple:
        return to_hex(line.get_color()), line.get_linewidth(), line.get_linestyle(), line.get_marker()

    def legend_of(ax) -> tuple:
        legend = ax.get_legend()
        return legend._loc, legend.get_texts()[0].get_fontsize()

    def maxticks(ax) -> set:
        return set(ax.xaxis.get_major_locator().maxticks.values())

    (observed,), (earlier,), (forecast,) = (lines(top, n) for n in ("observed", "earlier forecasts", "forecast"))
    assert style(observed) == ("#1f77b4", 1.2, "-", "None")
    assert style(earlier) == ("#7f7f7f", 0.8, "-", "None") and earlier.get_alpha() == 0.6
    assert style(forecast) == ("#d62728", 1.2, "-", "o") and forecast.get_markersize() == 3
    (band,) = top.collections
    assert to_rgba(band.get_facecolor()[0]) == pytest.approx(to_rgba("#d62728", 0.2))
    assert top.title.get_fontsize() == pytest.approx(10.0)  # "medium"
    assert legend_of(top) == (2, pytest.approx(8.33, abs=0.01)) and maxticks(top) == {8}  # upper left, "small"
    assert top.xaxis.get_gridlines()[0].get_alpha() == 0.3

    whole, ahead = overview.get_lines()
    assert style(whole) == ("#1f77b4", 0.6, "-", "None") and style(ahead) == ("#d62728", 1.2, "-", "None")
    (shown,) = overview.patches
    assert to_rgba(shown.get_facecolor()) == pytest.approx(to_rgba("#ff7f0e", 0.15))
    assert overview.title.get_fontsize() == pytest.approx(6.94, abs=0.01)  # "x-small"
    assert overview.xaxis.get_ticklabels()[0].get_fontsize() == pytest.approx(6.94, abs=0.01)
    assert legend_of(overview) == (2, pytest.approx(6.94, abs=0.01)) and maxticks(overview) == {4}
    assert overview.xaxis.get_gridlines()[0].get_alpha() == 0.3

    (train,) = lines(losses, "train loss")
    assert style(train)[2:] == ("-", "o") and train.get_markersize() == 3
    assert losses.get_ylabel() == "MAE (network units)"  # the default loss, named though the fit did not say
    assert "\n" not in losses.get_title()  # no validation loss: no early-stopping note
    assert losses.title.get_fontsize() == pytest.approx(10.0) and losses.xaxis.get_gridlines()[0].get_alpha() == 0.3

    (bands,) = realised.collections
    assert to_rgba(bands.get_color()[0]) == pytest.approx(to_rgba("#d62728", 0.25)) and bands.get_linewidth()[0] == 3
    (inside,) = lines(realised, "inside")
    assert style(inside) == ("#1f77b4", inside.get_linewidth(), "None", "o") and inside.get_markersize() == 3
    zero = [line for line in realised.get_lines() if list(line.get_ydata()) == [0, 0]]
    assert [style(z)[:2] for z in zero] == [("#000000", 0.8)]
    assert legend_of(realised)[0] == 2 and realised.xaxis.get_gridlines()[0].get_alpha() == 0.3
    assert maxticks(realised) == {8}
    rolling, nominal = coverage.get_lines()
    assert style(rolling)[:3] == ("#2ca02c", 1.2, "-") and style(nominal)[:3] == ("#2ca02c", 1.0, "--")
    assert coverage.get_legend()._loc == 1  # upper right
    fig.clf()


def losses_panel(history, best_epoch, hyperparams=None):
    """The losses panel drawn by itself, with a colour cycle of black only (the panel's colours
    are its own, whatever matplotlibrc says)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    from tickcast.service.plot import _draw_losses

    fit = SimpleNamespace(
        id=7,
        mode="group",
        cell="gru",
        epochs=len(history),
        best_epoch=best_epoch,
        hyperparams=hyperparams,
        n_series=1,
        group_key=None,
    )
    rows = [{"epoch": e, "train_loss": t, "val_loss": v} for e, t, v in history]
    with matplotlib.rc_context({"axes.prop_cycle": cycler(color=["#000000"])}):
        fig, ax = plt.subplots()
        _draw_losses(ax, SimpleNamespace(model_fit=fit, rows=rows, shared=False))
    plt.close(fig)
    return ax


def test_the_losses_panel_draws_each_loss_at_its_stored_epoch_and_stars_the_kept_one():
    from matplotlib.colors import to_hex

    history = [(3, 0.9, 1.0), (4, 0.7, 0.8), (5, 0.6, 0.85)]  # a history need not start at epoch 0
    ax = losses_panel(history, best_epoch=4)
    (train,), (val,) = lines(ax, "train loss"), lines(ax, "validation loss")
    assert list(train.get_xdata()) == list(val.get_xdata()) == [3, 4, 5]
    (star,) = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert (list(star.get_xdata()), list(star.get_ydata()), to_hex(star.get_color())) == ([4], [0.8], "#2ca02c")
    assert ax.get_ylabel() == "MAE (network units)"  # a fit that does not name its loss
    assert ax.get_title().startswith("fit 7: group gru, 3 epochs\nkept epoch 4: ")


def test_the_losses_panel_without_validation_stars_the_training_loss_and_adds_no_note():
    ax = losses_panel([(0, 0.9, None), (1, 0.7, None), (2, 0.6, None)], best_epoch=1, hyperparams={"loss": "mse"})
    (star,) = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([1], [0.7])
    assert ax.get_ylabel() == "MSE (network units)" and ax.get_title() == "fit 7: group gru, 3 epochs"
    assert lines(ax, "validation loss") == []
    ax = losses_panel([(0, 0.9, None), (1, 0.7, 0.8)], best_epoch=0)  # kept before any validation loss
    (star,) = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([0], [0.9])


def test_the_losses_panel_marks_a_kept_epoch_missing_from_the_history_without_a_star():
    ax = losses_panel([(0, 0.9, 1.0), (1, 0.7, 0.8)], best_epoch=5)
    (kept,) = lines(ax, "best epoch 5 (kept)")
    assert list(kept.get_xdata()) == [5, 5]
    assert [line for line in ax.get_lines() if line.get_marker() == "*"] == []


def test_the_realised_panel_keeps_its_colours_whatever_the_colour_cycle():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler
    from matplotlib.colors import to_hex

    rows = [
        {
            "target_ts": datetime(2024, 1, 1 + i),
            "error": e,
            "inside": int(abs(e) <= 2),
            "forecast": 10.0,
            "lower": 8.0,
            "upper": 13.0,
            "level": 0.8,
            "naive_abs_error": 2.0,
        }
        for i, e in enumerate([1.0, -3.0, 2.0])
    ]
    with matplotlib.rc_context({"axes.prop_cycle": cycler(color=["#000000"])}):
        fig, ax = plt.subplots()
        draw_realised(ax, rows)
    plt.close(fig)
    (inside,), (outside,) = lines(ax, "inside"), lines(ax, "outside")
    assert (to_hex(inside.get_color()), to_hex(outside.get_color())) == ("#1f77b4", "#d62728")
    rolling, nominal = fig.axes[1].get_lines()
    assert to_hex(rolling.get_color()) == to_hex(nominal.get_color()) == "#2ca02c"


def test_the_early_stopping_note_is_wrapped_at_130_characters():
    ax = losses_panel([(122, 0.9, 1.0), (123, 0.7, 0.8), (124, 0.6, 0.85)], best_epoch=123)
    title, *note = ax.get_title().split("\n")
    assert " ".join(note) == early_stopping_note(SimpleNamespace(hyperparams=None, n_series=1, best_epoch=123))
    assert len(note) == 2 and max(len(line) for line in note) <= 130


def test_the_figure_keeps_its_colours_whatever_the_colour_cycle(world):
    """Under a matplotlibrc whose colour cycle is black only, the observed history is still blue in
    both panels that draw it (its colour is the figure's, not the cycle's first)."""
    import matplotlib
    from cycler import cycler
    from matplotlib.colors import to_hex

    engine, _ = world
    with matplotlib.rc_context({"axes.prop_cycle": cycler(color=["#000000"])}):
        fig = draw_series(engine, "csv:a", 10)
    top, overview, *_ = fig.axes
    (observed,) = lines(top, "observed")
    whole, ahead = overview.get_lines()
    assert (to_hex(observed.get_color()), to_hex(whole.get_color()), to_hex(ahead.get_color())) == (
        "#1f77b4",
        "#1f77b4",
        "#d62728",
    )
