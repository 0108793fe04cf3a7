"""Runs that could not start (service/run/starts.py), on a real SQLite file: the ``runs`` row written
at once when it can be; else the attempt kept beside the database, one JSON line each, for the next
run; else lost (no file can be kept). What the next run takes from the file, the lines it skips, and
the attempts it puts back when it cannot write them. (tests/test_run_cycle.py runs them through
``run_cycle``.)"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tickcast.service.db import make_engine, open_database, write_transaction
from tickcast.service.run.starts import (
    PENDING_SUFFIX,
    FailedStart,
    RunNotStarted,
    insert_failed_starts,
    record_failed_start,
    restore_pending,
    take_pending,
)
from tickcast.service.status import Trigger

from .support.tables import table

AT = datetime(2026, 3, 2, 6, 0, 5, tzinfo=UTC)
GAVE_UP = AT + timedelta(minutes=30)


@pytest.fixture
def database(tmp_path):
    """A SQLite file upgraded to head, and an engine on it that waits at most 0.2 s for a lock."""
    path = tmp_path / "tickcast.db"
    open_database(f"sqlite:///{path}").dispose()
    engine = make_engine(f"sqlite:///{path}", busy_timeout=0.2)
    yield engine, str(path)
    engine.dispose()


def pending(path: str) -> str:
    return path + PENDING_SUFFIX


def lines_of(file: str) -> list[dict]:
    with open(file, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def row_of(run: dict) -> tuple:
    return (run["trigger"], run["status"], run["started_at"], run["finished_at"], run["error"], run["host"], run["pid"])


class Locked:
    """Another process's write lock on the file (BEGIN IMMEDIATE), for the ``with`` block."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        self.holder = sqlite3.connect(self.path)
        self.holder.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.holder.rollback()
        self.holder.close()


def test_a_failed_start_is_written_at_once_when_the_database_lets_it(database):
    engine, path = database
    attempt = FailedStart(Trigger.CATCH_UP, AT, "run not started: locked", host="box", pid=77, finished_at=GAVE_UP)
    assert record_failed_start(engine, attempt) == "recorded"
    (run,) = table(engine, "runs")
    assert row_of(run) == ("catch-up", "failed", naive(AT), naive(GAVE_UP), "run not started: locked", "box", 77)
    counts = ("series_total", "series_ok", "series_failed", "series_skipped", "new_observations")
    assert [run[c] for c in counts] == [0, 0, 0, 0, 0]
    assert not os.path.exists(pending(path))


def test_a_failed_start_without_an_end_ends_now_on_this_host_and_pid(database):
    engine, _ = database
    before = datetime.now(UTC).replace(microsecond=0)
    attempt = FailedStart(Trigger.SCHEDULE, AT, "run not started: x")
    assert (attempt.host, attempt.pid, attempt.finished_at) == (socket.gethostname(), os.getpid(), None)
    assert record_failed_start(engine, attempt) == "recorded"
    (run,) = table(engine, "runs")
    assert (run["host"], run["pid"], run["started_at"]) == (socket.gethostname(), os.getpid(), naive(AT))
    assert naive(before) <= run["finished_at"] <= naive(datetime.now(UTC))


def test_a_locked_database_keeps_the_attempt_beside_it_one_json_line_each(database):
    engine, path = database
    first = FailedStart(Trigger.SCHEDULE, AT, "run not started: one", host="a", pid=1, finished_at=GAVE_UP)
    second = FailedStart(Trigger.MANUAL, AT + timedelta(days=1), 'run not started: "two"\nlines', host="b", pid=2)
    before = datetime.now(UTC)
    with Locked(path):
        assert record_failed_start(engine, first, wait=0.1) == "pending"
        assert record_failed_start(engine, second, wait=0.1) == "pending"
    assert table(engine, "runs") == []
    one, two = lines_of(pending(path))
    assert one == {
        "trigger": "schedule",
        "attempted_at": "2026-03-02T06:00:05+00:00",
        "error": "run not started: one",
        "host": "a",
        "pid": 1,
        "finished_at": "2026-03-02T06:30:05+00:00",
    }
    assert {k: two[k] for k in ("trigger", "attempted_at", "error", "host", "pid")} == {
        "trigger": "manual",
        "attempted_at": "2026-03-03T06:00:05+00:00",
        "error": 'run not started: "two"\nlines',
        "host": "b",
        "pid": 2,
    }
    assert before <= datetime.fromisoformat(two["finished_at"]) <= datetime.now(UTC)  # when it gave up

    taken, file = take_pending(engine)
    assert file == pending(path) + f".{os.getpid()}" and os.path.exists(file)
    assert not os.path.exists(pending(path))  # an attempt added meanwhile goes to a new file
    assert taken[0] == first
    assert (taken[1].trigger, taken[1].attempted_at, taken[1].error, taken[1].host, taken[1].pid) == (
        Trigger.MANUAL,
        AT + timedelta(days=1),
        'run not started: "two"\nlines',
        "b",
        2,
    )
    assert taken[1].finished_at == datetime.fromisoformat(two["finished_at"])


def test_the_wait_is_the_one_given_not_the_engines(tmp_path):
    path = str(tmp_path / "tickcast.db")
    open_database(f"sqlite:///{path}").dispose()
    engine = make_engine(f"sqlite:///{path}", busy_timeout=60)  # would wait a minute
    try:
        with Locked(path):
            started = datetime.now(UTC)
            assert record_failed_start(engine, FailedStart(Trigger.SCHEDULE, AT, "e"), wait=0.1) == "pending"
            assert datetime.now(UTC) - started < timedelta(seconds=20)
    finally:
        engine.dispose()


def test_where_no_file_can_be_kept_the_attempt_is_lost(tmp_path):
    attempt = FailedStart(Trigger.SCHEDULE, AT, "run not started: x", finished_at=GAVE_UP)
    # PostgreSQL (here one that cannot be reached): no file beside it
    nowhere = make_engine("postgresql+psycopg://u:p@127.0.0.1:1/tickcast", busy_timeout=0.2)
    assert record_failed_start(nowhere, attempt, wait=0.1) == "lost"
    nowhere.dispose()
    # a SQLite file whose directory is gone: neither the database nor the file beside it
    gone = make_engine(f"sqlite:///{tmp_path / 'gone' / 'tickcast.db'}", create=False)
    assert record_failed_start(gone, attempt, wait=0.1) == "lost"
    assert not os.path.exists(tmp_path / "gone")
    gone.dispose()


def test_a_locked_database_whose_pending_file_cannot_be_written_loses_the_attempt(database):
    engine, path = database
    os.mkdir(pending(path))  # not a file
    with Locked(path):
        assert record_failed_start(engine, FailedStart(Trigger.SCHEDULE, AT, "e"), wait=0.1) == "lost"


def test_run_not_started_says_where_the_attempt_is(database):
    attempt = FailedStart(Trigger.SCHEDULE, AT, "run not started: the database stayed locked")
    said = {where: RunNotStarted(attempt, where) for where in ("recorded", "pending", "lost")}
    assert str(said["recorded"]) == "run not started: the database stayed locked; recorded in runs"
    assert str(said["pending"]) == (
        "run not started: the database stayed locked; not recorded in runs yet: the database is still locked "
        "(the next run records it)"
    )
    assert (
        str(said["lost"])
        == "run not started: the database stayed locked; not recorded in runs: the database is still locked"
    )
    assert [said[w].recorded for w in ("recorded", "pending", "lost")] == [True, True, False]
    assert all(said[w].attempt is attempt for w in said)


def test_nothing_kept_is_nothing_taken(database, tmp_path):
    engine, _ = database
    assert take_pending(engine) == ([], None)
    elsewhere = make_engine("postgresql+psycopg://u:p@127.0.0.1:1/tickcast")  # no file beside PostgreSQL
    assert take_pending(elsewhere) == ([], None)
    taken = tmp_path / "taken"
    taken.write_text("{}\n")
    restore_pending(elsewhere, str(taken))  # nowhere to put it back: left alone
    assert taken.read_text() == "{}\n"
    elsewhere.dispose()


def test_lines_cut_short_or_unreadable_are_skipped_and_the_rest_kept_in_order(database):
    engine, path = database
    good = {
        "trigger": "schedule",
        "attempted_at": "2026-03-02T06:00:05+00:00",
        "error": "run not started: good",
        "host": "h",
        "pid": 5,
    }
    lines = [
        json.dumps(good | {"finished_at": None}),
        '{"trigger": "schedule", "attempted_at": "2026-03-0',  # cut short by a crash
        json.dumps(good | {"trigger": "sometimes"}),  # not a trigger
        json.dumps({k: v for k, v in good.items() if k != "host"}),  # a key missing
        json.dumps(good | {"pid": None}),  # int(None)
        json.dumps(good | {"attempted_at": "yesterday"}),
        json.dumps(good | {"error": "run not started: last", "finished_at": "2026-03-02T07:00:00+00:00"}),
    ]
    with open(pending(path), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    taken, file = take_pending(engine)
    assert taken == [
        FailedStart(Trigger.SCHEDULE, AT, "run not started: good", "h", 5, None),
        FailedStart(Trigger.SCHEDULE, AT, "run not started: last", "h", 5, datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
    ]
    assert file is not None and not os.path.exists(pending(path))


def test_attempts_put_back_follow_those_kept_meanwhile_and_the_taken_file_goes(database):
    engine, path = database
    early = FailedStart(Trigger.SCHEDULE, AT, "run not started: early", "h", 1, GAVE_UP)
    late = FailedStart(Trigger.SCHEDULE, AT + timedelta(hours=1), "run not started: late", "h", 2, GAVE_UP)
    with Locked(path):
        assert record_failed_start(engine, early, wait=0.1) == "pending"
        taken, file = take_pending(engine)
        assert taken == [early]
        assert record_failed_start(engine, late, wait=0.1) == "pending"  # while the first could not be written
    restore_pending(engine, file)
    assert not os.path.exists(file)
    assert [line["error"] for line in lines_of(pending(path))] == ["run not started: late", "run not started: early"]
    again, _ = take_pending(engine)
    assert again == [late, early]


def test_putting_back_a_file_that_is_gone_does_nothing(database):
    engine, path = database
    restore_pending(engine, pending(path) + ".123")
    restore_pending(engine, None)
    assert not os.path.exists(pending(path))


def test_failed_starts_are_inserted_as_given_and_unfinished_ones_end_now(database):
    engine, _ = database
    ended = FailedStart(Trigger.BACKFILL, AT, "run not started: a", "h1", 11, GAVE_UP)
    open_ended = FailedStart(Trigger.MANUAL, AT + timedelta(hours=2), "run not started: b", "h2", 12)
    before = datetime.now(UTC).replace(microsecond=0)
    with write_transaction(engine) as conn:
        insert_failed_starts(conn, [ended, open_ended])
    first, second = table(engine, "runs")
    assert row_of(first) == ("backfill", "failed", naive(AT), naive(GAVE_UP), "run not started: a", "h1", 11)
    assert row_of(second)[:3] == ("manual", "failed", naive(AT + timedelta(hours=2)))
    assert row_of(second)[4:] == ("run not started: b", "h2", 12)
    assert naive(before) <= second["finished_at"] <= naive(datetime.now(UTC))
