"""Ingestion: fetch only what is new, validate, upsert; one transaction per series.

Per series: read the last stored date, fetch from ``overlap_days`` before it (to catch revisions),
drop what is not data (missing values, text that is not a number, inf, values beyond the accepted
range, non-positive prices, dates in the future), note outliers (kept), collapse duplicate dates,
and write only rows that are new or changed. A fetch whose new rows were all refused as bad data
failed. A failing source is recorded on its ``series`` row and never stops the other series.
Stored observations are replaced only with a whole history, in the same transaction that stores it:
when the source re-based it (a split, a dividend: dates it no longer sends are kept, rescaled) or on
``tickcast ingest --full``, the only way rows are ever deleted (see ``rebase.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import faults, schema
from ..clock import utcnow
from ..db import write_transaction
from ..errors import MESSAGE_LIMIT, SourceError, TickcastError, UnknownSeries, cut
from ..frequencies import RECENT, hourly_spacing, infer_frequency
from ..keys import parse_key
from ..settings import SeriesSpec, Settings, SourceSettings
from ..sources import SOURCES, Source, make_source
from ..status import FetchStatus
from .observations import (
    count_rows,
    last_stored_date,
    newest_stamps,
    stored_before,
    stored_values,
    upsert_observations,
)
from .rebase import (
    Replacement,
    as_series,
    compare_histories,
    confirm_rebase,
    describe_replacement,
    detect_rebase,
    keep_unsent,
    replace_history,
)
from .validate import at_grain, every_new_row_rejected, outlier_note, validate_observations


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


def sync_series(engine: Engine, watchlist: Sequence[SeriesSpec]) -> dict[str, int]:
    """Make the ``series`` table match the config's ``watchlist``: add new series, refresh their
    attributes, and mark series no longer configured inactive (their data stays). Returns key -> id."""
    now = utcnow()
    configured = {spec.key: spec for spec in watchlist}
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


def select_specs(watchlist: Sequence[SeriesSpec], keys: Sequence[str] | None, config_path: str) -> list[SeriesSpec]:
    """The active series of the ``watchlist``, or exactly ``keys`` (each must be in it; else an
    error naming the config file ``config_path``)."""
    configured = {spec.key: spec for spec in watchlist}
    if not keys:
        return [s for s in configured.values() if s.active]
    chosen: list[SeriesSpec] = []
    for raw in keys:
        source, symbol = parse_key(raw)
        key = f"{source}:{symbol}"
        if key not in configured:
            raise UnknownSeries(
                f"unknown series {raw!r}: not in the watchlist of {config_path} "
                f"(configured: {', '.join(configured) or 'none'})"
            )
        if key not in [s.key for s in chosen]:
            chosen.append(configured[key])
    return chosen


# --- one series ---------------------------------------------------------------------------------


def _record_failure(engine: Engine, series_id: int, error: str, now: datetime) -> None:
    error = cut(error, MESSAGE_LIMIT)  # what a source said may quote its input: never a 10 MB line
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(schema.series).where(schema.series.c.id == series_id).values(last_fetch_at=now, last_error=error)
        )


def hourly_grain(frequency: str | None, stored: Sequence[date], fetched: pd.DataFrame, full: bool = False) -> bool:
    """Whether a series keeps one value per hour: its configured frequency says so, else its stamps
    are an hour apart or less (as ``infer_frequency`` has it): the ``stored`` ones (the newest
    three, any order), or the most recent ``fetched`` when fewer are stored or the history is
    re-fetched in full (``full``)."""
    if frequency is not None:
        return frequency == "H"
    if full or len(stored) < 3:
        stamps = fetched["ts"].to_numpy()[-RECENT:]  # in time order (sources sort them)
        return hourly_spacing(np.diff(stamps[~np.isnat(stamps)]))
    return infer_frequency(stored) == "H"


def refetch_start(last: date, overlap_days: int) -> pd.Timestamp | None:
    """``overlap_days`` before the last stored date; None (all history) when that precedes year 1."""
    try:
        return pd.Timestamp(last - timedelta(days=overlap_days))
    except OverflowError:
        return None


@dataclass(frozen=True)
class SeriesFetch:
    """Fetching one series: where it is stored (``series_id``), its source, how to fetch
    (``[sources]``) and whether the whole history is replaced (``full``, `tickcast ingest --full`)."""

    engine: Engine
    spec: SeriesSpec
    series_id: int
    source: Source
    fetching: SourceSettings
    full: bool = False

    def run(self) -> IngestResult:
        """Fetch, validate and store. Never raises for source or data problems."""
        spec, started, now = self.spec, time.perf_counter(), utcnow()
        with self.engine.connect() as conn:
            newest = newest_stamps(conn, self.series_id, 3)
        last = newest[0] if newest else None
        since = None if last is None or self.full else refetch_start(last, self.fetching.overlap_days)
        if since is None and self.fetching.history_start:
            since = pd.Timestamp(self.fetching.history_start)
        try:
            faults.reached("fetch")
            raw = self.source.fetch(spec, since)
            hourly = hourly_grain(spec.frequency, newest, raw, self.full)
            fetched = at_grain(raw, hourly)
            clean, notes = validate_observations(fetched, spec, now.date(), hourly)
            if clean.empty and (last is None or self.full):
                raise SourceError(f"{spec.key}: no valid observations" + (f" ({'; '.join(notes)})" if notes else ""))
            if every_new_row_rejected(fetched, clean, spec, last):
                raise SourceError(f"{spec.key}: every new row was rejected ({'; '.join(notes)}); nothing stored")
            replacement = None if last is None else self._replacement(clean, notes, last, now, hourly)
        except SourceError as exc:
            error = cut(str(exc), MESSAGE_LIMIT)
            _record_failure(self.engine, self.series_id, error, now)
            with self.engine.connect() as conn:
                total = count_rows(conn, self.series_id)
            seconds = time.perf_counter() - started
            return IngestResult(spec.key, FetchStatus.FAILED, total_rows=total, last_ts=last, error=error,
                                seconds=seconds)  # fmt: skip
        reported = fetched.attrs.get("calendar")
        if replacement is not None:
            return self._store_replacement(replacement, reported, now, started)
        with self.engine.connect() as conn:
            outliers = outlier_note(stored_before(conn, self.series_id, clean), clean, last)
        note = "; ".join(notes + ([outliers] if outliers else [])) or None
        with write_transaction(self.engine) as conn:
            new, revised = upsert_observations(conn, self.series_id, clean)
            faults.reached("ingest-write")
            total, last_ts = self._record_success(conn, note, reported, now, changed=bool(new or revised))
        seconds = time.perf_counter() - started
        return IngestResult(spec.key, FetchStatus.OK, new, revised, total, last_ts, note=note, seconds=seconds)

    def _record_success(
        self, conn: Connection, note: str | None, reported_calendar: str | None, now: datetime, changed: bool
    ) -> tuple[int, date | None]:
        """The series row after a successful fetch; returns (stored rows, last stored date)."""
        values = dict(
            last_fetch_at=now,
            last_success_at=now,
            last_error=None,
            last_note=None if note is None else cut(note, MESSAGE_LIMIT),
            calendar=series_calendar(self.spec, reported=reported_calendar),
        )
        if self.spec.frequency is None and changed:
            obs = schema.observations.c
            raw_ts = sa.type_coerce(obs.ts, sa.types.NullType())  # as stored: infer_frequency parses them at once
            recent: list[Any] = list(
                conn.execute(
                    sa.select(raw_ts).where(obs.series_id == self.series_id).order_by(obs.ts.desc()).limit(RECENT)
                ).scalars()
            )
            values["frequency"] = infer_frequency(recent)
        conn.execute(sa.update(schema.series).where(schema.series.c.id == self.series_id).values(**values))
        return count_rows(conn, self.series_id), last_stored_date(conn, self.series_id)

    # --- re-based histories (run/rebase.py) --------------------------------------------------------

    def _replacement(
        self, clean: pd.DataFrame, notes: list[str], last: date, now: datetime, hourly: bool
    ) -> Replacement | None:
        """The full history to store in place of the stored one: always with ``full`` (``clean`` is
        then the full history), else when the overlap shows a re-basing that the full history
        confirms. None: store ``clean`` as usual. Raises SourceError when the full history cannot be
        fetched."""
        spec, full = self.spec, self.full
        window = refetch_start(last, self.fetching.overlap_days)
        with self.engine.connect() as conn:
            stored = stored_values(conn, self.series_id, None if full or window is None else window)
        fetched = as_series(clean)
        recent = (lambda s: s) if window is None else (lambda s: s[s.index >= window])
        suspect = detect_rebase(recent(stored), recent(fetched))
        if suspect is None and not full:
            return None
        if not full:
            start = self.fetching.history_start
            clean, notes = validate_observations(
                at_grain(self.source.fetch(spec, pd.Timestamp(start) if start else None), hourly),
                spec,
                now.date(),
                hourly,
            )
            if clean.empty:
                raise SourceError(
                    f"{spec.key}: the history looks re-based but the full history has no valid "
                    "observations; the stored history is kept"
                )
            fetched = as_series(clean)
            with self.engine.connect() as conn:
                stored = stored_values(conn, self.series_id)
        rebase = None if suspect is None else confirm_rebase(stored, fetched, suspect)
        if rebase is None and not full:
            return None  # a few values revised alike, not a re-basing: the overlap is stored as usual
        new, revised, removed = compare_histories(stored, fetched)
        kept = 0
        if not full and removed and rebase is not None:  # only an explicit --full deletes history
            clean, kept = keep_unsent(clean, stored, rebase)
            removed = 0
        return Replacement(clean, rebase, new, revised, removed, notes, kept)

    def _store_replacement(
        self, replacement: Replacement, reported_calendar: str | None, now: datetime, started: float
    ) -> IngestResult:
        with write_transaction(self.engine) as conn:
            if replacement.changed:
                rescaled = replace_history(conn, self.series_id, replacement, now)
                note = describe_replacement(replacement, rescaled, self.full)
            else:
                note = "history re-fetched in full: unchanged"
            faults.reached("ingest-write")
            note = "; ".join([note, *replacement.notes])
            total, last_ts = self._record_success(conn, note, reported_calendar, now, replacement.changed)
        return IngestResult(
            self.spec.key,
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
    error = cut(error, MESSAGE_LIMIT)
    _record_failure(engine, series_id, error, utcnow())
    return IngestResult(key, FetchStatus.FAILED, error=error)


@dataclass(frozen=True)
class IngestStage:
    """The ingest stage's settings: how to fetch (``[sources]``) and where sources keep their
    caches (``service.data_dir``); ``sources`` replaces the source of a kind (benchmarks, tests)."""

    fetching: SourceSettings
    data_dir: str
    sources: Mapping[str, Source] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings, sources: Mapping[str, Source] | None = None) -> IngestStage:
        return cls(settings.sources, settings.data_dir, dict(sources or {}))


def ingest_each(
    engine: Engine,
    stage: IngestStage,
    specs: Sequence[SeriesSpec],
    ids: Mapping[str, int],
    stop: threading.Event | None = None,
    full: bool = False,
) -> Iterator[IngestResult]:
    """Ingest stage: fetch and store ``specs`` (rows of the ``series`` table by key: ``ids``) one
    after another, yielding each result. ``stop`` ends it between series; ``full`` replaces each
    stored history."""
    built = dict(stage.sources)
    for spec in specs:
        if stop is not None and stop.is_set():
            return
        try:
            if spec.source not in built:
                built[spec.source] = make_source(spec.source, stage.fetching, stage.data_dir)
            result = SeriesFetch(engine, spec, ids[spec.key], built[spec.source], stage.fetching, full).run()
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
    sources: Mapping[str, Source] | None = None,
    stop: threading.Event | None = None,
    full: bool = False,
) -> list[IngestResult]:
    """``tickcast ingest``: the chosen series (all active ones by default), after bringing the
    ``series`` table in line with the config. ``full``: re-fetch each history and replace it."""
    specs = select_specs(settings.series, keys, settings.config_path)
    ids = sync_series(engine, settings.series)
    results = []
    stage = IngestStage.of(settings, sources)
    for i, result in enumerate(ingest_each(engine, stage, specs, ids, stop=stop, full=full), 1):
        results.append(result)
        if progress:
            progress(i, len(specs), result)
    return results
