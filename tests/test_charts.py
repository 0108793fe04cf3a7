"""tickcast's Datasette chart plugin on its own (tests/test_browse.py loads it in a real browser):
the series chart of a daily and of an hourly series, x positions and tick labels; the pieces charts
are built from (ticks, scales, paths, labels); where the history, forecast and band are drawn; the
loss chart and its log scale; which pages offer a chart, the chart page itself, and the fits'
settings cell."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pandas as pd
import pytest

from tickcast.service.browse import plugins_dir

PLUGIN = Path(plugins_dir()) / "tickcast_charts.py"  # the file `tickcast browse` hands Datasette


@pytest.fixture(scope="module")
def charts():
    # Loaded from its file as Datasette loads it, under the name of its place in the package (which
    # bench/mutation.py's mutants are named after).
    spec = importlib.util.spec_from_file_location("tickcast.service.datasette.tickcast_charts", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows_of(stamps: list[str], history: int) -> list[dict]:
    """The canned query's rows: ``history`` actuals, then forecasts with their interval."""
    return [
        {"ts": t, "actual": float(i), "forecast": None, "lower": None, "upper": None, "level": None}
        if i < history
        else {"ts": t, "actual": None, "forecast": float(i), "lower": i - 1.0, "upper": i + 1.0, "level": 0.8}
        for i, t in enumerate(stamps)
    ]


def xs(svg: str, css: str) -> list[float]:
    path = re.search(rf'<path class="{css}" d="([^"]+)"', svg).group(1)
    return [float(x) for x in re.findall(r"[ML](-?[\d.]+),", path)]


@pytest.mark.parametrize(
    "stamp,day",
    [
        ("2024-03-01", 738946.0),
        ("2024-03-01 12:00:00", 738946.5),
        ("2024-03-01 06:00", 738946.25),
        ("2024-03-01T18:00:00+01:00", 738946.75),  # an offset: the clock time as written
        ("2024-03-01x", 738946.0),  # trailing text after a date
        ("March", None),
        (None, None),
    ],
)
def test_a_stamp_is_a_day_with_its_time_as_a_fraction(charts, stamp, day):
    assert charts.to_day(stamp) == day


def test_an_hourly_series_is_drawn_hour_by_hour_with_times_on_its_ticks(charts):
    hours = pd.date_range("2024-03-01", periods=60, freq="h")
    stamps = [t.isoformat(sep=" ") if t.hour else t.date().isoformat() for t in hours]  # as SQLite stores them
    svg = charts.series_chart(rows_of(stamps, 36))
    actual, forecast = xs(svg, "actual"), xs(svg, "forecast")
    assert len(set(actual)) == 36 and actual == sorted(actual)  # one point per hour, none on top of another
    assert forecast[0] == actual[-1] and len(set(forecast)) == 25  # from the last hour observed, 24 ahead
    labels = re.findall(r">(2024-03-0\d[^<]*)<", svg)
    assert labels and len(set(labels)) == len(labels) and all(re.fullmatch(r"2024-03-0\d \d\d:\d\d", x) for x in labels)


def test_a_daily_series_has_dates_on_its_ticks(charts):
    stamps = [d.date().isoformat() for d in pd.date_range("2024-01-01", periods=90)]
    svg = charts.series_chart(rows_of(stamps, 80))
    assert len(set(xs(svg, "actual"))) == 80
    labels = re.findall(r">(2024-0\d-\d\d[^<]*)<", svg)
    assert labels and all(re.fullmatch(r"2024-0\d-\d\d", x) for x in labels)


# --- the pieces every chart is built from ---------------------------------------------------------


def test_a_query_is_a_series_chart_a_loss_chart_or_neither_by_its_columns(charts):
    assert charts.chart_kind(["ts", "actual", "forecast", "lower", "upper", "level"]) == "series"
    assert charts.chart_kind(["ts", "actual", "forecast", "lower", "upper", "epoch", "train_loss"]) == "series"
    assert charts.chart_kind(["epoch", "train_loss", "val_loss"]) == "loss"
    assert charts.chart_kind(["ts", "actual", "forecast", "lower"]) is None  # no upper bound
    assert charts.chart_kind(["epoch", "val_loss"]) is None
    assert charts.chart_kind([]) is None


@pytest.mark.parametrize(
    "low,high,count,ticks",
    [
        (0, 10, 5, [0, 2, 4, 6, 8, 10]),  # steps of 1, 2, 2.5, 5 or 10 times a power of ten ...
        (0, 1, 4, [0, 0.25, 0.5, 0.75, 1.0]),
        (0.13, 0.87, 5, [0.2, 0.4, 0.6, 0.8]),  # ... from the first multiple of the step at or above low
        (-7, -1, 5, [-6, -4, -2]),
        (0, 7, 5, [0, 2, 4, 6]),
        (0, 6, 5, [0, 2, 4, 6]),  # the high end itself when it is a multiple of the step
        (1000, 1003, 3, [1000, 1001, 1002, 1003]),
        (3, 3, 5, [3]),  # nothing to span: the one value
        (5, 1, 5, [5]),
        (float("nan"), 1, 5, []),
        (0, float("inf"), 5, []),
    ],
)
def test_ticks_are_round_numbers_covering_the_range(charts, low, high, count, ticks):
    assert charts.nice_ticks(low, high, count) == pytest.approx(ticks)


def test_nice_ticks_make_five_intervals_unless_told_otherwise(charts):
    assert charts.nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]


def test_a_scale_maps_data_to_pixels_linearly_or_by_powers_of_ten(charts):
    x = charts.Scale(0, 10, 70, 740)
    assert (x(0), x(5), x(10), x(-1)) == (70, 405, 740, 3)
    y = charts.Scale(0, 10, 296, 20)  # pixels grow downwards: the high end at the top
    assert (y(0), y(10)) == (296, 20)
    log = charts.Scale(1, 100, 0, 100, log=True)
    assert (log.log, log(1), log(10), log(100)) == (True, 0, 50, 100)
    flat = charts.Scale(5, 5, 0, 100)  # one value: drawn in the middle of a range 5 % either side
    assert flat(5) == 50 and (flat.low, flat.high) == (4.75, 5.25)
    zero = charts.Scale(0, 0, 0, 100)
    assert zero(0) == 50 and (zero.low, zero.high) == (-1, 1)
    flat_log = charts.Scale(10, 10, 0, 100, log=True)
    assert flat_log(10) == 50 and (flat_log.low, flat_log.high) == (0.95, 1.05)


def test_a_path_moves_to_its_first_point_and_draws_lines_to_the_rest(charts):
    assert charts.path_d([(1, 2), (3.14159, 4.25), (5, 6)]) == "M1.0,2.0 L3.1,4.2 L5.0,6.0"
    assert charts.path_d([]) == ""


def test_ticks_carry_the_time_of_day_only_when_the_chart_spans_under_three_days(charts):
    day = charts.to_day("2024-03-01 06:30")
    assert charts.day_label(day, 2.99) == "2024-03-01 06:30"
    assert charts.day_label(day, 3) == "2024-03-01"
    assert charts.day_label(charts.to_day("2024-03-01"), 100) == "2024-03-01"


@pytest.mark.parametrize(
    "value,number",
    [(None, None), ("3", None), (b"3", None), (float("nan"), None), (float("inf"), None), (2, 2.0), (0.5, 0.5)],
)
def test_only_finite_numbers_are_drawn(charts, value, number):
    assert charts.number(value) == number


# --- the history and forecast chart ----------------------------------------------------------------


def paths(svg: str) -> dict[str, list[tuple[float, float]]]:
    return {
        css: [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)]
        for css, d in re.findall(r'<path class="([\w-]+)" d="([^"]+)"', svg)
    }


def texts(svg: str) -> list[str]:
    return re.findall(r"<text [^>]*>([^<]*)</text>", svg)


def test_the_forecast_and_its_band_start_at_the_last_observation_and_fill_the_plot(charts):
    stamps = [d.date().isoformat() for d in pd.date_range("2024-01-01", periods=10)]
    rows = rows_of(stamps, 6)  # actuals 0-5; forecasts 6-9 within (i - 1, i + 1)
    svg = charts.series_chart(rows)
    drawn = paths(svg)
    actual, forecast, band = drawn["actual"], drawn["forecast"], drawn["band"]
    left, right, top, bottom = charts.LEFT, charts.WIDTH - charts.RIGHT, charts.TOP, charts.HEIGHT - charts.BOTTOM
    assert actual[0][0] == left and forecast[-1][0] == right  # the first day at the left, the last at the right
    assert forecast[0] == actual[-1] and len(forecast) == 5  # from the last actual, then each step
    assert band[0] == actual[-1] == band[-1]  # the band opens from the last actual ...
    upper, lower = band[:5], band[5:][::-1]
    assert [x for x, _ in upper] == [x for x, _ in forecast] == [x for x, _ in lower]  # ... and spans each step
    assert all(hi < f < lo for (_, hi), (_, f), (_, lo) in zip(upper[1:], forecast[1:], lower[1:]))  # y grows down
    margin = (bottom - top) * 0.05 / 1.1  # 5 % of the values' range either side
    ys = [y for _, y in actual + band]
    assert min(ys) == pytest.approx(top + margin, abs=0.06) and max(ys) == pytest.approx(bottom - margin, abs=0.06)
    assert texts(svg)[-3:] == ["history", "forecast", "80% interval"]
    assert "<title>history and forecast</title>" in svg and 'aria-label="history and forecast"' in svg
    assert ">date<" in svg and ">value<" in svg
    assert f'viewBox="0 0 {charts.WIDTH} {charts.HEIGHT}"' in svg


def test_the_y_ticks_are_round_values_at_their_height(charts):
    stamps = [d.date().isoformat() for d in pd.date_range("2024-01-01", periods=10)]
    svg = charts.series_chart(rows_of(stamps, 6))  # values -0.05 * 11 .. 10 + 0.05 * 11
    ticks = re.findall(r'<text x="64" y="([\d.]+)" text-anchor="end" font-size="11">([^<]*)</text>', svg)
    assert [label for _, label in ticks] == ["0", "2.5", "5", "7.5", "10"]  # a range of 11.1: steps of 2.5
    heights = [float(y) - 4 for y, _ in ticks]
    assert heights == sorted(heights, reverse=True)  # 0 lowest on the page, 10 highest
    gaps = [a - b for a, b in zip(heights, heights[1:])]
    assert max(gaps) - min(gaps) < 0.2  # evenly spaced (to the SVG's tenth of a pixel)
    margin = (charts.HEIGHT - charts.BOTTOM - charts.TOP) * 0.05 / 1.1  # 0 and 10 are the lowest and highest values
    assert heights[0] == pytest.approx(charts.HEIGHT - charts.BOTTOM - margin, abs=0.06)
    assert heights[-1] == pytest.approx(charts.TOP + margin, abs=0.06)


def test_without_an_interval_level_the_band_is_just_an_interval_and_bad_cells_are_skipped(charts):
    rows = rows_of(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"], 2)
    for r in rows:
        r["level"] = None
    rows.append({"ts": "not a date", "actual": 99.0, "forecast": 99.0, "lower": 0.0, "upper": 200.0, "level": "x"})
    rows.append({"ts": "2024-01-05", "actual": "n/a", "forecast": float("nan"), "lower": None, "upper": None})
    svg = charts.series_chart(rows)
    assert texts(svg)[-1] == "interval"
    drawn = paths(svg)
    assert len(drawn["actual"]) == 2 and len(drawn["forecast"]) == 3  # a row without a date or a number: skipped
    assert max(y for _, y in drawn["band"]) < charts.HEIGHT - charts.BOTTOM  # the skipped row's 0 .. 200 not in range
    rows[3]["level"] = 0.95
    assert texts(charts.series_chart(rows))[-1] == "95% interval"


def test_history_alone_or_forecasts_alone_are_drawn_and_nothing_is_none(charts):
    stamps = ["2024-01-01", "2024-01-02", "2024-01-03"]
    history = charts.series_chart(rows_of(stamps, 3))
    assert set(paths(history)) == {"actual"}
    ahead = paths(charts.series_chart(rows_of(stamps, 0)))
    assert set(ahead) == {"band", "forecast"} and len(ahead["forecast"]) == 3  # no anchor without history
    assert ahead["forecast"][0][0] == charts.LEFT
    assert charts.series_chart([]) is None
    assert charts.series_chart(rows_of(["March", None], 1)) is None


# --- the loss chart ----------------------------------------------------------------------------------


def loss_rows(train: list[float], val: list[float] | None = None) -> list[dict]:
    return [{"epoch": e, "train_loss": t, **({} if val is None else {"val_loss": val[e]})} for e, t in enumerate(train)]


def test_losses_are_drawn_by_epoch_with_whole_epochs_on_the_axis(charts):
    svg = charts.loss_chart(loss_rows([1.0, 0.8, 0.7, 0.65], [1.1, 0.9, 0.85, 0.86]))
    drawn = paths(svg)
    assert set(drawn) == {"train-loss", "val-loss"}
    assert [x for x, _ in drawn["train-loss"]] == [x for x, _ in drawn["val-loss"]]
    assert drawn["train-loss"][0][0] == charts.LEFT and drawn["train-loss"][-1][0] == charts.WIDTH - charts.RIGHT
    labels = texts(svg)
    assert labels[:4] == ["0", "1", "2", "3"]  # ticks at 0, 0.5, ... : the whole epochs only
    assert "loss" in labels and "epoch" in labels and "loss (log scale)" not in labels
    assert labels[-2:] == ["training loss", "validation loss"]
    assert "<title>loss by epoch</title>" in svg
    train_only = charts.loss_chart(loss_rows([1.0, 0.8]))
    assert set(paths(train_only)) == {"train-loss"} and texts(train_only)[-1] == "training loss"
    assert 'stroke="#1f4e79"' in train_only and 'stroke="#d35400"' in svg


def test_losses_spanning_more_than_a_factor_of_20_get_a_log_scale_with_powers_of_ten(charts):
    svg = charts.loss_chart(loss_rows([50.0, 5.0, 0.5, 0.2]))
    labels = texts(svg)
    assert "loss (log scale)" in labels
    y_ticks = re.findall(r'<text x="64" y="[\d.]+" text-anchor="end" font-size="11">([^<]*)</text>', svg)
    assert y_ticks == ["1", "10"]  # the powers of ten within 0.2 .. 50
    (line,) = paths(svg).values()
    top, bottom = charts.TOP, charts.HEIGHT - charts.BOTTOM
    assert line[0][1] == top and line[-1][1] == bottom  # log scale: no padding
    assert line[1][1] - line[0][1] == pytest.approx(line[2][1] - line[1][1], abs=0.15)  # each tenfold the same
    assert "loss (log scale)" not in texts(charts.loss_chart(loss_rows([20.0, 1.0])))  # exactly 20: linear
    assert "loss (log scale)" in texts(charts.loss_chart(loss_rows([20.01, 1.0])))
    assert "loss (log scale)" not in texts(charts.loss_chart(loss_rows([50.0, 0.0])))  # a zero: no logarithm


def test_a_loss_chart_needs_a_number(charts):
    assert charts.loss_chart([]) is None
    assert charts.loss_chart([{"epoch": 0, "train_loss": None, "val_loss": None}]) is None
    assert charts.loss_chart([{"epoch": None, "train_loss": 1.0}]) is None
    one = charts.loss_chart([{"epoch": 0, "train_loss": None, "val_loss": 2.0}])
    assert set(paths(one)) == {"val-loss"}


# --- Datasette's hooks ---------------------------------------------------------------------------------


def test_a_chart_is_offered_for_chartable_queries_and_for_one_fits_losses_only(charts):
    from datasette.utils.asgi import Request

    series, loss = ["ts", "actual", "forecast", "lower", "upper"], ["epoch", "train_loss"]
    one_fit, every_fit = Request.fake("/tc/loss_history?fit_id=1"), Request.fake("/tc/loss_history")
    assert charts.can_render_chart(series, None, None) and charts.can_render_chart(loss, None, every_fit)
    assert not charts.can_render_chart(["a", "b"], None, None) and not charts.can_render_chart(None, None, None)
    assert charts.can_render_chart(loss, "loss_history", one_fit)
    assert not charts.can_render_chart(loss, "loss_history", every_fit)
    assert not charts.can_render_chart(loss, "loss_history", None)
    assert not charts.can_render_chart(loss, "other_table", one_fit)
    assert not charts.can_render_chart(["a"], "loss_history", one_fit)
    hooks = charts.register_output_renderer(None)
    assert hooks["extension"] == "chart" and hooks["render"] is charts.render_chart
    assert hooks["can_render"] is charts.can_render_chart


def render(charts, path: str, columns: list[str], rows: list[tuple], query_name="series_forecast", table=None):
    import asyncio

    from datasette.app import Datasette
    from datasette.utils.asgi import Request

    async def page():
        datasette = Datasette(memory=True)
        await datasette.invoke_startup()
        request = Request.fake(path)
        request.scope["csrftoken"] = lambda: ""  # what Datasette's middleware adds to a real request
        return await charts.render_chart(datasette, columns, rows, request, "tc", query_name, table)

    return asyncio.run(page())


def test_the_chart_page_names_what_it_draws_and_links_back_to_its_rows(charts):
    columns = ["ts", "actual", "forecast", "lower", "upper", "level"]
    rows = [tuple(r[c] for c in columns) for r in rows_of(["2024-01-01", "2024-01-02", "2024-01-03"], 2)]
    out = render(charts, "/tc/series_forecast.chart?key=sample:sp500&_size=max", columns, rows)
    assert out["content_type"] == "text/html; charset=utf-8"
    body = out["body"]
    assert "<h1>History and forecast: key = sample:sp500</h1>" in body  # Datasette's own _ arguments left out
    assert "<p>Drawn from series_forecast (3 rows)</p>" in body
    assert '<svg class="tickcast-chart"' in body and "Nothing to draw" not in body
    assert '<a href="/tc/series_forecast?key=sample:sp500&amp;_size=max">The rows as a table</a>' in body
    assert '<a href="/tc/series_forecast.json?key=sample:sp500&amp;_size=max">json</a>' in body


def test_a_chart_page_without_rows_says_so_and_where_to_choose(charts):
    loss = ["epoch", "train_loss", "val_loss"]
    body = render(charts, "/tc/loss_curve.chart?key=nope", loss, [], "loss_curve")["body"]
    assert "<h1>Loss by epoch: key = nope</h1>" in body and "<p>Drawn from loss_curve</p>" in body
    assert "Nothing to draw: the query returned no rows for key = nope." in body
    assert 'Choose a series on <a href="/tc/loss_curve?key=nope">' in body and "<svg" not in body
    body = render(charts, "/tc/loss_history.chart", loss, [(0, 1.0, None), (1, 0.5, None)], None, "loss_history")[
        "body"
    ]
    assert "<h1>Loss by epoch</h1>" in body and "<p>Drawn from loss_history (2 rows)</p>" in body
    assert '<svg class="tickcast-chart"' in body and '<a href="/tc/loss_history.json">json</a>' in body
    assert '<a href="/tc/loss_history">The rows as a table</a>' in body  # no query: no "?"
    body = render(charts, "/tc/q.chart?a=1&a=2", ["x"], [(1,)], None, None)["body"]
    assert "<h1>Chart: a = 1, a = 2</h1>" in body and "<p>Drawn from query (1 rows)</p>" in body
    assert "Nothing to draw" in body


def test_a_fits_long_settings_open_from_a_one_line_summary(charts):
    import json

    settings = {"members": ["rnn", "ets"], "seed": 0, "rnn": {"hidden_size": 32, "loss": "mae", "note": "<b>"}}
    value = json.dumps(settings)
    cell = str(charts.render_cell(value, "hyperparams", "fits"))
    assert cell.startswith("<details><summary>members=[&#x27;rnn&#x27;, &#x27;ets&#x27;], seed=0, &hellip;</summary>")
    assert '<pre style="white-space: pre-wrap">' in cell and cell.endswith("</pre></details>")
    assert json.loads(html_unescape(re.search(r"<pre[^>]*>(.*)</pre>", cell, re.S).group(1))) == settings
    assert "&lt;b&gt;" in cell and "<b>" not in cell
    assert charts.render_cell(value, "hyperparams", "runs") is None
    assert charts.render_cell(value, "mode", "fits") is None
    assert charts.render_cell('{"a": 1}', "hyperparams", "fits") is None  # short: shown as it is
    assert charts.render_cell("x" * 61, "hyperparams", "fits") is None  # not JSON
    assert charts.render_cell(json.dumps(list(range(30))), "hyperparams", "fits") is None  # not an object
    assert charts.render_cell(None, "hyperparams", "fits") is None
    sixty = json.dumps({"k": "v" * 51})
    assert len(sixty) == 60 and charts.render_cell(sixty, "hyperparams", "fits") is None
    assert charts.render_cell(json.dumps({"k": "v" * 52}), "hyperparams", "fits") is not None


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


# --- the layout, element by element ------------------------------------------------------------------


def test_the_axes_ticks_and_labels_sit_where_the_layout_puts_them(charts):
    x, y = charts.Scale(0, 10, 70, 740), charts.Scale(0, 1, 296, 20)
    parts = charts.axes(x, y, [(5.0, "five & more")], [0.5], "date", "value <x>")
    assert parts == [
        '<line class="axis" x1="70" y1="296" x2="740" y2="296" stroke="#444"/>',  # the x axis along the bottom
        '<line class="axis" x1="70" y1="20" x2="70" y2="296" stroke="#444"/>',  # the y axis at the left
        '<line x1="405.0" y1="296" x2="405.0" y2="300" stroke="#444"/>',  # a tick mark below the axis
        '<text x="405.0" y="312" text-anchor="middle" font-size="11">five &amp; more</text>',
        '<line x1="70" y1="158.0" x2="740" y2="158.0" stroke="#e5e5e5"/>',  # a grid line across
        '<text x="64" y="162.0" text-anchor="end" font-size="11">0.5</text>',
        '<text x="405" y="334" text-anchor="middle" font-size="12">date</text>',
        '<text x="14" y="158" text-anchor="middle" font-size="12" transform="rotate(-90 14 158)">'
        "value &lt;x&gt;</text>",  # the y label turned up, halfway up the plot
    ]


def test_the_legend_stacks_its_entries_in_the_top_right_corner(charts):
    assert charts.legend([("history", "#111111", False), ("80% <interval>", "#222222", True)]) == [
        '<line x1="590" y1="28" x2="608" y2="28" stroke="#111111" stroke-width="2"/>',
        '<text x="614" y="32" font-size="11">history</text>',
        '<rect x="590" y="39" width="18" height="10" fill="#222222" fill-opacity="0.35"/>',
        '<text x="614" y="48" font-size="11">80% &lt;interval&gt;</text>',
    ]


def test_an_svg_wraps_its_parts_with_a_title_for_screen_readers(charts):
    assert charts.svg("a <b>", ["<x/>", "<y/>"]) == (
        '<svg class="tickcast-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 760 340" width="760" '
        'height="340" role="img" aria-label="a &lt;b&gt;" style="max-width: 100%; height: auto; background: #fff">'
        "<title>a &lt;b&gt;</title><x/><y/></svg>"
    )


def test_the_series_legend_draws_history_and_forecast_as_lines_and_the_band_as_an_area(charts):
    svg = charts.series_chart(rows_of(["2024-01-01", "2024-01-02", "2024-01-03"], 2))
    (rect,) = re.findall(r"<rect [^>]*>", svg)
    assert 'fill="#f1948a"' in rect  # the band's colour
    assert 'x1="590" y1="28" x2="608" y2="28" stroke="#1f4e79"' in svg  # history, then forecast
    assert 'x1="590" y1="44" x2="608" y2="44" stroke="#c0392b"' in svg
    assert "<rect" not in charts.loss_chart(loss_rows([1.0, 0.5], [1.2, 0.7]))  # losses are lines


def test_values_far_from_zero_keep_their_margin_and_the_x_ticks_are_about_five(charts):
    stamps = [d.date().isoformat() for d in pd.date_range("2024-01-01", periods=31)]  # a span of 30 days
    rows = rows_of(stamps, 25)
    for r in rows:
        for k in ("actual", "forecast", "lower", "upper"):
            r[k] = None if r[k] is None else r[k] + 1000.0
    svg = charts.series_chart(rows)
    drawn = paths(svg)
    top, bottom = charts.TOP, charts.HEIGHT - charts.BOTTOM
    margin = (bottom - top) * 0.05 / 1.1
    ys = [y for _, y in drawn["actual"] + drawn["band"]]
    assert min(ys) == pytest.approx(top + margin, abs=0.06) and max(ys) == pytest.approx(bottom - margin, abs=0.06)
    x_labels = re.findall(r'text-anchor="middle" font-size="11">([^<]*)</text>', svg)
    assert x_labels == ["2024-01-05", "2024-01-15", "2024-01-25"]  # every 10 days: 30 / 5 rounded up


def test_a_forecast_step_with_one_bound_missing_is_left_out_of_the_band(charts):
    rows = rows_of(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"], 2)
    rows[3]["lower"] = None
    drawn = paths(charts.series_chart(rows))
    assert len(drawn["forecast"]) == 3 and len(drawn["band"]) == 4  # the anchor and step 1, up and down


def test_a_linear_loss_axis_is_padded_and_its_ticks_cover_the_losses(charts):
    svg = charts.loss_chart(loss_rows([1.6, 1.3, 1.1, 1.0]))
    (line,) = paths(svg).values()
    top, bottom = charts.TOP, charts.HEIGHT - charts.BOTTOM
    margin = (bottom - top) * 0.05 / 1.1
    assert line[0][1] == pytest.approx(top + margin, abs=0.06) and line[-1][1] == pytest.approx(
        bottom - margin, abs=0.06
    )
    y_ticks = re.findall(r'<text x="64" y="[\d.]+" text-anchor="end" font-size="11">([^<]*)</text>', svg)
    assert y_ticks == ["1", "1.2", "1.4", "1.6"]  # 0.97 .. 1.63 in steps of 0.2


def test_log_ticks_are_every_power_of_ten_within_the_losses_ends_included(charts):
    def y_ticks(train):
        svg = charts.loss_chart(loss_rows(train))
        return re.findall(r'<text x="64" y="[\d.]+" text-anchor="end" font-size="11">([^<]*)</text>', svg)

    assert y_ticks([2.0, 0.5, 0.05]) == ["0.1", "1"]
    assert y_ticks([100.0, 10.0, 1.0]) == ["1", "10", "100"]


@pytest.mark.parametrize("epochs,ticks", [(13, ["0", "2", "4", "6", "8", "10", "12"]), (8, ["0", "2", "4", "6"])])
def test_about_six_epoch_ticks_whole_epochs_only(charts, epochs, ticks):
    svg = charts.loss_chart(loss_rows([1.0 / (e + 1) for e in range(epochs)]))
    assert re.findall(r'text-anchor="middle" font-size="11">([^<]*)</text>', svg) == ticks


def test_the_rows_link_drops_only_the_last_chart_extension(charts):
    body = render(charts, "/tc/a.chart.chart", ["epoch", "train_loss"], [(0, 1.0)], None, "a.chart")["body"]
    assert '<a href="/tc/a.chart">The rows as a table</a>' in body and '<a href="/tc/a.chart.json">json</a>' in body
