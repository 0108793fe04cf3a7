"""Ingestion: fetch only what is new, validate, upsert; one transaction per series.

Per series: read the last stored date, fetch from ``overlap_days`` before it (to catch revisions),
drop what is not data (missing values, text that is not a number, inf, values beyond the accepted
range, non-positive prices, dates in the future), note outliers (kept), collapse duplicate dates,
and write only rows that are new or changed. A fetch whose new rows were all refused as bad data
failed. A failing source is recorded on its ``series`` row and never stops the other series.
Stored observations are deleted only when the whole history is replaced, in the same transaction
that stores the new one: when the source re-based it (a split, a dividend) or on
``tickcast ingest --full`` (see ``rebase.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import faults, schema
from .clock import utcnow
from .config import SeriesSpec, Settings
from .db import write_transaction
from .errors import SourceError, TickcastError, UnknownSeries
from .rebase import (
    Replacement,
    as_series,
    compare_histories,
    confirm_rebase,
    describe_replacement,
    detect_rebase,
    replace_history,
    stored_values,
)
from .sources import SOURCES, Source, make_source
from .status import FetchStatus
from .validate import OUTLIER_WINDOW, every_new_row_rejected, infer_frequency, outlier_note, validate_observations


@dataclass
class IngestResult:
    key: str
    status: FetchStatus
    new_rows: int = 0
    revised_rows: int = 0
    total_rows: int = 0
    last_ts: date | None = None
    error: str | None = None
    note: str | None = None
    seconds: float = 0.0
    replaced: bool = False  # the stored history was replaced (re-based at the source, or --full)


# --- series rows --------------------------------------------------------------------------------


def sync_series(engine: Engine, settings: Settings) -> dict[str, int]:
    """Make the ``series`` table match the config: add new series, refresh their attributes, and
    mark series no longer configured inactive (their data stays). Returns key -> id."""
    now = utcnow()
    configured = settings.series_by_key()
    with write_transaction(engine) as conn:
        existing = {row.key: row for row in conn.execute(sa.select(schema.series))}
        for key, spec in configured.items():
            values = dict(
                source=spec.source,
                symbol=spec.symbol,
                field=spec.field,
                name=spec.name,
                is_price=bool(spec.price),
                active=spec.active,
            )
            row = existing.get(key)
            if spec.frequency is not None:
                values["frequency"] = spec.frequency
            if spec.calendar is not None or row is None or row.calendar is None:
                values["calendar"] = series_calendar(spec)  # until a fetch reports the exchange's
            if row is None:
                conn.execute(sa.insert(schema.series).values(key=key, created_at=now, **values))
            elif any(getattr(row, k) != v for k, v in values.items()):
                conn.execute(sa.update(schema.series).where(schema.series.c.id == row.id).values(**values))
        for key, row in existing.items():
            if key not in configured and row.active:
                conn.execute(sa.update(schema.series).where(schema.series.c.id == row.id).values(active=False))
        return {row.key: row.id for row in conn.execute(sa.select(schema.series.c.key, schema.series.c.id))}


def series_calendar(spec: SeriesSpec, reported: str | None = None) -> str | None:
    """The calendar of a series' target dates: the config's, else the one its source reported on the
    last fetch (Yahoo: the ticker's exchange), else its source's default."""
    return spec.calendar or reported or SOURCES[spec.source].calendar(spec.symbol)


def select_specs(settings: Settings, keys: Sequence[str] | None) -> list[SeriesSpec]:
    """The active configured series, or exactly ``keys`` (each must be configured)."""
    from .keys import parse_key

    configured = settings.series_by_key()
    if not keys:
        return [s for s in configured.values() if s.active]
    chosen = []
    for raw in keys:
        source, symbol = parse_key(raw)
        key = f"{source}:{symbol}"
        if key not in configured:
            raise UnknownSeries(
                f"unknown series {raw!r}: not in the watchlist of {settings.config_path} "
                f"(configured: {', '.join(configured) or 'none'})"
            )
        if key not in [s.key for s in chosen]:
            chosen.append(configured[key])
    return chosen


# --- storage ------------------------------------------------------------------------------------


def last_stored_date(conn: Connection, series_id: int) -> date | None:
    return conn.execute(
        sa.select(sa.func.max(schema.observations.c.ts)).where(schema.observations.c.series_id == series_id)
    ).scalar()


def count_rows(conn: Connection, series_id: int) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(schema.observations).where(schema.observations.c.series_id == series_id)
    ).scalar_one()


def stored_before(conn: Connection, series_id: int, clean: pd.DataFrame) -> np.ndarray:
    """The stored values just before the first date of ``clean``, oldest first: the outlier rule's
    neighbours for the first new values."""
    if clean.empty:
        return np.empty(0)
    obs = schema.observations.c
    rows = (
        conn.execute(
            sa.select(obs.value)
            .where(obs.series_id == series_id, obs.ts < clean["ts"].iloc[0].date())
            .order_by(obs.ts.desc())
            .limit(OUTLIER_WINDOW // 2)
        )
        .scalars()
        .all()
    )
    return np.array(rows[::-1], dtype=np.float64)


def upsert_observations(conn: Connection, series_id: int, frame: pd.DataFrame) -> tuple[int, int]:
    """Write the rows of ``frame`` (``ts``, ``value``) that are new or whose value changed;
    returns (new, revised).

    Existing values in the fetched span are read first, so an unchanged re-fetch writes nothing.
    Rows go straight to the driver's executemany as ISO dates (no per-row ORM work): this is the
    hot path of a first ingest."""
    if frame.empty:
        return 0, 0
    days = frame["ts"].to_numpy().astype("datetime64[D]")
    iso = days.astype(str).tolist()  # numpy formats datetime64[D] as YYYY-MM-DD, in C
    values = frame["value"].tolist()
    stored = {
        ts.isoformat(): v
        for ts, v in conn.execute(
            sa.select(schema.observations.c.ts, schema.observations.c.value).where(
                schema.observations.c.series_id == series_id, schema.observations.c.ts >= days.min().item()
            )
        )
    }
    if stored:
        changed = [
            (series_id, d, v)
            for d, v in zip(iso, values)
            if d not in stored or not math.isclose(stored[d], v, rel_tol=1e-12, abs_tol=0.0)
        ]
        revised = sum(1 for _, d, _ in changed if d in stored)
    else:
        changed, revised = list(zip([series_id] * len(iso), iso, values)), 0
    if changed:
        # SQLite stores the ISO text as is (a CAST there would turn it into a number).
        marks = "?, ?, ?" if conn.dialect.name == "sqlite" else "%s, CAST(%s AS DATE), %s"
        conn.exec_driver_sql(
            f"INSERT INTO observations (series_id, ts, value) VALUES ({marks}) "
            "ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value",
            changed,
        )
    return len(changed) - revised, revised


def _record_failure(engine: Engine, series_id: int, error: str, now: datetime) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(schema.series).where(schema.series.c.id == series_id).values(last_fetch_at=now, last_error=error)
        )


def refetch_start(last: date, overlap_days: int) -> pd.Timestamp | None:
    """``overlap_days`` before the last stored date; None (all history) when that precedes year 1."""
    try:
        return pd.Timestamp(last - timedelta(days=overlap_days))
    except OverflowError:
        return None


def ingest_series(
    engine: Engine, spec: SeriesSpec, series_id: int, source: Source, settings: Settings, full: bool = False
) -> IngestResult:
    """Fetch, validate and store one series. Never raises for source or data problems. ``full``:
    fetch the whole history and replace the stored one (``tickcast ingest --full``)."""
    started = time.perf_counter()
    now = utcnow()
    with engine.connect() as conn:
        last = last_stored_date(conn, series_id)
    since = None if last is None or full else refetch_start(last, settings.sources.overlap_days)
    if since is None and settings.sources.history_start:
        since = pd.Timestamp(settings.sources.history_start)
    try:
        faults.reached("fetch")
        fetched = source.fetch(spec, since)
        clean, notes = validate_observations(fetched, spec, now.date())
        if clean.empty and (last is None or full):
            raise SourceError(f"{spec.key}: no valid observations" + (f" ({'; '.join(notes)})" if notes else ""))
        if every_new_row_rejected(fetched, clean, spec, last):
            raise SourceError(f"{spec.key}: every new row was rejected ({'; '.join(notes)}); nothing stored")
        replacement = (
            None
            if last is None
            else _replacement(engine, spec, series_id, source, settings, clean, notes, last, full, now)
        )
    except SourceError as exc:
        _record_failure(engine, series_id, str(exc), now)
        with engine.connect() as conn:
            total = count_rows(conn, series_id)
        return IngestResult(
            spec.key,
            FetchStatus.FAILED,
            total_rows=total,
            last_ts=last,
            error=str(exc),
            seconds=time.perf_counter() - started,
        )
    reported = fetched.attrs.get("calendar")
    if replacement is not None:
        return _store_replacement(engine, spec, series_id, replacement, full, reported, now, started)
    with engine.connect() as conn:
        outliers = outlier_note(stored_before(conn, series_id, clean), clean, last)
    note = "; ".join(notes + ([outliers] if outliers else [])) or None
    with write_transaction(engine) as conn:
        new, revised = upsert_observations(conn, series_id, clean)
        faults.reached("ingest-write")
        total, last_ts = _record_success(conn, spec, series_id, note, reported, now, changed=bool(new or revised))
    return IngestResult(
        spec.key, FetchStatus.OK, new, revised, total, last_ts, note=note, seconds=time.perf_counter() - started
    )


def _record_success(
    conn: Connection,
    spec: SeriesSpec,
    series_id: int,
    note: str | None,
    reported_calendar: str | None,
    now: datetime,
    changed: bool,
) -> tuple[int, date | None]:
    """The series row after a successful fetch; returns (stored rows, last stored date)."""
    values = dict(
        last_fetch_at=now,
        last_success_at=now,
        last_error=None,
        last_note=note,
        calendar=series_calendar(spec, reported=reported_calendar),
    )
    if spec.frequency is None and changed:
        recent = (
            conn.execute(
                sa.select(schema.observations.c.ts)
                .where(schema.observations.c.series_id == series_id)
                .order_by(schema.observations.c.ts.desc())
                .limit(120)
            )
            .scalars()
            .all()
        )
        values["frequency"] = infer_frequency(sorted(recent))
    conn.execute(sa.update(schema.series).where(schema.series.c.id == series_id).values(**values))
    return count_rows(conn, series_id), last_stored_date(conn, series_id)


# --- re-based histories (service/rebase.py) -----------------------------------------------------


def _replacement(
    engine: Engine,
    spec: SeriesSpec,
    series_id: int,
    source: Source,
    settings: Settings,
    clean: pd.DataFrame,
    notes: list[str],
    last: date,
    full: bool,
    now: datetime,
) -> Replacement | None:
    """The full history to store in place of the stored one: always with ``full`` (``clean`` is
    then the full history), else when the overlap shows a re-basing that the full history confirms.
    None: store ``clean`` as usual. Raises SourceError when the full history cannot be fetched."""
    window = refetch_start(last, settings.sources.overlap_days)
    with engine.connect() as conn:
        stored = stored_values(conn, series_id, None if full or window is None else window.date())
    fetched = as_series(clean)
    recent = (lambda s: s) if window is None else (lambda s: s[s.index >= window.date()])
    suspect = detect_rebase(recent(stored), recent(fetched))
    if suspect is None and not full:
        return None
    if not full:
        history_start = pd.Timestamp(settings.sources.history_start) if settings.sources.history_start else None
        clean, notes = validate_observations(source.fetch(spec, history_start), spec, now.date())
        if clean.empty:
            raise SourceError(
                f"{spec.key}: the history looks re-based but the full history has no valid "
                "observations; the stored history is kept"
            )
        fetched = as_series(clean)
        with engine.connect() as conn:
            stored = stored_values(conn, series_id)
    rebase = None if suspect is None else confirm_rebase(stored, fetched, suspect)
    if rebase is None and not full:
        return None  # a few values revised alike, not a re-basing: the overlap is stored as usual
    new, revised, removed = compare_histories(stored, fetched)
    return Replacement(clean, rebase, new, revised, removed, notes)


def _store_replacement(
    engine: Engine,
    spec: SeriesSpec,
    series_id: int,
    replacement: Replacement,
    full: bool,
    reported_calendar: str | None,
    now: datetime,
    started: float,
) -> IngestResult:
    with write_transaction(engine) as conn:
        if replacement.changed:
            rescaled = replace_history(conn, series_id, replacement, now)
            note = describe_replacement(replacement, rescaled, full)
        else:
            note = "history re-fetched in full: unchanged"
        faults.reached("ingest-write")
        note = "; ".join([note, *replacement.notes])
        total, last_ts = _record_success(conn, spec, series_id, note, reported_calendar, now, replacement.changed)
    return IngestResult(
        spec.key,
        FetchStatus.OK,
        replacement.new,
        replacement.revised,
        total,
        last_ts,
        note=note,
        seconds=time.perf_counter() - started,
        replaced=replacement.changed,
    )


def _failed(engine: Engine, series_id: int, key: str, error: str) -> IngestResult:
    _record_failure(engine, series_id, error, utcnow())
    return IngestResult(key, FetchStatus.FAILED, error=error)


def ingest_each(
    engine: Engine,
    settings: Settings,
    specs: Sequence[SeriesSpec],
    ids: Mapping[str, int],
    sources: dict[str, Source] | None = None,
    stop=None,
    full: bool = False,
) -> Iterator[IngestResult]:
    """Ingest stage: fetch and store ``specs`` (rows of the ``series`` table by key: ``ids``) one
    after another, yielding each result. ``stop`` (an Event) ends it between series; ``sources``
    replaces the source of a kind (benchmarks); ``full`` replaces each stored history."""
    sources = dict(sources or {})
    for spec in specs:
        if stop is not None and stop.is_set():
            return
        try:
            source = sources.get(spec.source) or sources.setdefault(spec.source, make_source(spec.source, settings))
            result = ingest_series(engine, spec, ids[spec.key], source, settings, full=full)
        except TickcastError as exc:  # e.g. the yfinance cache directory cannot be created
            result = _failed(engine, ids[spec.key], spec.key, str(exc))
        except MemoryError:  # what it held is freed as the exception unwinds: the next series can go on
            result = _failed(
                engine,
                ids[spec.key],
                spec.key,
                f"{spec.key}: out of memory while fetching, checking "
                "or storing it (a source too large for the memory available); nothing stored",
            )
        yield result


def ingest(
    engine: Engine,
    settings: Settings,
    keys: Sequence[str] | None = None,
    progress: Callable[[int, int, IngestResult], None] | None = None,
    sources: dict[str, Source] | None = None,
    stop=None,
    full: bool = False,
) -> list[IngestResult]:
    """``tickcast ingest``: the chosen series (all active ones by default), after bringing the
    ``series`` table in line with the config. ``full``: re-fetch each history and replace it."""
    specs = select_specs(settings, keys)
    ids = sync_series(engine, settings)
    results = []
    for i, result in enumerate(ingest_each(engine, settings, specs, ids, sources=sources, stop=stop, full=full), 1):
        results.append(result)
        if progress:
            progress(i, len(specs), result)
    return results
