"""`tickcast backup` and the files around it: a destination that is one of the database's own side
files (which SQLite deletes as it pleases) is refused, and a backup killed half-way (kill -9) leaves
a temporary file that the next backup into that directory removes, while one still being written by
a live backup is left alone."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from ..support.cli import tickcast_executable
from .scenario import database, make_world, run_tickcast

PARTIAL_PREFIX = ".tickcast-backup-"


def initialised(tmp_path, filler_mb: int = 0) -> dict:
    env = make_world(tmp_path)
    assert run_tickcast(env, "init").returncode == 0
    if filler_mb:  # a table of the user's own, to make the copy take a while
        conn = sqlite3.connect(database(env))
        conn.execute("CREATE TABLE filler (b BLOB)")
        conn.executemany("INSERT INTO filler VALUES (randomblob(1048576))", [()] * filler_mb)
        conn.commit()
        conn.close()
    return env


@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
def test_a_backup_to_the_databases_own_side_file_is_refused(tmp_path, suffix, ledger):
    env = initialised(tmp_path)
    target = f"{database(env)}{suffix}"
    existed = os.path.exists(target)
    done = run_tickcast(env, "backup", target)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"tickcast: {target} is the name of the database's own {suffix} file, which SQLite deletes or rewrites "
        "as it works: the backup would vanish; choose another file name"
    ]
    assert os.path.exists(target) == existed  # nothing written there, nothing removed
    assert sqlite3.connect(database(env)).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    ledger.record("backup: destination is a SQLite side file")


def partials(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(PARTIAL_PREFIX))


def test_a_backup_killed_half_way_leaves_nothing_behind_after_the_next_backup(tmp_path, ledger):
    env = initialised(tmp_path, filler_mb=40)
    out = tmp_path / "backups"
    out.mkdir()
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env
    killed = None
    for _attempt in range(5):  # catch it while it writes its temporary file (a fraction of a second)
        proc = subprocess.Popen(tickcast_executable() + ["backup", str(out / "first.db")], env=full)
        while proc.poll() is None and not partials(out):
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            killed = proc
            break
        proc.wait()
        os.unlink(out / "first.db")  # finished before it could be caught: try again
    assert killed is not None, "the backup was never caught half-way"
    left = partials(out)
    assert left and not (out / "first.db").exists()  # what kill -9 leaves: a hidden partial copy

    # a backup being written by another (live) process right now must survive the clean-up
    busy = out / f"{PARTIAL_PREFIX}busy.db"
    busy.write_bytes(b"in progress")
    holder = os.open(busy, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        done = run_tickcast(env, "backup", str(out / "second.db"))
    finally:
        still_there = busy.exists()
        os.close(holder)
    assert done.returncode == 0, done.stderr
    assert still_there
    assert partials(out) == [busy.name]  # the killed backup's file (and journal) are gone
    copy = sqlite3.connect(out / "second.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT count(*) FROM filler").fetchone() == (40,)
    ledger.record("backup: kill -9 half-way, then another backup")
