"""When an observation was made, or a forecast is for: a date, or a time within a day.

A series keeps one value per date (trading days, days, weeks, months ...) or per hour (hourly data).
Both live in the same columns (``observations.ts``, ``forecasts.origin_ts`` and ``target_ts``,
``fits.train_start`` and ``train_end``), one spelling per value on each backend:

- in Python, a stamp is *canonical*: a ``date`` when it falls on midnight, a naive ``datetime``
  (UTC) otherwise. Two stamps of the same instant are then always equal, whichever backend they
  came from. An hourly series' midnight is a ``date`` too: code that orders or subtracts the stamps
  of an hourly series converts them first (``as_datetime``, or ``pd.Timestamp``: Python refuses to
  compare a date with a datetime);
- in SQLite, ISO text: ``YYYY-MM-DD`` at midnight (what every daily series stored before stamps
  could hold hours: nothing to migrate, and SQL on daily series reads as before),
  ``YYYY-MM-DD HH:MM:SS`` otherwise. Text in this form sorts in time order;
- in PostgreSQL, ``timestamp without time zone`` (migration 0007; ``date`` before).
"""

from __future__ import annotations

from datetime import date, datetime, time

import sqlalchemy as sa


def canonical(value: date | datetime | str) -> date:
    """``value`` as a date when it is midnight, else as a naive datetime; ISO text is parsed."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"a stamp is naive UTC, got {value.isoformat()}")
        value = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value  # a pandas Timestamp
        return value.date() if value.time() == time() else value
    return value


def as_datetime(value: date) -> datetime:
    """A stamp as a datetime (a date at its midnight): stamps of an hourly series, dates and
    datetimes, compared, ordered or subtracted."""
    return value if isinstance(value, datetime) else datetime.combine(value, time())


def stamp_text(value: date) -> str:
    """The ISO text a stamp is stored as in SQLite (and shown as everywhere)."""
    value = canonical(value)
    return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()


class StampType(sa.types.TypeDecorator):
    """The columns that hold stamps: ``DATE`` text in SQLite, ``TIMESTAMP`` in PostgreSQL; values
    bound and read back canonical (see the module's docstring)."""

    impl = sa.Date
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(sa.Date() if dialect.name == "sqlite" else sa.DateTime())

    def bind_processor(self, dialect):
        if dialect.name == "sqlite":
            return lambda value: None if value is None else stamp_text(value)

        def to_timestamp(value):
            if value is None:
                return None
            return as_datetime(canonical(value))

        return to_timestamp

    def result_processor(self, dialect, coltype):
        return lambda value: None if value is None else canonical(value)
