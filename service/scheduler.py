"""``tickcast serve``: the daily runs, on APScheduler's BlockingScheduler.

- A cron trigger from the config, in the configured time zone (default: weekdays 17:30 in
  America/New_York, after the US close).
- ``coalesce`` and ``max_instances=1``: a backlog of missed runs becomes one run, never two at once.
- ``misfire_grace_time`` in hours: APScheduler's default of one second would silently skip a run
  that is a little late (a busy machine, a suspended laptop).
- On start it catches up: if the most recent scheduled time has passed without a completed run,
  one run starts at once (a restart never runs it twice: the completed run is in ``runs``).
- SIGTERM/SIGINT: stop taking new work; the series in progress finishes (or is rolled back), the run
  row is closed, the lease released, and serve exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine

from .clock import as_utc, utcnow
from .config import Settings
from .lease import RunInProgress
from .pipeline import run_cycle
from .queries import completed_run_since, last_verdict_run

log = logging.getLogger("tickcast.serve")


def cron_trigger(settings: Settings) -> CronTrigger:
    return CronTrigger.from_crontab(settings.schedule.cron, timezone=settings.schedule.timezone)


def last_fire_time(trigger: CronTrigger, now: datetime, lookback: timedelta = timedelta(days=40)) -> datetime | None:
    """The most recent time at or before ``now`` the trigger fired (None if not within ``lookback``)."""
    fire = trigger.get_next_fire_time(None, now - lookback)
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last


def needs_catch_up(engine: Engine, settings: Settings, now: datetime | None = None) -> datetime | None:
    """The missed scheduled time, if the last one passed with no completed run since; else None."""
    now = now or utcnow()
    missed = last_fire_time(cron_trigger(settings), now)
    if missed is None or completed_run_since(engine, as_utc(missed)):
        return None
    return missed


def health(engine: Engine, settings: Settings, now: datetime | None = None) -> tuple[bool, str]:
    """Healthy when the newest run that went through all its series finished within
    ``schedule.max_age_hours`` and at most ``schedule.max_failed_fraction`` of its series failed;
    a run in which every series failed is unhealthy whatever that fraction."""
    now = now or utcnow()
    run = last_verdict_run(engine)
    if run is None:
        return False, "unhealthy: no completed run yet"
    hours = (now - as_utc(run.finished_at)).total_seconds() / 3600
    failed = f"{run.series_failed} of {run.series_total} series failed"
    schedule = settings.schedule
    if run.status == "failed":
        return False, f"unhealthy: run {run.id} finished {hours:.1f} h ago and every series failed ({failed})"
    if run.series_total and run.series_failed / run.series_total > schedule.max_failed_fraction:
        return False, (f"unhealthy: run {run.id} ({run.status}) finished {hours:.1f} h ago, {failed}: more than "
                       f"schedule.max_failed_fraction = {schedule.max_failed_fraction:g}")
    if hours > schedule.max_age_hours:
        return False, (f"unhealthy: the last completed run ({run.id}, {run.status}) finished {hours:.1f} h ago, "
                       f"more than schedule.max_age_hours = {schedule.max_age_hours:g}")
    return True, f"ok: run {run.id} ({run.status}) finished {hours:.1f} h ago" + (f"; {failed}" if run.series_failed else "")


class Service:
    """The daemon: a scheduler plus the one job it runs. ``stop()`` may come from a signal handler."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.stop_event = threading.Event()
        self.job_lock = threading.Lock()
        self.runs: list = []  # summaries of the runs this process made
        grace = int(settings.schedule.misfire_grace_hours * 3600)
        self.scheduler = BlockingScheduler(
            timezone=settings.schedule.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace})
        self.scheduler.add_job(self.job, cron_trigger(settings), args=["schedule"], id="daily-run",
                               name="daily run")

    def job(self, trigger: str) -> None:
        if self.stop_event.is_set():
            return
        with self.job_lock:
            if self.stop_event.is_set():
                return
            try:
                summary = run_cycle(self.engine, self.settings, trigger=trigger, progress=log.info,
                                    stop=self.stop_event)
                self.runs.append(summary)
                log.info("run %s finished: %s (%d series, %.1f s)", summary.run_id, summary.status,
                         len(summary.outcomes), summary.seconds)
            except RunInProgress as exc:
                log.warning("skipping this run: %s", exc)
            except Exception as exc:  # noqa: BLE001 - the daemon must survive a failed run
                log.error("run failed: %s: %s", type(exc).__name__, exc)
        next_run = self.scheduler.get_job("daily-run")
        if next_run is not None and next_run.next_run_time is not None:
            log.info("next scheduled run: %s", next_run.next_run_time.isoformat())

    def stop(self, signum: int | None = None, _frame=None) -> None:
        if signum is not None:
            log.info("received %s: finishing the series in progress, then stopping",
                     signal.Signals(signum).name)
        self.stop_event.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def serve(self, run_now: bool = False) -> int:
        missed = needs_catch_up(self.engine, self.settings)
        if run_now:
            self.scheduler.add_job(self.job, args=["manual"], next_run_time=utcnow(), id="run-now")
        elif missed is not None:
            log.info("catching up the run scheduled for %s", missed.isoformat())
            self.scheduler.add_job(self.job, args=["catch-up"], next_run_time=utcnow(), id="catch-up")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop)
        trigger = cron_trigger(self.settings)
        log.info("tickcast serve: schedule %r in %s; next run %s", self.settings.schedule.cron,
                 self.settings.schedule.timezone, trigger.get_next_fire_time(None, utcnow()).isoformat())
        self.scheduler.start()  # blocks until stop()
        with self.job_lock:  # wait for a run in progress to close its books
            pass
        log.info("stopped")
        return 0
