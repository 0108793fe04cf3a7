"""Rendering rows for the terminal: an aligned text table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime
from typing import Any, Callable, Sequence

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


def percent(value: float | None, scale: float = 1.0) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value * scale:+.2f}%"


def render(rows: Sequence[dict], columns: Sequence[str], fmt: str = "table",
           formatters: dict[str, Callable[[Any], str]] | None = None) -> str:
    """Rows as text. ``formatters`` (table format only) turn a column's values into display strings;
    such columns are right-aligned like numbers."""
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


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
