"""A foreign writer: another process (not tickcast) that takes the database's write lock and holds
it, the way a backup script, a bulk load or someone's open sqlite3 shell would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

# Each holds the lock until told to let go (a line on its stdin), or for at most argv[2] seconds: a
# test releases it on a readiness signal (tickcast said it waits), never after a guessed delay.
SQLITE_WRITER = textwrap.dedent("""
    import select, sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE IF NOT EXISTS foreign_scratch (x)")
    conn.execute("INSERT INTO foreign_scratch VALUES (1)")
    print("holding", flush=True)
    select.select([sys.stdin], [], [], float(sys.argv[2]))
    conn.execute("ROLLBACK")
    print("released", flush=True)
""")

POSTGRES_WRITER = textwrap.dedent("""
    import psycopg, select, sys
    with psycopg.connect(sys.argv[1], application_name="foreign-writer") as conn:
        conn.execute("LOCK TABLE run_lease IN ACCESS EXCLUSIVE MODE")
        print("holding", flush=True)
        select.select([sys.stdin], [], [], float(sys.argv[2]))
    print("released", flush=True)
""")


class ForeignWriter:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        """Let go of the lock now (and wait until it has)."""
        if self.proc.poll() is None:
            self.proc.stdin.write("release\n")
            self.proc.stdin.flush()
        self.wait_released()

    def wait_released(self, timeout: float = 60) -> None:
        assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait(timeout=timeout)


@contextmanager
def foreign_writer(url_or_path: str, hold_seconds: float = 300, postgres: bool = False) -> Iterator[ForeignWriter]:
    """Hold the write lock of a SQLite file (or, on PostgreSQL, an exclusive lock on ``run_lease``) in
    another process until ``release()`` (or at most ``hold_seconds``, or the end of the block); the
    block runs once the lock is held."""
    script = POSTGRES_WRITER if postgres else SQLITE_WRITER
    target = url_or_path.replace("postgresql+psycopg://", "postgresql://") if postgres else url_or_path
    proc = subprocess.Popen(
        [sys.executable, "-c", script, target, str(hold_seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        if line != "holding":
            proc.wait(timeout=30)
            raise AssertionError(f"the foreign writer did not take the lock: {proc.stderr.read()}")
        yield ForeignWriter(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
