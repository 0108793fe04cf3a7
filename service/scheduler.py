"""``tickcast serve``: the daily runs, on APScheduler's BlockingScheduler.

- A cron trigger from the config, in the configured time zone (default: weekdays 17:30 in
  America/New_York, after the US close).
- ``coalesce`` and ``max_instances=1``: a backlog of missed runs becomes one run, never two at once.
- ``misfire_grace_time`` in hours: APScheduler's default of one second would silently skip a run
  that is a little late (a busy machine, a suspended laptop).
- On start it catches up: if the most recent scheduled time has passed without a completed run,
  one run starts at once (a restart never runs it twice: the completed run is in ``runs``).
- A run that could not start (the database stayed locked past ``service.busy_timeout_minutes``, or
  another process's run was in progress) is retried ``schedule.start_retries`` times,
  ``schedule.retry_minutes`` apart; a locked-out attempt is recorded in ``runs``.
- SIGTERM/SIGINT: stop taking new work; the series in progress finishes within
  ``stopping.STOP_GRACE_SECONDS`` or is abandoned (a second signal: at once), the run row is closed,
  the lease released, and serve exits 0. During start-up (opening the database, waiting for its
  lock, finding a missed run) the signal unwinds start-up and serve exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from .clock import as_utc, utcnow
from .cron import cron_trigger as parse_cron
from .errors import TickcastError, exception_line
from .lease import RunInProgress
from .queries import completed_run_since
from .run.cycle import run_cycle
from .run.starts import FailedStart, RunNotStarted
from .run.train import ensure_open_files
from .settings import Settings
from .status import Trigger
from .stopping import STOP_GRACE_SECONDS, StopDuringStartup, StopNow, request_stop, stop_start_up_on_signals

log = logging.getLogger("tickcast.serve")

LOOKBACK = timedelta(days=40)
# Search windows back from now, smallest first: the last fire time is in the smallest window that
# holds any, and stepping through that window takes at most as many steps as it holds fire times.
_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=8))


class ScheduleError(TickcastError):
    """The cron trigger did not advance (a bug in the trigger): the search stopped instead of looping."""


def cron_trigger(settings: Settings) -> CronTrigger:
    return parse_cron(settings.schedule.cron, settings.schedule.timezone)


def last_fire_time(trigger: CronTrigger, now: datetime, lookback: timedelta = LOOKBACK) -> datetime | None:
    """The most recent time at or before ``now`` the trigger fired (None if not within ``lookback``).

    Every comparison and step is in UTC: in the hour repeated when the clocks go back, one second
    after 01:30 local time is 01:30:01 of the *first* pass, an hour earlier, and a search that
    steps in local time never gets past it. Bounded: a cron fires at most once a minute, so no
    window takes more steps than it has minutes."""
    now = now.astimezone(UTC)
    for window in (*(w for w in _WINDOWS if w < lookback), lookback):
        last = _last_fire_in(trigger, now - window, now, max_steps=int(window / timedelta(minutes=1)) + 2)
        if last is not None:
            return last
    return None


def _last_fire_in(trigger: CronTrigger, start: datetime, now: datetime, max_steps: int) -> datetime | None:
    fire, last = trigger.get_next_fire_time(None, start), None
    for _ in range(max_steps):
        if fire is None or fire.astimezone(UTC) > now:
            return last
        last = fire
        # APScheduler starts from min(now, previous + 1 µs), added in UTC: strictly later than ``fire``
        fire = trigger.get_next_fire_time(last, now)
        if fire is not None and fire.astimezone(UTC) <= last.astimezone(UTC):
            raise ScheduleError(f"the schedule {trigger} did not advance past {last.isoformat()}")
    raise ScheduleError(
        f"the schedule {trigger} fired more than {max_steps} times between {start.isoformat()} and {now.isoformat()}"
    )


def needs_catch_up(engine: Engine, settings: Settings, now: datetime | None = None) -> datetime | None:
    """The missed scheduled time, if the last one passed with no completed run since; else None."""
    now = now or utcnow()
    missed = last_fire_time(cron_trigger(settings), now)
    if missed is None or completed_run_since(engine, as_utc(missed), now):
        return None
    return missed


def serve(settings: Settings, run_now: bool = False) -> int:
    """``tickcast serve``: open (create, upgrade, repair) the database and run the scheduler until
    SIGTERM/SIGINT, which stops it cleanly at any point, start-up included (service/stopping.py)."""
    from .db import open_database

    stop_start_up_on_signals()
    try:
        ensure_open_files(settings.workers)
        engine = open_database(settings.db_url, busy_timeout=settings.busy_timeout)
        return Service(engine, settings).serve(run_now=run_now)
    except StopDuringStartup as stopped:
        log.info("received %s during start-up: stopped before serving", stopped)
        return 0


class Service:
    """The daemon: a scheduler plus the one job it runs. ``stop()`` may come from a signal handler."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.stop_event = threading.Event()
        self.job_lock = threading.Lock()
        self.runs: list = []  # summaries of the runs this process made
        self.failed_starts: list[FailedStart] = []  # runs that could not start, not in `runs` yet
        grace = int(settings.schedule.misfire_grace_hours * 3600)
        self.scheduler = BlockingScheduler(
            timezone=settings.schedule.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        )
        self.scheduler.add_job(
            self.job, cron_trigger(settings), args=[Trigger.SCHEDULE], id="daily-run", name="daily run"
        )
        # A stop that arrives between installing the handlers and the scheduler running
        self.scheduler.add_listener(
            lambda _event: self.stop_event.is_set() and self.scheduler.shutdown(wait=False), EVENT_SCHEDULER_STARTED
        )

    def job(self, trigger: Trigger, retry: int = 0, refused_at: datetime | None = None) -> None:
        if self.stop_event.is_set():
            return
        with self.job_lock:
            if self.stop_event.is_set():
                return
            if refused_at is not None and completed_run_since(self.engine, refused_at):
                log.info("not retrying: another process completed a run since this one was refused")
                return
            try:
                summary = run_cycle(
                    self.engine,
                    self.settings,
                    trigger=trigger,
                    progress=lambda message, problem=False: (log.warning if problem else log.info)(message),
                    stop=self.stop_event,
                    failed_starts=self.failed_starts,
                )
                self.runs.append(summary)
                log.info(
                    "run %s finished: %s (%d series, %.1f s)",
                    summary.run_id,
                    summary.status,
                    len(summary.outcomes),
                    summary.seconds,
                )
            except StopNow as exc:
                log.warning("run stopped: %s", exc)
            except RunInProgress as exc:  # a live run (another process): try again when it may be done
                self._retry_later(trigger, retry, exc, refused_at=utcnow())
            except RunNotStarted as exc:
                if not exc.recorded:
                    self.failed_starts.append(exc.attempt)
                self._retry_later(trigger, retry, exc)
            except Exception as exc:  # noqa: BLE001 - the daemon must survive a failed run
                log.error("run failed: %s", exception_line(exc))
        next_run = self.scheduler.get_job("daily-run")
        if next_run is not None and next_run.next_run_time is not None:
            log.info("next scheduled run: %s", next_run.next_run_time.isoformat())

    def _retry_later(
        self, trigger: Trigger, retry: int, exc: TickcastError, refused_at: datetime | None = None
    ) -> None:
        """A run that could not start (the database stayed locked, or another process's run was in
        progress) is tried again ``schedule.start_retries`` times, every ``schedule.retry_minutes``;
        then the next scheduled run is the next chance. A retry after a refusal by a live run is
        dropped if a run completed meanwhile (``refused_at``)."""
        schedule = self.settings.schedule
        if self.stop_event.is_set() or retry >= schedule.start_retries:
            log.error("%s; not retrying (%d retries, schedule.start_retries)", exc, retry)
            return
        when = utcnow() + timedelta(minutes=schedule.retry_minutes)
        log.warning("%s; retry %d of %d at %s", exc, retry + 1, schedule.start_retries, when.isoformat())
        self.scheduler.add_job(
            self.job,
            args=[trigger],
            kwargs={"retry": retry + 1, "refused_at": refused_at},
            next_run_time=when,
            id="retry",
            replace_existing=True,
        )

    def stop(self, signum: int | None = None, _frame=None) -> None:
        if signum is not None:
            name = signal.Signals(signum).name
            if self.stop_event.is_set():
                log.info("received %s again: stopping now", name)
            else:
                log.info(
                    "received %s: finishing the series in progress, then stopping (at most %g s; a second "
                    "signal stops at once)",
                    name,
                    STOP_GRACE_SECONDS,
                )
        self.stop_event.set()
        request_stop(signum)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def serve(self, run_now: bool = False) -> int:
        missed = needs_catch_up(self.engine, self.settings)
        if run_now:
            self.scheduler.add_job(self.job, args=[Trigger.MANUAL], next_run_time=utcnow(), id="run-now")
        elif missed is not None:
            log.info("catching up the run scheduled for %s", missed.isoformat())
            self.scheduler.add_job(self.job, args=[Trigger.CATCH_UP], next_run_time=utcnow(), id="catch-up")
        trigger = cron_trigger(self.settings)
        log.info(
            "tickcast serve: schedule %r in %s; next run %s",
            self.settings.schedule.cron,
            self.settings.schedule.timezone,
            trigger.get_next_fire_time(None, utcnow()).isoformat(),
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop)
        self.scheduler.start()  # blocks until stop()
        with self.job_lock:  # wait for a run in progress to close its books
            pass
        log.info("stopped")
        return 0
