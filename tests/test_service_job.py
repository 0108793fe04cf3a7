"""The daemon's job and stop (service/scheduler.py ``Service``) in this process, on a real SQLite file
and APScheduler's own scheduler (started paused: the jobs it would run are read back from it): a run and
its log lines; a run refused by another process's run, or by a database that stays locked, tried
again ``schedule.start_retries`` times ``schedule.retry_minutes`` apart, then left to the next
scheduled run; a retry dropped when another process completed a run meanwhile; attempts that cannot
be recorded kept for the next run; a failed or stopped run that the daemon survives; the signals'
lines. tests/test_serve.py and tests/reliability/test_schedule.py run ``tickcast serve`` itself."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tickcast.service import schema, stopping
from tickcast.service.db import make_engine, open_database, write_transaction
from tickcast.service.locks import DatabaseLocked
from tickcast.service.run import cycle
from tickcast.service.run.starts import PENDING_SUFFIX
from tickcast.service.scheduler import Service, serve
from tickcast.service.status import Trigger
from tickcast.service.stopping import StopNow

from .support.foreign import foreign_writer
from .support.small_model import FAST_MODEL
from .support.stop_state import cancel_grace_timer, no_stop_requested
from .support.tables import table
from .support.waiting import eventually
from .support.warnings_said import Warnings

RETRIES = '[schedule]\ncron = "30 17 * * mon-fri"\ntimezone = "UTC"\nstart_retries = 2\nretry_minutes = 7\n'


@pytest.fixture(autouse=True)
def no_stop(monkeypatch):
    """No stop requested before or after (Service.stop requests one process-wide)."""
    no_stop_requested(monkeypatch)
    yield
    cancel_grace_timer()


@pytest.fixture
def service(make_settings, make_series, sqlite_url, caplog):
    """A Service on one CSV series, a fast model and two retries 7 minutes apart; its scheduler
    started paused in a thread (as ``serve`` starts it, but no job fires by itself)."""
    caplog.set_level(logging.INFO, logger="tickcast.serve")
    make_series("a", [float(10 + i % 7) for i in range(60)], start="2020-01-01", freq="MS")
    settings = make_settings(
        '[watchlist]\nsample = []\n[[series]]\nkey = "csv:a"\npath = "a.csv"\n' + RETRIES + FAST_MODEL,
        db_url=sqlite_url,
    )
    engine = open_database(sqlite_url)
    service = Service(engine, settings)
    runner = threading.Thread(target=service.scheduler.start, kwargs={"paused": True})  # nothing fires
    runner.start()
    assert eventually(lambda: service.scheduler.running)
    yield service
    if service.scheduler.running:
        service.scheduler.shutdown(wait=True)
    runner.join(timeout=30)
    service.engine.dispose()


def lines(caplog, level=None) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "tickcast.serve" and (level is None or r.levelno == level)
    ]


def retry_job(service):
    return service.scheduler.get_job("retry")


def add_live_lease(engine, now) -> None:
    """Another host's run, in progress."""
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(schema.run_lease).values(
                name="run",
                holder="elsewhere:4242:abcd",
                host="elsewhere",
                pid=4242,
                run_id=None,
                acquired_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )


def test_a_job_runs_a_cycle_and_says_how_it_ended_and_when_the_next_is(service, caplog):
    service.job(Trigger.SCHEDULE)
    (summary,) = service.runs
    (run,) = table(service.engine, "runs")
    assert (run["id"], run["trigger"], run["status"]) == (summary.run_id, "schedule", "ok")
    assert f"run {summary.run_id} finished: ok (1 series, {summary.seconds:.1f} s)" in lines(caplog)
    next_time = service.scheduler.get_job("daily-run").next_run_time
    assert lines(caplog)[-1] == f"next scheduled run: {next_time.isoformat()}"
    progress = [r for r in caplog.records if r.name == "tickcast.run" or r.getMessage().startswith("[")]
    assert any(r.getMessage().startswith("[train 1/1] csv:a: cold fit in ") for r in progress)
    assert retry_job(service) is None and service.failed_starts == []


def test_a_job_after_a_stop_does_nothing(service, caplog):
    service.stop_event.set()
    service.job(Trigger.SCHEDULE)
    assert service.runs == [] and table(service.engine, "runs") == [] and lines(caplog) == []


def test_a_run_refused_by_another_processs_run_is_retried_then_left_to_the_schedule(service, caplog):
    before = datetime.now(UTC)
    add_live_lease(service.engine, before)
    service.job(Trigger.CATCH_UP)
    assert service.runs == [] and table(service.engine, "runs") == []
    job = retry_job(service)
    assert job.args == (Trigger.CATCH_UP,) and job.kwargs["retry"] == 1
    refused_at = job.kwargs["refused_at"]
    assert before <= refused_at <= datetime.now(UTC)
    assert before + timedelta(minutes=7) <= job.next_run_time <= datetime.now(UTC) + timedelta(minutes=7)
    (warning,) = lines(caplog, logging.WARNING)
    assert warning.startswith("another run is in progress (pid 4242 on elsewhere, run ?, since ")
    assert warning.endswith(f"; not starting a second one; retry 1 of 2 at {job.next_run_time.isoformat()}")

    caplog.clear()
    service.job(Trigger.CATCH_UP, retry=1, refused_at=refused_at)  # the retry: refused again
    assert retry_job(service).kwargs["retry"] == 2
    assert lines(caplog, logging.WARNING)[0].endswith(f"retry 2 of 2 at {retry_job(service).next_run_time.isoformat()}")

    caplog.clear()
    service.job(Trigger.CATCH_UP, retry=2, refused_at=refused_at)  # the last: not retried
    (error,) = lines(caplog, logging.ERROR)
    assert error.startswith("another run is in progress") and error.endswith(
        "; not retrying (2 retries, schedule.start_retries)"
    )
    assert retry_job(service).kwargs["retry"] == 2  # the job that ran; no new one replaced it
    assert table(service.engine, "runs") == []


def test_a_retry_is_dropped_when_another_process_completed_a_run_since_it_was_refused(service, caplog):
    refused_at = datetime.now(UTC) - timedelta(minutes=7)
    with write_transaction(service.engine) as conn:
        conn.execute(
            sa.insert(schema.runs).values(
                trigger="schedule",
                status="ok",
                started_at=refused_at + timedelta(minutes=1),
                finished_at=refused_at + timedelta(minutes=2),
            )
        )
    service.job(Trigger.SCHEDULE, retry=1, refused_at=refused_at)
    assert service.runs == [] and len(table(service.engine, "runs")) == 1
    assert lines(caplog) == ["not retrying: another process completed a run since this one was refused"]
    # one completed before the refusal does not count: the retry runs
    service.job(Trigger.SCHEDULE, retry=1, refused_at=refused_at + timedelta(minutes=3))
    assert len(service.runs) == 1


def test_a_locked_database_is_retried_and_the_attempt_recorded_where_it_can_be(service, caplog, sqlite_url):
    path = sqlite_url.removeprefix("sqlite:///")
    service.engine.dispose()
    service.engine = make_engine(sqlite_url, busy_timeout=0.3)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        service.job(Trigger.SCHEDULE)
    finally:
        holder.rollback()
        holder.close()
    (warning,) = [w for w in lines(caplog, logging.WARNING) if "retry" in w]
    assert warning.startswith("run not started: ") and "locked" in warning
    assert "not recorded in runs yet: the database is still locked (the next run records it); retry 1 of 2" in warning
    assert service.failed_starts == []  # kept beside the database, not in memory
    assert os.path.exists(path + PENDING_SUFFIX)
    assert retry_job(service).kwargs == {"retry": 1, "refused_at": None}
    service.job(Trigger.SCHEDULE, retry=1)  # the retry: the attempt is recorded, then the run
    first, second = table(service.engine, "runs")
    assert (first["status"], first["trigger"]) == ("failed", "schedule") and first["error"].startswith(
        "run not started"
    )
    assert second["status"] == "ok" and len(service.runs) == 1


def test_an_attempt_that_cannot_be_kept_beside_the_database_is_kept_in_memory(service, caplog, sqlite_url):
    path = sqlite_url.removeprefix("sqlite:///")
    os.mkdir(path + PENDING_SUFFIX)  # no file can be written there
    service.engine.dispose()
    service.engine = make_engine(sqlite_url, busy_timeout=0.3)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        service.job(Trigger.MANUAL)
    finally:
        holder.rollback()
        holder.close()
    (attempt,) = service.failed_starts
    assert attempt.trigger == Trigger.MANUAL and attempt.error.startswith("run not started: ")
    assert any("not recorded in runs: the database is still locked; retry 1 of 2" in w for w in lines(caplog))
    service.job(Trigger.MANUAL, retry=1)
    first, second = table(service.engine, "runs")
    assert (first["status"], first["error"]) == ("failed", attempt.error) and second["status"] == "ok"
    assert service.failed_starts == []  # written by the run: no longer kept


def test_a_run_that_fails_or_is_stopped_is_said_and_the_daemon_goes_on(service, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug\nwith two lines")

    monkeypatch.setattr("tickcast.service.scheduler.run_cycle", broken)
    service.job(Trigger.SCHEDULE)
    assert lines(caplog, logging.ERROR) == ["run failed: ValueError: a bug"]
    assert lines(caplog)[-1].startswith("next scheduled run: ")

    def stopped(*args, **kwargs):
        raise StopNow("stopped at once (a second stop signal)")

    caplog.clear()
    monkeypatch.setattr("tickcast.service.scheduler.run_cycle", stopped)
    service.job(Trigger.SCHEDULE)
    assert lines(caplog, logging.WARNING) == ["run stopped: stopped at once (a second stop signal)"]
    assert retry_job(service) is None and service.runs == []


def test_progress_lines_go_to_the_log_problems_as_warnings(service, caplog, monkeypatch):
    def talking(engine, settings, trigger, progress, stop, failed_starts):
        assert (trigger, stop, failed_starts) == (Trigger.CATCH_UP, service.stop_event, service.failed_starts)
        progress("all is well")
        progress("something is not", problem=True)
        return cycle.run_cycle(engine, settings, trigger=trigger, stop=stop, failed_starts=failed_starts)

    monkeypatch.setattr("tickcast.service.scheduler.run_cycle", talking)
    service.job(Trigger.CATCH_UP)
    assert "all is well" in lines(caplog, logging.INFO)
    assert "something is not" in lines(caplog, logging.WARNING)


def test_a_signal_stops_the_daemon_and_a_second_says_it_stops_now(service, caplog):
    service.stop(signal.SIGTERM)
    assert service.stop_event.is_set() and stopping.stop_requested()
    assert lines(caplog) == [
        "received SIGTERM: finishing the series in progress, then stopping (at most "
        f"{stopping.STOP_GRACE_SECONDS:g} s; a second signal stops at once)"
    ]
    service.stop(signal.SIGINT)
    assert lines(caplog)[-1] == "received SIGINT again: stopping now"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # a clean shutdown
    service.job(Trigger.SCHEDULE)  # a job that fires after the stop does nothing
    assert table(service.engine, "runs") == []


def test_a_stop_without_a_signal_says_nothing(service, caplog):
    service.stop()
    assert service.stop_event.is_set() and lines(caplog) == []


def test_the_scheduler_keeps_one_job_coalesced_with_hours_of_grace(service):
    job = service.scheduler.get_job("daily-run")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 6 * 3600)
    assert job.args == (Trigger.SCHEDULE,) and job.name == "daily run"
    assert str(job.trigger) == "cron[month='*', day='*', day_of_week='mon-fri', hour='17', minute='30', second='0']"


def test_a_stop_before_the_scheduler_runs_ends_it_as_soon_as_it_starts(make_settings, sqlite_url):
    """The stop that arrives between installing the handlers and the scheduler running."""
    settings = make_settings(
        '[watchlist]\nsample = []\n[schedule]\ncron = "30 17 * * mon-fri"\ntimezone = "Asia/Tokyo"\n', db_url=sqlite_url
    )
    engine = open_database(sqlite_url)
    try:
        service = Service(engine, settings)
        assert str(service.scheduler.timezone) == "Asia/Tokyo"  # the configured zone, not the machine's
        service.stop_event.set()
        runner = threading.Thread(target=service.scheduler.start)
        runner.start()
        runner.join(20)
        assert not runner.is_alive() and not service.scheduler.running
    finally:
        engine.dispose()


def test_a_stop_does_not_wait_for_the_run_in_progress(service):
    """stop() runs in a signal handler: it asks the run to stop and returns; the run closes its books
    itself (serve waits for it afterwards)."""
    started, release = threading.Event(), threading.Event()
    service.scheduler.add_job(lambda: (started.set(), release.wait(30)), id="long")
    service.scheduler.resume()
    try:
        assert started.wait(30)
        began = time.monotonic()
        service.stop(signal.SIGTERM)
        assert time.monotonic() - began < 5 and not release.is_set()
        assert stopping._requested == "SIGTERM"  # the signal's name, for the forced stop's message
    finally:
        release.set()


def test_a_run_refused_by_a_locked_database_is_retried_with_its_trigger(service, sqlite_url):
    service.engine.dispose()
    service.engine = make_engine(sqlite_url, busy_timeout=0.3)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    holder.execute("BEGIN IMMEDIATE")
    try:
        service.job(Trigger.CATCH_UP)
    finally:
        holder.rollback()
        holder.close()
    assert retry_job(service).args == (Trigger.CATCH_UP,)


@pytest.fixture
def own_signals():
    """The signal handlers as they were, after a test that lets serve install its own."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("how", ["run now", "catch up"])
def test_serve_in_this_process_runs_on_its_database_then_a_sigterm_ends_it(
    how, make_settings, make_series, tmp_path, own_signals, caplog
):
    """``serve(settings, run_now=True)``, or ``serve(settings)`` after a scheduled time passed with no
    run: the database at the configured URL is created, one run goes through (manual, or the
    catch-up), and SIGTERM (sent to this process once the run is recorded) returns 0."""
    caplog.set_level(logging.INFO, logger="tickcast.serve")
    make_series("a", [float(10 + i % 7) for i in range(60)], start="2020-01-01", freq="MS")
    url = f"sqlite:///{tmp_path / 'served' / 'tickcast.db'}"
    cron = "30 17 * * mon-fri" if how == "run now" else "* * * * *"  # every minute: one just passed
    settings = make_settings(
        '[watchlist]\nsample = []\n[[series]]\nkey = "csv:a"\npath = "a.csv"\n'
        f'[service]\nbusy_timeout_minutes = 0.5\n[schedule]\ncron = "{cron}"\ntimezone = "UTC"\n' + FAST_MODEL,
        db_url=url,
    )

    def sigterm_after_the_run() -> None:
        def done() -> bool:
            try:
                engine = sa.create_engine(url)
                with engine.connect() as conn:
                    return conn.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'ok'")).scalar() >= 1
            except sa.exc.OperationalError:
                return False
            finally:
                engine.dispose()

        if eventually(done, seconds=45):
            time.sleep(0.2)  # the job logs its end
        if not finished.is_set():  # (never at a pytest process that no longer serves)
            os.kill(os.getpid(), signal.SIGTERM)

    finished = threading.Event()
    killer = threading.Thread(target=sigterm_after_the_run)
    before = datetime.now(UTC)
    killer.start()
    try:
        assert serve(settings, run_now=how == "run now") == 0
    finally:
        finished.set()
        killer.join(60)
    engine = make_engine(url)
    try:
        run = table(engine, "runs")[0]
        trigger = "manual" if how == "run now" else "catch-up"
        assert (run["trigger"], run["status"], run["series_total"]) == (trigger, "ok", 1)
    finally:
        engine.dispose()
    said = lines(caplog)
    if how == "catch up":
        missed = datetime.fromisoformat(said[0].removeprefix("catching up the run scheduled for "))
        assert said[0].startswith("catching up the run scheduled for ") and missed.second == 0
        assert before - timedelta(minutes=1) < missed <= datetime.now(UTC)
        said = said[1:]
    assert said[0].startswith(f"tickcast serve: schedule {cron!r} in UTC; next run ")
    next_run = datetime.fromisoformat(said[0].rsplit(" ", 1)[1])
    assert before < next_run <= datetime.now(UTC) + timedelta(days=4)  # a weekend at most away
    assert "received SIGTERM: finishing the series in progress, then stopping" in said[-2]
    assert said[-1] == "stopped"


def test_serve_waits_for_a_locked_database_as_long_as_configured(make_settings, tmp_path, own_signals):
    """A new database whose file another process holds locked: creating the schema waits
    ``service.busy_timeout_minutes`` (here 1.2 s), then serve fails in one line. (A SIGTERM after a
    minute ends a serve that would wait longer, as a failure of this test.)"""
    path = tmp_path / "locked.db"
    settings = make_settings(
        "[watchlist]\nsample = []\n[service]\nbusy_timeout_minutes = 0.02\n", db_url=f"sqlite:///{path}"
    )
    guard = threading.Timer(60, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with foreign_writer(str(path)) as writer:
        guard.start()
        try:
            with pytest.raises(DatabaseLocked) as locked:
                serve(settings)
        finally:
            guard.cancel()
    assert str(locked.value) == (
        f"the database {path} stayed locked for 1.2 s (service.busy_timeout_minutes), "
        f"its write lock held by pid {writer.pid}"
    )


def test_a_sigterm_while_serve_starts_up_ends_it_with_0_and_one_line(make_settings, tmp_path, own_signals, caplog):
    """SIGTERM while start-up waits for the database's lock: serve stops before serving, exit 0."""
    caplog.set_level(logging.INFO, logger="tickcast.serve")
    path = tmp_path / "locked.db"
    settings = make_settings(
        "[watchlist]\nsample = []\n[service]\nbusy_timeout_minutes = 5\n", db_url=f"sqlite:///{path}"
    )
    waiting = Warnings()
    db_log = logging.getLogger("tickcast.db")
    db_log.addHandler(waiting)

    def sigterm_once_it_waits() -> None:
        waiting.first.wait(60)  # start-up said it waits for the lock (or a minute passed)
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    finished = threading.Event()
    killer = threading.Thread(target=sigterm_once_it_waits)
    try:
        with foreign_writer(str(path)):
            killer.start()
            try:
                assert serve(settings) == 0
            finally:
                finished.set()
                waiting.first.set()
    finally:
        killer.join(90)
        db_log.removeHandler(waiting)
    assert waiting.lines and "is waiting for the write lock" in waiting.lines[0]
    assert lines(caplog) == ["received SIGTERM during start-up: stopped before serving"]
