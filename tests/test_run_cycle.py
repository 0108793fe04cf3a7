"""One run's bookkeeping (service/run/cycle.py), in this process on a real SQLite file: its row in
`runs` (who ran it, when, the counts of every kind of outcome), its progress lines, runs abandoned by
crashed processes, attempts that could not start written before it, and a database that stays
locked."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.models import AutoForecaster
from tickcast.service import schema
from tickcast.service.db import make_engine, write_transaction
from tickcast.service.lease import Heartbeat
from tickcast.service.locks import DatabaseLocked
from tickcast.service.run import cycle
from tickcast.service.run.backfill import Backfill
from tickcast.service.run.cycle import run_cycle
from tickcast.service.run.starts import PENDING_SUFFIX, FailedStart, RunNotStarted
from tickcast.service.status import Trigger
from tickcast.service.stopping import StopNow

from .support.small_model import FAST_MODEL, small_model
from .support.tables import add_dead_holders_lease, table

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


class Said:
    """A run's progress lines, with whether each was a problem."""

    def __init__(self, then=None):
        self.lines: list[tuple[str, bool]] = []
        self.then = then

    def __call__(self, message: str, problem: bool = False) -> None:
        self.lines.append((message, problem))
        if self.then is not None:
            self.then(message)


@pytest.fixture
def world(make_settings, make_series, db_url, tmp_path):
    """Two series that train (60 and 40 days), one too short to train, one whose file is missing."""
    make_series("a", [10.0 + (i % 7) for i in range(60)])
    make_series("b", [50.0 - (i % 5) for i in range(40)])
    make_series("tiny", [1.0, 2.0])
    entries = "".join(f'[[series]]\nkey = "csv:{k}"\npath = "{k}.csv"\n' for k in ("a", "b", "tiny", "gone"))
    return make_settings("[watchlist]\nsample = []\n" + entries + FAST_MODEL, db_url=db_url)


def runs(engine) -> list[dict]:
    return table(engine, "runs")


def naive(moment: datetime) -> datetime:
    """A moment as the tables give it back: UTC, without the zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def test_a_runs_row_says_who_ran_it_when_and_how_each_series_ended(fresh_db, world):
    engine = fresh_db()
    said = Said()
    before = naive(datetime.now(UTC))
    summary = run_cycle(engine, world, progress=said)
    after = naive(datetime.now(UTC))
    (run,) = runs(engine)
    assert run["id"] == summary.run_id and run["trigger"] == "manual"
    assert (run["status"], run["error"]) == ("partial", None)
    assert (run["host"], run["pid"]) == (socket.gethostname(), os.getpid())
    assert before <= run["started_at"] <= run["finished_at"] <= after
    assert (run["series_total"], run["series_ok"], run["series_failed"], run["series_skipped"]) == (4, 2, 1, 1)
    assert run["new_observations"] == 60 + 40 + 2 == len(table(engine, "observations"))
    assert set(summary.timings) == {"ingest", "plan", "train"} and all(t >= 0 for t in summary.timings.values())
    assert 0 < sum(summary.timings.values()) <= summary.seconds
    outcomes = {o.key: o for o in summary.outcomes}
    assert [o.key for o in summary.outcomes] == ["csv:a", "csv:b", "csv:tiny", "csv:gone"]
    assert (outcomes["csv:a"].fit, outcomes["csv:a"].mode, outcomes["csv:a"].new_rows) == ("trained", "cold", 60)
    assert outcomes["csv:a"].fit_id is not None and outcomes["csv:a"].seconds > 0
    assert (outcomes["csv:tiny"].fit, outcomes["csv:tiny"].failed) == ("skipped", False)
    assert outcomes["csv:tiny"].error.startswith("too short to train")
    assert (outcomes["csv:gone"].fetch, outcomes["csv:gone"].failed) == ("failed", True)

    lines = said.lines
    assert lines[0] == (f"run {summary.run_id} (manual): 4 series", False)
    assert lines[1:5] == [
        ("[ingest 1/4] csv:a: 60 new", False),
        ("[ingest 2/4] csv:b: 40 new", False),
        ("[ingest 3/4] csv:tiny: 2 new", False),
        (f"[ingest 4/4] csv:gone: failed: {outcomes['csv:gone'].error}", True),
    ]
    assert [(m.split(" fit in ")[0], p) for m, p in lines[5:]] == [
        ("[train 1/2] csv:a: cold", False),
        ("[train 2/2] csv:b: cold", False),
    ]
    assert len(lines) == 7


def test_a_run_where_every_series_that_could_train_failed_is_failed(fresh_db, make_settings, make_series, db_url):
    make_series("tiny", [1.0, 2.0])
    settings = make_settings(
        '[watchlist]\nsample = []\n[[series]]\nkey = "csv:tiny"\npath = "tiny.csv"\n[[series]]\nkey = "csv:gone"\n'
        'path = "gone.csv"\n' + FAST_MODEL,
        db_url=db_url,
    )
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "failed"
    (run,) = runs(engine)
    assert (run["status"], run["series_ok"], run["series_failed"], run["series_skipped"]) == ("failed", 0, 1, 1)


def test_a_run_with_only_skipped_series_is_ok(fresh_db, make_settings, make_series, db_url):
    make_series("tiny", [1.0, 2.0])
    settings = make_settings(
        '[watchlist]\nsample = []\n[[series]]\nkey = "csv:tiny"\npath = "tiny.csv"\n', db_url=db_url
    )
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "ok"


def test_runs_left_running_by_a_crashed_process_are_closed_as_abandoned(fresh_db, world):
    engine = fresh_db()
    then = naive(datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    with write_transaction(engine) as conn:
        for status in ("running", "ok", "running"):
            conn.execute(
                sa.insert(schema.runs).values(
                    trigger="schedule",
                    status=status,
                    started_at=then,
                    host="h",
                    pid=1,
                    finished_at=None if status == "running" else then,
                )  # fmt: skip
            )
    said = Said()
    before = naive(datetime.now(UTC))
    run_cycle(engine, world, progress=said)
    rows = runs(engine)
    assert [(r["status"], r["error"]) for r in rows[:3]] == [
        ("failed", "abandoned: the process running it died (crash, kill or power loss)"),
        ("ok", None),
        ("failed", "abandoned: the process running it died (crash, kill or power loss)"),
    ]
    assert rows[0]["finished_at"] >= before and rows[1]["finished_at"] == then
    assert said.lines[0] == ("closed 2 run(s) abandoned by a crashed process", False)
    assert rows[3]["status"] == "partial"


def test_a_stale_lease_is_taken_over_and_said(fresh_db, world):
    engine = fresh_db()
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:  # a crashed holder on this host: its pid is gone
        add_dead_holders_lease(conn, now)
    said = Said()
    run_cycle(engine, world, progress=said)
    message, problem = said.lines[0]
    assert message.startswith("took over a stale run lease (") and "pid 4206649" in message and not problem


def attempt(minutes_ago: int, error: str, trigger: Trigger = Trigger.SCHEDULE) -> FailedStart:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago)
    return FailedStart(trigger, at, error, host="elsewhere", pid=4000 + minutes_ago, finished_at=at)


def pending_file(db_url: str) -> str:
    return os.path.abspath(db_url.removeprefix("sqlite:///")) + PENDING_SUFFIX


def keep_pending(db_url: str, *attempts: FailedStart) -> None:
    """Attempts kept beside the database by processes that could not write them (starts.py's format)."""
    with open(pending_file(db_url), "a", encoding="utf-8") as fh:
        for a in attempts:
            row = {"trigger": str(a.trigger), "attempted_at": a.attempted_at.isoformat(), "error": a.error}
            fh.write(json.dumps(row | {"host": a.host, "pid": a.pid, "finished_at": a.finished_at.isoformat()}) + "\n")


def failed_rows(engine) -> list[tuple]:
    return [
        (r["trigger"], r["status"], r["started_at"], r["finished_at"], r["error"], r["host"], r["pid"])
        for r in runs(engine)
        if r["error"] and r["error"].startswith("run not started")
    ]


def as_row(a: FailedStart) -> tuple:
    return (str(a.trigger), "failed", naive(a.attempted_at), naive(a.finished_at), a.error, a.host, a.pid)


@pytest.mark.parametrize("where", ["given", "kept", "both"])
def test_attempts_that_could_not_start_are_written_first_oldest_first(where, fresh_db, world, db_url):
    engine = fresh_db()
    given = [attempt(5, "run not started: five"), attempt(30, "run not started: thirty")] if where != "kept" else []
    kept = [attempt(20, "run not started: twenty"), attempt(1, "run not started: one")] if where != "given" else []
    keep_pending(db_url, *kept)
    failed_starts = list(given)
    summary = run_cycle(engine, world, failed_starts=failed_starts)
    expected = sorted(given + kept, key=lambda a: a.attempted_at)
    assert failed_rows(engine) == [as_row(a) for a in expected]
    assert runs(engine)[-1]["id"] == summary.run_id  # then the run's own row
    assert failed_starts == []  # written: the caller keeps them no longer
    leftovers = [f for f in os.listdir(os.path.dirname(pending_file(db_url))) if PENDING_SUFFIX in f]
    assert leftovers == []


def test_attempts_that_cannot_be_written_are_kept_for_the_next_run(fresh_db, world, db_url):
    engine = fresh_db()
    kept = attempt(10, "run not started: kept")
    keep_pending(db_url, kept)
    at = datetime.now(UTC)
    broken = FailedStart(Trigger.SCHEDULE, at, "run not started: x", finished_at="soon")  # type: ignore[arg-type]
    failed_starts = [broken]
    with pytest.raises(sa.exc.StatementError):
        run_cycle(engine, world, failed_starts=failed_starts)
    assert failed_starts == [broken]  # still the caller's
    with open(pending_file(db_url), encoding="utf-8") as fh:
        assert [json.loads(line)["error"] for line in fh] == ["run not started: kept"]
    assert not [f for f in os.listdir(os.path.dirname(pending_file(db_url))) if f.endswith(f".{os.getpid()}")]
    assert runs(engine) == [] and table(engine, "run_lease") == []  # no run began; the lease was let go
    run_cycle(engine, world)
    assert failed_rows(engine) == [as_row(kept)]


def test_a_failure_after_the_lease_is_taken_lets_it_go(fresh_db, world):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        conn.execute(sa.insert(schema.runs).values(trigger="manual", status="running", started_at=datetime.now(UTC)))

    def broken(message: str) -> None:
        raise RuntimeError(f"progress output failed on {message!r}")

    with pytest.raises(RuntimeError, match="closed 1 run"):
        run_cycle(engine, world, progress=Said(then=broken))
    assert table(engine, "run_lease") == []
    assert run_cycle(engine, world).status == "partial"  # not refused: no lease left behind


def test_a_database_that_stays_locked_refuses_the_run_and_keeps_the_attempt(world, db_url, fresh_db):
    fresh_db()  # the schema
    engine = make_engine(db_url, busy_timeout=0.3)
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock
    before = datetime.now(UTC)
    try:
        with pytest.raises(RunNotStarted) as refused:
            run_cycle(engine, world, trigger=Trigger.SCHEDULE)
    finally:
        holder.rollback()
        holder.close()
    attempt_ = refused.value.attempt
    assert attempt_.trigger == Trigger.SCHEDULE and before <= attempt_.attempted_at <= datetime.now(UTC)
    assert not [f for f in os.listdir(os.path.dirname(pending_file(db_url))) if f.endswith(f".{os.getpid()}")]
    assert attempt_.error.startswith("run not started: ") and "locked" in attempt_.error
    assert str(refused.value) == (
        f"{attempt_.error}; not recorded in runs yet: the database is still locked (the next run records it)"
    )
    assert refused.value.recorded is True
    said = Said()
    run_cycle(engine, world, progress=said)
    ((trigger, status, started, _, error, host, pid),) = failed_rows(engine)
    assert (trigger, status, error, host, pid) == (
        "schedule",
        "failed",
        attempt_.error,
        socket.gethostname(),
        os.getpid(),
    )
    assert started == naive(attempt_.attempted_at)
    engine.dispose()


def test_a_stop_request_leaves_the_rest_to_the_next_run(fresh_db, world):
    engine = fresh_db()
    stop = threading.Event()

    def stop_after_first_fit(message: str) -> None:
        if message.startswith("[train 1/"):
            stop.set()

    summary = run_cycle(engine, world, progress=Said(then=stop_after_first_fit), stop=stop)
    (run,) = runs(engine)
    assert summary.stopped and run["status"] == "failed"
    assert run["error"] == "stopped before finishing; completed series are stored, the next run does the rest"


def test_the_given_series_only_and_an_unknown_one_named_with_the_config(fresh_db, world):
    engine = fresh_db()
    summary = run_cycle(engine, world, keys=["csv:b"])
    assert [o.key for o in summary.outcomes] == ["csv:b"]
    assert {r["key"] for r in table(engine, "series")} == {"csv:a", "csv:b", "csv:tiny", "csv:gone"}  # all known
    assert len(table(engine, "observations")) == 40
    with pytest.raises(Exception, match=r"unknown series 'csv:nope': not in the watchlist of test\.toml"):
        run_cycle(engine, world, keys=["csv:nope"])


def test_sources_given_replace_the_kinds_own(fresh_db, world):
    class Fixed:
        def fetch(self, spec, since):
            return pd.DataFrame({"ts": pd.date_range("2021-01-01", periods=30, freq="D"), "value": [5.0] * 30})

    engine = fresh_db()
    summary = run_cycle(engine, world, sources={"csv": Fixed()})
    assert {o.key: o.new_rows for o in summary.outcomes} == {"csv:a": 30, "csv:b": 30, "csv:tiny": 30, "csv:gone": 30}


def test_a_stop_during_ingest_fetches_and_plans_nothing_more(fresh_db, world):
    engine = fresh_db()
    stop = threading.Event()

    def stop_after_first_fetch(message: str) -> None:
        if message.startswith("[ingest 1/"):
            stop.set()

    summary = run_cycle(engine, world, progress=Said(then=stop_after_first_fetch), stop=stop)
    assert [(o.key, o.new_rows, o.fit) for o in summary.outcomes] == [
        ("csv:a", 60, "pending"),
        ("csv:b", 0, "pending"),
        ("csv:tiny", 0, "pending"),
        ("csv:gone", 0, "pending"),
    ]
    assert table(engine, "fits") == []  # not even the short series' skip row: nothing was planned
    (run,) = runs(engine)
    assert (run["status"], run["new_observations"], run["series_skipped"]) == ("failed", 60, 0)


def test_the_lease_names_the_run_and_is_renewed_while_a_fit_goes_on(fresh_db, world, monkeypatch):
    engine = fresh_db()
    monkeypatch.setattr(cycle, "Heartbeat", lambda lease: Heartbeat(lease, interval=0.05))
    seen = []

    def look(message: str) -> None:
        if message.startswith("[train 1/"):
            ((run_id, first),) = [(r["run_id"], r["expires_at"]) for r in table(engine, "run_lease")]
            time.sleep(0.5)  # a long fit: the heartbeat renews the lease meanwhile
            ((_, second),) = [(r["run_id"], r["expires_at"]) for r in table(engine, "run_lease")]
            seen.append((run_id, first < second))

    summary = run_cycle(engine, world, progress=Said(then=look))
    assert seen == [(summary.run_id, True)]


def test_a_run_that_fails_keeps_its_own_error_when_its_bookkeeping_fails_too(world, db_url, fresh_db):
    fresh_db()
    engine = make_engine(db_url, busy_timeout=0.3)
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"))

    def lock_then(fail: bool):
        def at_the_fit(message: str) -> None:
            if message.startswith("[train 1/"):
                holder.execute("BEGIN IMMEDIATE")  # the database goes away for the bookkeeping
                if fail:
                    raise RuntimeError("the run's own failure")

        return at_the_fit

    try:
        with pytest.raises(RuntimeError, match="the run's own failure"):
            run_cycle(engine, world, keys=["csv:a"], progress=Said(then=lock_then(True)))
        holder.rollback()
        with write_transaction(engine) as conn:  # the lease it could not release, as if expired
            conn.execute(sa.delete(schema.run_lease))
        with pytest.raises(DatabaseLocked):  # a run that went well: its bookkeeping's failure is the error
            run_cycle(engine, world, keys=["csv:b"], progress=Said(then=lock_then(False)))
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()


def test_a_fit_that_fails_is_said_as_a_problem_and_counted(fresh_db, world, monkeypatch):
    real = AutoForecaster.fit

    def failing_for_b(self, y, *args, **kwargs):
        if len(y) == 40:
            raise FloatingPointError("overflow in the fit")
        return real(self, y, *args, **kwargs)

    monkeypatch.setattr(AutoForecaster, "fit", failing_for_b)
    engine = fresh_db()
    said = Said()
    summary = run_cycle(engine, world, progress=said)
    outcome = {o.key: o for o in summary.outcomes}["csv:b"]
    assert (outcome.fit, outcome.error, outcome.mode) == ("failed", "FloatingPointError: overflow in the fit", "cold")
    assert ("[train 2/2] csv:b: failed: FloatingPointError: overflow in the fit", True) in said.lines
    (run,) = runs(engine)
    assert (run["series_ok"], run["series_failed"]) == (1, 2)


def test_a_backfill_says_each_past_origin_and_counts_series_with_none_left_as_ok(fresh_db, world):
    engine = fresh_db()
    run_cycle(engine, world)
    said = Said()
    summary = run_cycle(engine, world, keys=["csv:a"], backfill=Backfill(origins=2), progress=said)
    trains = [m for m, _ in said.lines if m.startswith("[train ")]
    assert len(trains) == 2 and all(
        re.match(r"\[train \d/2\] csv:a at \d{4}-\d\d-\d\d: cold fit in ", m) for m in trains
    )
    assert summary.timings.keys() == {"plan", "train"}  # no ingest
    again = run_cycle(engine, world, keys=["csv:a"], backfill=Backfill(origins=2))  # nothing left to fill
    assert [o.fit for o in again.outcomes] == ["up-to-date"]
    assert runs(engine)[-1]["series_ok"] == 1 and again.status == "ok"


def test_a_runs_time_is_its_own(fresh_db, world):
    engine = fresh_db()
    started = time.perf_counter()
    summary = run_cycle(engine, world)
    assert 0 < summary.seconds <= time.perf_counter() - started


@pytest.fixture
def group_world(make_settings, make_series, db_url):
    """Three monthly series of one shape, trained as one group."""
    rng = np.random.default_rng(5)
    t = np.arange(48)
    for i in range(3):
        values = rng.uniform(20, 200) * (1 + 0.2 * np.sin(2 * np.pi * t / 12 + i)) * np.exp(rng.normal(0, 0.03, 48))
        make_series(f"m{i}", values, start="2015-01-01", freq="MS")
    entries = "".join(f'[[series]]\nkey = "csv:m{i}"\npath = "m{i}.csv"\n' for i in range(3))
    model = small_model(group_min_series=3) + 'training = "group"\n'
    return make_settings("[watchlist]\nsample = []\n" + entries + model, db_url=db_url)


def test_a_groups_fit_is_one_line_naming_the_group(fresh_db, group_world):
    engine = fresh_db()
    said = Said()
    summary = run_cycle(engine, group_world, progress=said)
    trains = [line for line in said.lines if line[0].startswith("[train ")]
    assert len(trains) == 1 and trains[0][1] is False
    assert re.fullmatch(r"\[train 1/1\] group M/12 \(3 series\): cold group fit in \d+\.\d s", trains[0][0])
    assert [(o.key, o.fit, o.mode) for o in summary.outcomes] == [
        ("csv:m0", "trained", "cold"),
        ("csv:m1", "trained", "cold"),
        ("csv:m2", "trained", "cold"),
    ]
    assert all(o.fit_id is not None for o in summary.outcomes)


def test_a_group_whose_fit_fails_is_one_problem_line_and_each_member_failed(fresh_db, group_world, monkeypatch):
    def diverged(self, ys, *args, **kwargs):
        raise FloatingPointError("overflow across the group")

    monkeypatch.setattr(AutoForecaster, "fit_many", diverged)
    engine = fresh_db()
    said = Said()
    summary = run_cycle(engine, group_world, progress=said)
    assert (
        "[train 1/1] group M/12 (3 series): failed: FloatingPointError: overflow across the group",
        True,
    ) in said.lines
    assert {(o.fit, o.error) for o in summary.outcomes} == {("failed", "FloatingPointError: overflow across the group")}
    assert summary.status == "failed"


def test_auto_keeping_per_series_models_for_a_group_of_one_says_its_decision(
    fresh_db, make_settings, make_series, db_url, monkeypatch
):
    """A group of one member (group_min_series = 1) under ``auto``: its shared fit fails, so the
    series' own model is kept, and the group's line names that decision and the time of both fits."""

    def diverged(self, ys, *args, **kwargs):
        raise FloatingPointError("overflow across the group")

    monkeypatch.setattr(AutoForecaster, "fit_many", diverged)
    t = np.arange(48)
    make_series("m0", 50 * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) + t, start="2015-01-01", freq="MS")
    model = small_model(group_min_series=1) + 'training = "auto"\n'
    settings = make_settings(
        '[watchlist]\nsample = []\n[[series]]\nkey = "csv:m0"\npath = "m0.csv"\n' + model, db_url=db_url
    )
    engine = fresh_db()
    said = Said()
    summary = run_cycle(engine, settings, progress=said)
    (fit,) = table(engine, "fits")
    assert fit["scope"] == "series" and fit["status"] == "ok" and fit["group_key"] == "M/12"
    assert fit["note"] == (
        "auto: per-series models kept for group M/12: its model failed (FloatingPointError: overflow across the group)"
    )
    trains = [line for line in said.lines if line[0].startswith("[train ")]
    assert len(trains) == 1 and trains[0][1] is False
    assert re.fullmatch(
        rf"\[train 1/1\] group M/12 \(1 series\): {re.escape(fit['note'])}; cold fits in \d+\.\d s", trains[0][0]
    )
    assert [(o.key, o.fit, o.mode) for o in summary.outcomes] == [("csv:m0", "trained", "cold")]


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (RuntimeError("progress output failed"), "RuntimeError: progress output failed"),
        (
            StopNow("stopped at once (a second stop signal)"),  # a forced stop: what is kept
            "stopped at once (a second stop signal); completed series are stored, the next run does the rest",
        ),
    ],
)
def test_a_run_that_fails_records_why_in_one_line_and_lets_the_lease_go(exc, error, fresh_db, world):
    engine = fresh_db()

    def broken(message: str) -> None:
        if message.startswith("[train 1/"):
            raise exc

    with pytest.raises(type(exc)):
        run_cycle(engine, world, progress=Said(then=broken))
    (run,) = runs(engine)
    assert (run["status"], run["error"]) == ("failed", error)
    assert table(engine, "run_lease") == []
