"""Rendering rows for the terminal: an aligned text table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from .stamps import as_datetime

FORMATS = ("table", "csv", "json")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fixed(places: int, signed: bool = False) -> Callable[[Any], str]:
    """A formatter: ``places`` decimals of the stored number, as it is (no unit conversion, no % sign)."""
    sign = "+" if signed else ""

    def show(value: Any) -> str:
        return "" if value is None or not math.isfinite(value) else f"{value:{sign}.{places}f}"

    return show


# One convention for ratios, in the tables and on the screen: a column named *_pct is in percent
# (change_pct 1.5 means +1.5 %), every other ratio is a fraction (skill 0.05 means 5 % better than
# the naive forecast; coverage and level 0.8 mean 80 %). Tables show the stored number, in the
# column's unit, exactly as csv and json do.
UNIT_FORMATS: dict[str, Callable[[Any], str]] = {
    "change_pct": fixed(2, signed=True),
    "mape_pct": fixed(2),
    "skill": fixed(3, signed=True),
    "coverage": fixed(3),
    "level": fixed(2),
}


def render(
    rows: Sequence[dict],
    columns: Sequence[str],
    fmt: str = "table",
    formatters: dict[str, Callable[[Any], str]] | None = None,
) -> str:
    """Rows as text. ``formatters`` (table format only) turn a column's values into display strings;
    such columns are right-aligned like numbers. A column that holds times of day (the stamps of an
    hourly series) shows its dates at midnight the same way (``YYYY-MM-DD 00:00``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    rows = _on_the_clock(rows, columns)
    if fmt == "json":
        return json.dumps([{c: _plain(r.get(c)) for c in columns} for r in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else _plain(r.get(c)) for c in columns])
        return out.getvalue().rstrip("\n")
    formatters = formatters or {}
    cells = [[formatters[c](r.get(c)) if c in formatters else _cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [bool(rows) and (c in formatters or all(_is_number(r.get(c)) for r in rows)) for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(row) for row in cells])


def _on_the_clock(rows: Sequence[dict], columns: Sequence[str]) -> Sequence[dict]:
    """``rows`` with the dates of the columns that also hold datetimes as datetimes (at midnight)."""
    clock = [c for c in columns if any(isinstance(r.get(c), datetime) for r in rows)]
    if not clock:
        return rows
    timed = [c for c in clock if any(type(r.get(c)) is date for r in rows)]
    return [{**r, **{c: as_datetime(r[c]) for c in timed if type(r.get(c)) is date}} for r in rows] if timed else rows


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
