"""Waiting for SQLite's write lock (service/locks.py) in this process, against a real foreign writer
(another process holding ``BEGIN IMMEDIATE`` on the file): the wait said once, naming who waits for
whom; the error when it runs out or a stop was requested; the connection's busy timeout restored;
who holds a lock, read from /proc/locks. tests/reliability/test_locks.py runs whole ``tickcast``
processes against the same writer."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tickcast.service import locks
from tickcast.service.locks import (
    DatabaseLocked,
    begin_immediate,
    describe_holders,
    stop_waiting,
    wait_text,
    write_lock_holders,
)

from .support.foreign import foreign_writer
from .support.warnings_said import warnings_of


@pytest.fixture(autouse=True)
def no_stop(monkeypatch):
    monkeypatch.setattr(locks, "_stop_deadline", None)


@pytest.fixture
def database(tmp_path):
    """A SQLite file in WAL mode, and our own connection on it (transactions begun by hand)."""
    path = str(tmp_path / "t.db")
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("CREATE TABLE t (x)")
    yield path, raw
    raw.close()


@pytest.fixture
def said():
    with warnings_of("tickcast.db") as handler:
        yield handler


def busy_timeout(raw) -> int:
    return raw.execute("PRAGMA busy_timeout").fetchone()[0]


def test_a_free_database_is_locked_at_once_and_the_busy_timeout_restored(database, said):
    path, raw = database
    raw.execute("PRAGMA busy_timeout = 1234")
    begin_immediate(raw, path, 5.0, 60_000)
    assert raw.in_transaction and busy_timeout(raw) == 60_000
    raw.execute("INSERT INTO t VALUES (1)")
    raw.execute("COMMIT")
    assert said.lines == []


def test_a_lock_held_past_the_wait_is_one_error_naming_its_holder(database, said):
    path, raw = database
    with foreign_writer(path) as writer:
        started = time.monotonic()
        with pytest.raises(DatabaseLocked) as locked:
            begin_immediate(raw, path, 1.5, 45_000)
        waited = time.monotonic() - started
    assert str(locked.value) == (
        f"the database {path} stayed locked for 1.5 s (service.busy_timeout_minutes), "
        f"its write lock held by pid {writer.pid}"
    )
    assert 1.5 <= waited < 30
    assert not raw.in_transaction and busy_timeout(raw) == 45_000
    assert said.lines == [  # said once, however many slices the wait took
        f"pid {os.getpid()} is waiting for the write lock on {path}, held by pid {writer.pid} "
        "(up to 1.5 s: service.busy_timeout_minutes)"
    ]


def test_a_wait_shorter_than_a_slice_is_not_cut_to_nothing(database, said):
    path, raw = database
    with foreign_writer(path), pytest.raises(DatabaseLocked, match=r"stayed locked for 0\.3 s"):
        started = time.monotonic()
        begin_immediate(raw, path, 0.3, 1000)
    assert 0.3 <= time.monotonic() - started < 20


def test_the_lock_let_go_during_the_wait_is_taken(database, said):
    path, raw = database
    done: list = []
    with foreign_writer(path) as writer:
        waiter = threading.Thread(target=lambda: done.append(begin_immediate(raw, path, 120.0, 7000)))
        waiter.start()
        assert said.first.wait(60)  # it waits, and said so
        assert said.lines[0].endswith(f"held by pid {writer.pid} (up to 2 min: service.busy_timeout_minutes)")
        writer.release()
        waiter.join(60)
    assert done == [None] and raw.in_transaction and busy_timeout(raw) == 7000
    assert len(said.lines) == 1
    raw.execute("ROLLBACK")


def test_a_stop_request_ends_the_wait_within_its_grace(database, said):
    path, raw = database
    with foreign_writer(path) as writer:
        stop_waiting(grace=0.5)
        first = locks._stop_deadline
        stop_waiting(grace=100)  # a second request does not move the deadline
        assert locks._stop_deadline == first
        started = time.monotonic()
        with pytest.raises(DatabaseLocked) as stopped:
            begin_immediate(raw, path, 600.0, 5000)
    assert str(stopped.value) == f"stopped while waiting for the write lock on {path}, held by pid {writer.pid}"
    assert time.monotonic() - started < 30 and busy_timeout(raw) == 5000


def test_a_stop_past_its_deadline_does_not_end_a_wait_for_a_free_lock(database):
    path, raw = database
    stop_waiting(grace=0)
    begin_immediate(raw, path, 1.0, 5000)  # nobody holds it: taken
    assert raw.in_transaction
    raw.execute("ROLLBACK")


def test_an_error_other_than_busy_is_raised_as_it_is(database, said):
    path, raw = database
    raw.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
        begin_immediate(raw, path, 5.0, 3000)
    assert busy_timeout(raw) == 3000 and said.lines == []
    raw.execute("ROLLBACK")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(600, "10 min"), (60, "1 min"), (90, "1.5 min"), (59.5, "59.5 s"), (1.2, "1.2 s"), (0.25, "0.25 s")],
)
def test_a_wait_is_said_in_minutes_from_one_minute_on(seconds, text):
    assert wait_text(seconds) == text


# A process holding POSIX write locks on some bytes of a file (as SQLite's own locks are).
BYTE_LOCKER = textwrap.dedent("""
    import fcntl, select, sys
    fh = open(sys.argv[1], "r+b")
    for offset in sys.argv[2:]:
        fcntl.lockf(fh, fcntl.LOCK_EX, 1, int(offset))
    print("holding", flush=True)
    select.select([sys.stdin], [], [], 120)
""")


def lock_bytes(path: str, *offsets: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", BYTE_LOCKER, path, *map(str, offsets)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_the_holders_are_the_other_processes_with_write_locks_on_the_file_or_its_wal_index(tmp_path):
    path = str(tmp_path / "x.db")
    for name in (path, path + "-shm", str(tmp_path / "other.db")):
        with open(name, "wb") as fh:
            fh.write(b"\0" * 64)
    assert write_lock_holders(path) == [] and describe_holders(path) == "another process"
    assert write_lock_holders(str(tmp_path / "missing.db")) == []
    procs = [lock_bytes(path, 1, 3), lock_bytes(path + "-shm", 2), lock_bytes(str(tmp_path / "other.db"), 1)]
    try:
        # a read lock of a fourth process, and our own write lock, are not holders
        with open(path, "r+b") as own:
            fcntl.lockf(own, fcntl.LOCK_EX, 1, 10)
            reader = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import fcntl, select, sys; fh = open(sys.argv[1], 'rb'); fcntl.lockf(fh, fcntl.LOCK_SH, 1, 20);"
                    " print('holding', flush=True); select.select([sys.stdin], [], [], 120)",
                    path,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(reader)
            assert reader.stdout.readline().strip() == "holding"
            holders = write_lock_holders(path)  # in /proc/locks' order, each once
            assert sorted(holders) == sorted([procs[0].pid, procs[1].pid]) and len(holders) == 2
            assert describe_holders(path) == "pids " + ", ".join(map(str, holders))
            assert write_lock_holders(path + "-shm") == [procs[1].pid]
            assert describe_holders(path + "-shm") == f"pid {procs[1].pid}"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(30)


def test_no_proc_locks_no_holders(tmp_path, monkeypatch):
    path = str(tmp_path / "x.db")
    open(path, "wb").close()
    real_open = open

    def no_proc(name, *args, **kwargs):
        if name == "/proc/locks":
            raise PermissionError(name)
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_proc)
    assert write_lock_holders(path) == [] and describe_holders(path) == "another process"


def test_a_stop_request_gives_the_wait_its_grace_from_now():
    before = time.monotonic()
    stop_waiting(grace=30)
    assert before + 29 < locks._stop_deadline <= time.monotonic() + 30


@pytest.mark.parametrize(
    ("message", "busy"),
    [
        ("database is locked", True),
        ("database table is locked", True),
        ("database is busy", True),
        ("disk I/O error", False),
        ("cannot start a transaction within a transaction", False),
    ],
)
def test_only_a_lock_held_by_another_is_waited_for(message, busy):
    assert locks._is_busy(sqlite3.OperationalError(message)) is busy


def test_the_wal_index_alone_names_its_holder_and_an_flock_is_not_sqlites(tmp_path):
    path = str(tmp_path / "gone.db")  # the database file itself missing, its -shm there and locked
    with open(path + "-shm", "wb") as fh:
        fh.write(b"\0" * 64)
    holder = lock_bytes(path + "-shm", 4)
    flocker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, select, sys; fh = open(sys.argv[1], 'rb'); fcntl.flock(fh, fcntl.LOCK_EX);"
            " print('holding', flush=True); select.select([sys.stdin], [], [], 120)",
            path + "-shm",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert flocker.stdout.readline().strip() == "holding"
        assert write_lock_holders(path) == [holder.pid]  # not the flock's holder: SQLite takes POSIX locks
    finally:
        for proc in (holder, flocker):
            proc.kill()
            proc.wait(30)


def test_lines_of_proc_locks_that_name_no_holder_are_skipped(tmp_path, monkeypatch):
    """/proc/locks as the kernel writes it, with the lines a holder is not read from: a waiter
    (``->``), flock and open-file-description locks, read locks, other files, a pid that is not a
    number, the kernel's pid 0, our own pid, a holder listed twice."""
    path = str(tmp_path / "x.db")
    open(path, "wb").close()
    st = os.stat(path)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    other = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino + 1}"
    text = "\n".join(
        [
            f"1: POSIX  ADVISORY  WRITE 4001 {inode} 0 EOF",
            f"1: -> POSIX  ADVISORY  WRITE 4002 {inode} 0 EOF",
            f"2: FLOCK  ADVISORY  WRITE 4003 {inode} 0 EOF",
            f"3: OFDLCK ADVISORY  WRITE -1 {inode} 0 EOF",
            f"4: POSIX  ADVISORY  READ 4004 {inode} 0 EOF",
            f"5: POSIX  ADVISORY  WRITE 4005 {other} 0 EOF",
            f"6: POSIX  ADVISORY  WRITE x17 {inode} 0 EOF",
            f"7: POSIX  ADVISORY  WRITE 0 {inode} 0 EOF",
            f"8: POSIX  ADVISORY  WRITE {os.getpid()} {inode} 0 EOF",
            f"9: POSIX  ADVISORY  WRITE 1 {inode} 0 EOF",
            "10: POSIX ADVISORY WRITE",
            f"11: POSIX  ADVISORY  WRITE 4001 {inode} 1 1",
        ]
    )
    real_open = open

    def fake(name, *args, **kwargs):
        if name == "/proc/locks":
            import io

            return io.StringIO(text + "\n")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake)
    assert write_lock_holders(path) == [4001, 1]


class Recording:
    """A connection that records its statements (and, ``refusing``, refuses every BEGIN IMMEDIATE
    at once, as SQLite does when it will not wait: a deadlock it foresees, a WAL recovery)."""

    def __init__(self, raw, refusing: bool = False):
        self.raw, self.refusing, self.calls = raw, refusing, []

    def execute(self, sql: str):
        self.calls.append(sql)
        if self.refusing and sql == "BEGIN IMMEDIATE":
            raise sqlite3.OperationalError("database is locked")
        return self.raw.execute(sql)

    def begins(self) -> int:
        return sum(sql == "BEGIN IMMEDIATE" for sql in self.calls)


def test_the_wait_is_spent_inside_sqlite_in_slices_of_a_second_and_said_once(database, said):
    path, raw = database
    recording = Recording(raw)
    with foreign_writer(path), pytest.raises(DatabaseLocked):
        begin_immediate(recording, path, 2.5, 45_000)
    assert recording.calls[0] == "PRAGMA busy_timeout = 1000" and recording.calls[-1] == "PRAGMA busy_timeout = 45000"
    assert 2 <= recording.begins() <= 4  # each attempt waited a second inside SQLite: no spinning
    assert len(said.lines) == 1  # after the first slice, not after each


def test_a_wait_shorter_than_a_second_is_one_slice_of_its_own_length(database):
    path, raw = database
    recording = Recording(raw)
    with foreign_writer(path), pytest.raises(DatabaseLocked):
        begin_immediate(recording, path, 0.3, 2000)
    assert recording.calls[0] == "PRAGMA busy_timeout = 300" and recording.calls[-1] == "PRAGMA busy_timeout = 2000"


def test_refusals_without_waiting_are_paced_not_spun(database):
    path, raw = database
    recording = Recording(raw, refusing=True)
    with pytest.raises(DatabaseLocked):
        begin_immediate(recording, path, 0.5, 2000)
    assert 3 <= recording.begins() <= 12  # one every 0.05 s: neither a busy loop nor one long sleep
