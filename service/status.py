"""The status words, in one place. They are stored in the tables (``runs.status``, ``runs.trigger``,
``fits.status``, ``fits.mode``, ``fits.scope``) and people filter on them in SQL, so the values
never change; StrEnum members are those very strings (``RunStatus.OK == "ok"``)."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """``runs.status``."""

    RUNNING = "running"
    OK = "ok"  # every series that could run did
    PARTIAL = "partial"  # some series failed, the others are stored
    FAILED = "failed"  # every runnable series failed, the run was stopped early, or it crashed


COMPLETED_RUNS = (RunStatus.OK, RunStatus.PARTIAL)  # what `tickcast health` and the catch-up count as a run


class Trigger(StrEnum):
    """``runs.trigger``: what started a run."""

    MANUAL = "manual"  # `tickcast run`, `tickcast serve --run-now`
    SCHEDULE = "schedule"
    CATCH_UP = "catch-up"  # `tickcast serve` starting after a missed scheduled time
    BACKFILL = "backfill"  # `tickcast backfill`: forecasts at past origins


class FitStatus(StrEnum):
    """``fits.status``, and the status of a training result."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # too short to train; the reason is in fits.error


class FitMode(StrEnum):
    """``fits.mode``."""

    COLD = "cold"  # trained from scratch
    WARM = "warm"  # fine-tuned from fits.warm_started_from


class FitScope(StrEnum):
    """``fits.scope``."""

    SERIES = "series"  # the series' own model
    GROUP = "group"  # one model across a group's series: the shared fit (series_id NULL) and each member's row


class Training(StrEnum):
    """``model.training``: how the series of one frequency are trained."""

    AUTO = "auto"  # a group that qualifies: both ways on cold fits, the better one kept
    SERIES = "series"
    GROUP = "group"


class FetchStatus(StrEnum):
    """How fetching one series went (``tickcast ingest``'s status column)."""

    OK = "ok"
    FAILED = "failed"  # the reason is in series.last_error


class SeriesFit(StrEnum):
    """What a run did with one series' model (``tickcast run``'s summary)."""

    TRAINED = "trained"
    UP_TO_DATE = "up-to-date"  # its newest observation and settings already have a fit
    SKIPPED = "skipped"  # too short, or nothing stored yet
    FAILED = "failed"
    PENDING = "pending"  # not reached: the run was stopped first
