"""tickcast's Datasette plugin (loaded by ``tickcast browse`` with ``--plugins-dir``): charts drawn
on the server as inline SVG (no JavaScript, nothing fetched from elsewhere), and a readable ``fits``
table.

- The ``chart`` output renderer: a query whose columns are those of the canned query
  ``series_forecast`` (``ts, actual, forecast, lower, upper``) is drawn as the series' recent history
  with its newest forecast and interval band; one with ``epoch`` and ``train_loss`` (``loss_curve``)
  as the training and validation loss by epoch. Datasette links it beside json and csv ("This data
  as ... chart"): ``/<database>/loss_curve.chart?key=sample:sp500``; also under the
  ``loss_history`` table filtered to one fit (``/<database>/loss_history.chart?fit_id=1``).
- ``fits.hyperparams`` (a long JSON object) shows as a one-line summary that opens to the whole.

Self-contained: Datasette loads this file by path, so it imports nothing of tickcast."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Sequence

from datasette import hookimpl
from markupsafe import Markup

WIDTH, HEIGHT = 760, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 44
COLORS = {"actual": "#1f4e79", "forecast": "#c0392b", "band": "#f1948a", "train": "#1f4e79", "val": "#d35400"}

SERIES_COLUMNS = {"ts", "actual", "forecast", "lower", "upper"}
LOSS_COLUMNS = {"epoch", "train_loss"}


def chart_kind(columns: Sequence[str]) -> str | None:
    names = set(columns)
    if SERIES_COLUMNS <= names:
        return "series"
    if LOSS_COLUMNS <= names:
        return "loss"
    return None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


class Scale:
    """Linear (or base-10 logarithmic) map from data to pixels."""

    def __init__(self, low: float, high: float, start: float, end: float, log: bool = False):
        self.log = log
        if log:
            low, high = math.log10(low), math.log10(high)
        if high <= low:
            pad = abs(low) * 0.05 or 1.0
            low, high = low - pad, high + pad
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.start + (v - self.low) / (self.high - self.low) * (self.end - self.start)


def path_d(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def to_day(text) -> float | None:
    """A stamp (``YYYY-MM-DD``, or with a time of day for an hourly series) as days since year 1."""
    text = str(text).strip()
    try:
        stamp = dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        try:
            stamp = dt.datetime.fromisoformat(text[:10])
        except ValueError:
            return None
    return stamp.toordinal() + (stamp - dt.datetime.combine(stamp.date(), dt.time())).total_seconds() / 86400


def day_label(day: float, span: float) -> str:
    """A tick's label: its date, and its time too when the chart spans less than three days (an
    hourly series' recent past)."""
    stamp = dt.datetime.fromordinal(int(day)) + dt.timedelta(days=day - int(day))
    return stamp.strftime("%Y-%m-%d %H:%M" if span < 3 else "%Y-%m-%d")


def axes(x: Scale, y: Scale, x_ticks: list[tuple[float, str]], y_ticks: list[float], x_label: str, y_label: str):
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#444"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#444"/>',
    ]
    for value, label in x_ticks:
        px = x(value)
        parts.append(
            f'<line x1="{px:.1f}" y1="{HEIGHT - BOTTOM}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM + 4}" stroke="#444"/>'
        )
        parts.append(
            f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11">'
            f"{html.escape(label)}</text>"
        )
    for value in y_ticks:
        py = y(value)
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11">{value:,.6g}</text>')
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="12">'
        f"{html.escape(x_label)}</text>"
    )
    parts.append(
        f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2:.0f})">{html.escape(y_label)}</text>'
    )
    return parts


def legend(entries: list[tuple[str, str, bool]]) -> list[str]:
    """(label, colour, filled) in the top right corner."""
    parts = []
    x = WIDTH - RIGHT - 150
    for i, (label, color, filled) in enumerate(entries):
        y = TOP + 8 + 16 * i
        if filled:
            parts.append(f'<rect x="{x}" y="{y - 5}" width="18" height="10" fill="{color}" fill-opacity="0.35"/>')
        else:
            parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{x + 24}" y="{y + 4}" font-size="11">{html.escape(label)}</text>')
    return parts


def svg(title: str, parts: list[str]) -> str:
    return (
        f'<svg class="tickcast-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(title)}" '
        f'style="max-width: 100%; height: auto; background: #fff">'
        f"<title>{html.escape(title)}</title>" + "".join(parts) + "</svg>"
    )


def number(value) -> float | None:
    if value is None or isinstance(value, (bytes, str)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def series_chart(rows: list[dict]) -> str | None:
    """History (actual), the forecast from the last actual value, and its interval band."""
    history = [(d, v) for r in rows if (d := to_day(r["ts"])) is not None and (v := number(r["actual"])) is not None]
    ahead = [
        (d, f, number(r["lower"]), number(r["upper"]))
        for r in rows
        if (d := to_day(r["ts"])) is not None and (f := number(r["forecast"])) is not None
    ]
    if not history and not ahead:
        return None
    band_points = [(d, lo, hi) for d, _, lo, hi in ahead if lo is not None and hi is not None]
    if history and ahead:  # the forecast and its band start from the last observation
        last = max(history)
        ahead = [(last[0], last[1], last[1], last[1]), *ahead]
        band_points = [(last[0], last[1], last[1]), *band_points]
    days = [d for d, _ in history] + [d for d, *_ in ahead]
    values = [v for _, v in history] + [v for _, f, lo, hi in ahead for v in (f, lo, hi) if v is not None]
    x = Scale(min(days), max(days), LEFT, WIDTH - RIGHT)
    y_low, y_high = min(values), max(values)
    pad = (y_high - y_low) * 0.05
    y = Scale(y_low - pad, y_high + pad, HEIGHT - BOTTOM, TOP)
    x_ticks = [(d, day_label(d, max(days) - min(days))) for d in nice_ticks(min(days), max(days), 5)]
    parts = axes(x, y, x_ticks, nice_ticks(y_low - pad, y_high + pad), "date", "value")
    if band_points:
        outline = [(x(d), y(hi)) for d, _, hi in band_points] + [(x(d), y(lo)) for d, lo, _ in reversed(band_points)]
        parts.append(
            f'<path class="band" d="{path_d(outline)} Z" fill="{COLORS["band"]}" fill-opacity="0.35" stroke="none"/>'
        )
    if history:
        parts.append(
            f'<path class="actual" d="{path_d([(x(d), y(v)) for d, v in history])}" fill="none" '
            f'stroke="{COLORS["actual"]}" stroke-width="1.5"/>'
        )
    if ahead:
        parts.append(
            f'<path class="forecast" d="{path_d([(x(d), y(f)) for d, f, *_ in ahead])}" fill="none" '
            f'stroke="{COLORS["forecast"]}" stroke-width="2"/>'
        )
    level = next((v for r in rows if (v := number(r.get("level"))) is not None), None)
    band_label = "interval" if level is None else f"{level:.0%} interval"
    parts += legend(
        [
            ("history", COLORS["actual"], False),
            ("forecast", COLORS["forecast"], False),
            (band_label, COLORS["band"], True),
        ]
    )
    return svg("history and forecast", parts)


def loss_chart(rows: list[dict]) -> str | None:
    """Training and validation loss by epoch; a log scale when the losses span a factor of 20."""
    lines = {}
    for column, label in (("train_loss", "train"), ("val_loss", "val")):
        points = [
            (e, v)
            for r in rows
            if column in r and (e := number(r["epoch"])) is not None and (v := number(r[column])) is not None
        ]
        if points:
            lines[label] = points
    if not lines:
        return None
    epochs = [e for points in lines.values() for e, _ in points]
    values = [v for points in lines.values() for _, v in points]
    log = min(values) > 0 and max(values) / min(values) > 20
    x = Scale(min(epochs), max(epochs), LEFT, WIDTH - RIGHT)
    if log:
        y = Scale(min(values), max(values), HEIGHT - BOTTOM, TOP, log=True)
        low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
        y_ticks = [10.0**k for k in range(low, high + 1) if min(values) <= 10.0**k <= max(values)]
    else:
        pad = (max(values) - min(values)) * 0.05
        y = Scale(min(values) - pad, max(values) + pad, HEIGHT - BOTTOM, TOP)
        y_ticks = nice_ticks(min(values) - pad, max(values) + pad)
    x_ticks = [(e, f"{e:g}") for e in nice_ticks(min(epochs), max(epochs), 6) if float(e).is_integer()]
    parts = axes(x, y, x_ticks, y_ticks, "epoch", "loss" + (" (log scale)" if log else ""))
    names = {"train": "training loss", "val": "validation loss"}
    for label, points in lines.items():
        parts.append(
            f'<path class="{label}-loss" d="{path_d([(x(e), y(v)) for e, v in points])}" fill="none" '
            f'stroke="{COLORS[label]}" stroke-width="2"/>'
        )
    parts += legend([(names[label], COLORS[label], False) for label in lines])
    return svg("loss by epoch", parts)


PAGE = """{% extends "base.html" %}
{% block title %}{{ heading }}{% endblock %}
{% block extra_head %}<style>.tickcast-chart text { font-family: sans-serif; fill: #222; }</style>{% endblock %}
{% block content %}
<h1>{{ heading }}</h1>
{% if subtitle %}<p>{{ subtitle }}</p>{% endif %}
{% if chart %}{{ chart }}{% else %}<p class="message-warning">Nothing to draw: the query returned no rows{%
  if params %} for {{ params }}{% endif %}. Choose a series on <a href="{{ table_url }}">the query's page</a>.</p>{%
  endif %}
<p><a href="{{ table_url }}">The rows as a table</a> &middot; <a href="{{ json_url }}">json</a></p>
{% endblock %}"""


def can_render_chart(columns, table, request):
    """Queries with a chart's columns; of the tables, loss_history filtered to one fit (fit_id=)."""
    kind = chart_kind(columns or [])
    if kind is None or table is None:
        return kind is not None
    return table == "loss_history" and request is not None and "fit_id" in request.args


async def render_chart(datasette, columns, rows, request, database, query_name, table):
    kind = chart_kind(columns)
    records = [dict(zip(columns, row)) for row in rows]
    chart = (series_chart if kind == "series" else loss_chart)(records) if kind else None
    base = request.path.rsplit(".chart", 1)[0]
    query = request.query_string
    params = ", ".join(f"{k} = {v}" for k in request.args if not k.startswith("_") for v in request.args.getlist(k))
    what = query_name or table or "query"
    heading = {"series": "History and forecast", "loss": "Loss by epoch"}.get(kind or "", "Chart")
    context = {
        "heading": f"{heading}: {params}" if params else heading,
        "subtitle": f"Drawn from {what}" + (f" ({len(records)} rows)" if records else ""),
        "chart": Markup(chart) if chart else None,
        "params": params,
        "table_url": base + (f"?{query}" if query else ""),
        "json_url": base + ".json" + (f"?{query}" if query else ""),
        "database": database,
    }
    body = await datasette.render_template(datasette.jinja_env.from_string(PAGE), context, request=request)
    return {"body": body, "content_type": "text/html; charset=utf-8"}


@hookimpl
def register_output_renderer(datasette):
    return {"extension": "chart", "render": render_chart, "can_render": can_render_chart}


@hookimpl
def render_cell(value, column, table):
    """``fits.hyperparams``: its first settings on one line, the whole object on a click."""
    if table != "fits" or column != "hyperparams" or not isinstance(value, str) or len(value) <= 60:
        return None
    try:
        settings = json.loads(value)
    except ValueError:
        return None
    if not isinstance(settings, dict):
        return None
    summary = ", ".join(f"{k}={v}" for k, v in list(settings.items())[:2])
    return Markup(
        f"<details><summary>{html.escape(summary)}, &hellip;</summary>"
        f'<pre style="white-space: pre-wrap">{html.escape(json.dumps(settings, indent=1))}</pre></details>'
    )
