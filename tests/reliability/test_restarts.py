"""`serve` restarted after a missed schedule catches up exactly once; a run interrupted by SIGTERM
or by kill -9 resumes cleanly on the next start."""

from __future__ import annotations

import signal
import time

from ..support.daemon import Daemon
from .scenario import crash_invariants, make_world, query, snapshot

MIDNIGHT_UTC = '\n[schedule]\ncron = "0 0 * * *"\ntimezone = "UTC"\n'  # always fired less than a day ago


def world(tmp_path):
    env = make_world(tmp_path)
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(cfg.read_text().replace("epochs = 4", "epochs = 40\npatience = 100") + MIDNIGHT_UTC)
    return env


def test_serve_killed_mid_run_then_restarted_catches_up_once_and_resumes(tmp_path, ledger):
    env = world(tmp_path)
    first = Daemon(["serve"], env)
    first.wait_for("catching up the run scheduled for")
    first.wait_for("[train 2/4]")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)
    assert crash_invariants(env) == []
    assert query(env, "SELECT status FROM runs") == [("running",)]  # what a crash leaves behind

    second = Daemon(["serve"], env)
    second.wait_for("catching up the run scheduled for")
    second.wait_for("took over a stale run lease")
    second.wait_for("finished: ok")
    assert second.terminate() == 0
    assert [r for r in query(env, "SELECT trigger, status FROM runs ORDER BY id")] == [
        ("catch-up", "failed"),
        ("catch-up", "ok"),
    ]
    assert query(env, "SELECT error FROM runs WHERE id = 1")[0][0].startswith("abandoned")
    assert query(env, "SELECT count(*) FROM fits") == [(4,)]  # each series trained exactly once

    third = Daemon(["serve"], env)  # the missed run is done: nothing to catch up any more
    third.wait_for("next run")
    time.sleep(1.0)
    assert third.terminate() == 0
    assert not any("catching up" in line for line in third.lines)
    assert len(query(env, "SELECT id FROM runs")) == 2
    assert query(env, "SELECT count(*) FROM run_lease") == [(0,)]
    ledger.record("restarts: kill -9 of serve mid-run", survived=True)


def test_serve_stopped_by_sigterm_mid_run_resumes_on_the_next_start(tmp_path, ledger):
    env = world(tmp_path)
    first = Daemon(["serve"], env)
    first.wait_for("[train 1/4]")
    assert first.terminate() == 0
    trained_before = query(env, "SELECT count(*) FROM fits")[0][0]
    assert 1 <= trained_before < 4
    assert query(env, "SELECT status FROM runs") == [("failed",)]
    before = snapshot(env)

    second = Daemon(["serve"], env)
    second.wait_for("catching up the run scheduled for")
    second.wait_for("finished: ok")
    assert second.terminate() == 0
    after = snapshot(env)
    assert all(before[t] <= after[t] for t in before)  # nothing the first run stored was lost or changed
    assert query(env, "SELECT count(*) FROM fits") == [(4,)]
    assert [r[0] for r in query(env, "SELECT status FROM runs ORDER BY id")] == ["failed", "ok"]
    ledger.record("restarts: SIGTERM mid-run", survived=True)
