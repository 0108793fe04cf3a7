"""Disk trouble: a database directory tickcast may not write, and a disk that fills up mid-write.

Through the real ``tickcast`` entry point in a subprocess. The promise: one clear line on stderr, a
non-zero exit, no traceback, and no damage (``PRAGMA integrity_check`` is ok and every row stored
before is still there, unchanged).

Read-only: root ignores file permissions, so as root the subprocess runs without the capabilities
that let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH; ``setpriv --bounding-set``): it is then bound
by the mode bits like any unprivileged user, while still able to run the venv's interpreter, which
lives under /root (0700) where the ``postgres`` user could not reach it. As another user, plain
chmod is enough.

Full: as root, a small tmpfs mounted as the data directory; otherwise (or where mounting is not
allowed) a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) set in the subprocess. Both are used as
root, so both paths are exercised. Sizes are chosen so that the first, small series fits and the
big one does not: the failure happens mid-write, which each test checks (there was room when the
write began, and the same write succeeds with room to spare).
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd
import pytest

from .conftest import seeded_subset

IS_ROOT = os.geteuid() == 0
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
TABLES = {"series", "observations", "runs", "fits", "loss_history", "forecasts", "run_lease", "alembic_version"}


# --- helpers ----------------------------------------------------------------------------------------


def tickcast(
    *args: str, cwd: Path, unprivileged: bool = False, preexec_fn=None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, with no TICKCAST_* variables and no HOME."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    argv = [sys.executable, "-m", "tickcast", *args]
    if unprivileged and IS_ROOT:
        argv = DROP_DAC + argv
    return subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, preexec_fn=preexec_fn
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode not in (0, 3), (done.returncode, done.stdout, done.stderr)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    lines = done.stderr.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("tickcast: "), done.stderr
    return lines[0]


def snapshot(db: Path) -> dict:
    """Integrity, the tables, and every stored observation."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = conn.execute(
            "SELECT s.key, o.ts, o.value FROM observations o JOIN series s ON s.id = o.series_id ORDER BY 1, 2"
        ).fetchall()
    return dict(integrity=integrity, tables=tables, rows=rows)


def assert_intact(db: Path, before: dict) -> int:
    """The database is whole and holds every row it held before; returns the number of rows lost."""
    after = snapshot(db)
    assert after["integrity"] == [("ok",)], after["integrity"]
    assert TABLES <= after["tables"]
    kept = set(after["rows"])
    lost = [row for row in before["rows"] if row not in kept]
    assert not lost, lost[:5]
    return len(lost)


@functools.cache
def series_text(points: int, start: str, freq: str) -> str:
    dates = pd.date_range(start, periods=points, freq=freq)
    return "date,value\n" + "".join(
        f"{d:%Y-%m-%d},{100 + (i % 17) * 0.75 + i * 0.01:.4f}\n" for i, d in enumerate(dates)
    )


def write_series(path: Path, points: int, start: str = "2023-01-02", freq: str = "B") -> Path:
    path.write_text(series_text(points, start, freq))
    return path


@pytest.fixture
def world():
    """A directory every user can traverse (pytest's tmp dirs are 0700), with a config of two local
    series: ``csv:small`` (60 trading days) and ``csv:big`` (40,000 days, about 1 MB once stored)."""
    root = Path(tempfile.mkdtemp(prefix="tickcast-disk-"))
    os.chmod(root, 0o755)
    write_series(root / "small.csv", 60)
    write_series(root / "big.csv", 40_000, start="1900-01-01", freq="D")
    (root / "tickcast.toml").write_text(
        '[service]\nworkers = 1\n\n[[series]]\nkey = "csv:small"\npath = "small.csv"\n\n'
        '[[series]]\nkey = "csv:big"\npath = "big.csv"\n\n[model]\nepochs = 2\nhidden_size = 4\nmax_points = 200\n'
    )
    yield root
    for path in root.rglob("*"):  # undo the chmods so the tree can be removed
        if path.is_dir() and not path.is_mount():
            os.chmod(path, 0o755)
    shutil.rmtree(root, ignore_errors=True)


def cli(world: Path, db: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return tickcast(
        "--config", str(world / "tickcast.toml"), "--db", f"sqlite:///{db}", "-q", *args, cwd=world, **kwargs
    )


# --- read-only -----------------------------------------------------------------------------------------

COMMANDS = [
    ("init",),
    ("ingest",),
    ("ingest", "csv:small"),
    ("run",),
    ("run", "csv:small"),
    ("health",),
    ("forecasts",),
    ("history", "csv:small"),
]


@pytest.mark.parametrize("command", seeded_subset(COMMANDS, 2))
def test_read_only_directory_without_a_database(command, world, ledger):
    """(a) The data directory exists but may not be written, and holds no database yet."""
    data = world / "data"
    data.mkdir()
    os.chmod(data, 0o555)
    done = cli(world, data / "tickcast.db", *command, unprivileged=True)
    line = one_line_error(done)
    if command[0] in ("health", "forecasts", "history"):  # read commands never try to create one
        assert line.startswith(f"tickcast: no database at {data / 'tickcast.db'}"), line
    else:
        assert "unable to open database file" in line or "readonly database" in line, line
    assert list(data.iterdir()) == []  # nothing half-created
    ledger.record("disk: read-only")


@pytest.fixture(scope="module")
def populated_template(tmp_path_factory) -> Path:
    """A database populated (ingested, trained, forecast) by a privileged run, once per module."""
    root = tmp_path_factory.mktemp("populated")
    write_series(root / "small.csv", 60)
    (root / "t.toml").write_text(
        '[service]\nworkers = 1\n\n[[series]]\nkey = "csv:small"\npath = "small.csv"\n\n'
        "[model]\nepochs = 2\nhidden_size = 4\nmax_points = 200\n"
    )
    db = root / "tickcast.db"
    done = tickcast("--config", str(root / "t.toml"), "--db", f"sqlite:///{db}", "-q", "run", cwd=root)
    assert done.returncode == 0, done.stderr
    assert not Path(f"{db}-wal").exists()  # everything is in the file: a plain copy is the database
    return db


@pytest.fixture
def populated(world, populated_template):
    data = world / "data"
    data.mkdir()
    db = data / "tickcast.db"
    shutil.copyfile(populated_template, db)
    before = snapshot(db)
    assert len(before["rows"]) == 60
    return data, db, before


@pytest.mark.parametrize(
    "case",
    seeded_subset([(command, layout) for layout in ("directory and file", "file only") for command in COMMANDS], 3),
)
def test_read_only_database_populated_before(case, populated, world, ledger):
    """(b) The database is there, but this user may not write it: the directory and the file
    (e.g. a volume owned by another user), or only the file (SQLite could still create its -wal
    and -shm files beside it). Writers fail in one line; nothing stored changes."""
    command, layout = case
    data, db, before = populated
    os.chmod(db, 0o444)
    if layout == "directory and file":
        os.chmod(data, 0o555)
    done = cli(world, db, *command, unprivileged=True)
    if done.returncode == 0:  # a command with nothing to write may succeed: fine, if it says so truthfully
        assert command[0] in ("init", "health", "forecasts", "history") and done.stdout.strip(), done
        assert command[0] != "init" or "already at revision" in done.stdout, done.stdout
        assert "Traceback" not in done.stderr
    else:
        line = one_line_error(done)
        assert any(
            reason in line for reason in ("readonly database", "unable to open database file", "disk I/O error")
        ), line
    os.chmod(data, 0o755)
    rows_lost = assert_intact(db, before)
    ledger.record("disk: read-only", rows_lost=rows_lost)


# --- full disk -----------------------------------------------------------------------------------------


def _can_mount() -> bool:
    if not IS_ROOT or not shutil.which("mount"):
        return False
    probe = tempfile.mkdtemp(prefix="tickcast-mount-")
    try:
        ok = (
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True).returncode
            == 0
        )
        if ok:
            subprocess.run(["umount", probe], check=True)
        return ok
    finally:
        os.rmdir(probe)


CAN_MOUNT = _can_mount()
KIND = [
    pytest.param(
        "tmpfs",
        marks=pytest.mark.skipif(not CAN_MOUNT, reason="needs root and mount; the rlimit case covers the same path"),
    ),
    "rlimit",
]
# `run` with the file-size limit repeats the ingest case's path: by default only where tmpfs cannot be had
RUN_KIND = KIND if not CAN_MOUNT else [KIND[0], pytest.param("rlimit", marks=pytest.mark.slow)]


@contextmanager
def small_disk(world: Path, kind: str, size_kb: int):
    """A data directory with about ``size_kb`` KiB of room: a tmpfs of that size, or a file-size
    limit of that many KiB on each file the subprocess writes. Yields (directory, preexec_fn)."""
    data = world / f"data-{kind}"
    data.mkdir()
    if kind == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(data)], check=True)
        try:
            yield data, None
        finally:
            if subprocess.run(["umount", str(data)]).returncode != 0:
                subprocess.run(["umount", "--lazy", str(data)], check=True)  # never leave a mount behind
    else:

        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (size_kb * 1024, size_kb * 1024))

        yield data, limit


def room_left(data: Path, kind: str, size_kb: int, db: Path) -> int:
    """Bytes that could still be written when the next command starts."""
    if kind == "tmpfs":
        stat = os.statvfs(data)
        return stat.f_bavail * stat.f_frsize
    return size_kb * 1024 - db.stat().st_size


# What SQLite reports: ENOSPC is SQLITE_FULL; a write past the file-size limit (EFBIG) is an I/O error.
FULL = {"tmpfs": "database or disk is full", "rlimit": "disk I/O error"}
SIZE_KB = 512  # the schema and csv:small take about 90 KiB; csv:big needs about 1 MiB (checked below)
# A run of csv:small also stores its model (an AutoForecaster: the RNN, ETS and Theta) and every
# model's forecasts at every level: its WAL peaks near 400 KiB, so a run gets more room.
RUN_SIZE_KB = 1024


@pytest.fixture(scope="module")
def big_needs_bytes(tmp_path_factory) -> int:
    """How much room ingesting csv:big takes with no limit: the database plus its WAL at their peak."""
    root = tmp_path_factory.mktemp("roomy")
    write_series(root / "big.csv", 40_000, start="1900-01-01", freq="D")
    (root / "t.toml").write_text('[[series]]\nkey = "csv:big"\npath = "big.csv"\n')
    db = root / "t.db"
    done = tickcast("--config", str(root / "t.toml"), "--db", f"sqlite:///{db}", "-q", "ingest", cwd=root)
    assert done.returncode == 0, done.stderr
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM observations").fetchone() == (40_000,)
    return db.stat().st_size


@pytest.mark.parametrize("kind", KIND)
def test_full_disk_during_ingest(kind, world, big_needs_bytes, ledger):
    assert big_needs_bytes > 2 * SIZE_KB * 1024  # the big series cannot fit: it must fail part-way
    with small_disk(world, kind, SIZE_KB) as (data, limit):
        db = data / "tickcast.db"
        first = cli(world, db, "ingest", "csv:small", preexec_fn=limit)
        assert first.returncode == 0, first.stderr
        before = snapshot(db)
        assert len(before["rows"]) == 60
        room = room_left(data, kind, SIZE_KB, db)
        assert room > 64 * 1024  # the write begins with room to spare, and runs out part-way

        done = cli(world, db, "ingest", "csv:big", preexec_fn=limit)
        line = one_line_error(done)
        assert line == f"tickcast: database error: {FULL[kind]}", line
        rows_lost = assert_intact(db, before)
        assert len(snapshot(db)["rows"]) == 60  # the big series' transaction was rolled back whole

        again = cli(world, db, "ingest", "csv:small", preexec_fn=limit)  # still usable afterwards
        assert again.returncode == 0, again.stderr
    ledger.record("disk: full", rows_lost=rows_lost)


@pytest.mark.parametrize("kind", RUN_KIND)
def test_full_disk_during_run(kind, world, big_needs_bytes, ledger):
    """``tickcast run`` when the disk fills while ingesting: one line (the run's own error, not one
    from its bookkeeping), nothing lost, and the next run with room closes the failed one."""
    assert big_needs_bytes > RUN_SIZE_KB * 1024  # csv:big cannot fit: the run must fail part-way
    with small_disk(world, kind, RUN_SIZE_KB) as (data, limit):
        db = data / "tickcast.db"
        first = cli(world, db, "run", "csv:small", preexec_fn=limit)
        assert first.returncode == 0, first.stderr
        before = snapshot(db)
        assert room_left(data, kind, RUN_SIZE_KB, db) > 64 * 1024

        done = cli(world, db, "run", preexec_fn=limit)
        line = one_line_error(done)
        assert line == f"tickcast: database error: {FULL[kind]}", line
        rows_lost = assert_intact(db, before)

        again = cli(world, db, "run", "csv:small", preexec_fn=limit)  # the lease is free or taken over
        assert again.returncode == 0, again.stderr
        with closing(sqlite3.connect(db)) as conn:
            statuses = [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
            assert conn.execute("SELECT count(*) FROM run_lease").fetchone() == (0,)
        assert statuses[0] == "ok" and statuses[-1] == "ok" and "running" not in statuses, statuses
        assert statuses[1] == "failed", statuses
    ledger.record("disk: full", rows_lost=rows_lost)


FREE_KB = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 128, 192]


@pytest.mark.skipif(not CAN_MOUNT, reason="needs root and mount (a filler file on a tmpfs)")
# By default 64 KiB: it runs out while ingesting and then again while recording the run's end (as
# the schema stands); --run-slow tries every size (16 KiB and less: already while opening).
@pytest.mark.parametrize("free_kb", [pytest.param(k, marks=() if k == 64 else pytest.mark.slow) for k in FREE_KB])
def test_run_on_a_nearly_full_disk_fails_at_any_step_in_one_line(free_kb, world, ledger):
    """A filler file leaves only ``free_kb`` KiB: depending on how much, ``tickcast run`` runs out at
    opening the database, taking the lease, starting the run, ingesting, or recording its end.
    Every time: one line, and once the space is back, the database is whole and usable."""
    with small_disk(world, "tmpfs", 1024) as (data, _):
        db = data / "tickcast.db"
        first = cli(world, db, "run", "csv:small")
        assert first.returncode == 0, first.stderr
        before = snapshot(db)
        stat = os.statvfs(data)
        filler = data / "filler"
        with open(filler, "wb") as fh:
            fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free_kb * 1024))
        done = cli(world, db, "run")
        line = one_line_error(done)
        assert "database or disk is full" in line or "disk I/O error" in line, line
        filler.unlink()  # the administrator makes room
        rows_lost = assert_intact(db, before)
        again = cli(world, db, "run", "csv:small")
        assert again.returncode == 0, again.stderr
        with closing(sqlite3.connect(db)) as conn:
            assert "running" not in [r[0] for r in conn.execute("SELECT status FROM runs")]
    ledger.record("disk: full", rows_lost=rows_lost)


def test_a_failed_run_reports_its_own_error_when_recording_its_end_fails_too(world, capsys, ledger):
    """What a full disk does to ``tickcast run`` in two places, made exact with SQLite triggers: the
    ingest fails, then so does the update that closes the run. The line shown is the ingest's
    (the first error), not the bookkeeping's; the next run closes the abandoned one."""
    from tickcast.service.cli import main

    db = world / "trigger.db"
    args = ["--config", str(world / "tickcast.toml"), "--db", f"sqlite:///{db}", "-q"]
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main(args + ["run", "csv:small"]) == 0
        before = snapshot(db)
        with closing(sqlite3.connect(db)) as conn:
            conn.executescript(
                "CREATE TRIGGER no_room_for_rows BEFORE INSERT ON observations "
                "BEGIN SELECT RAISE(ABORT, 'no room for csv:big'); END;"
                "CREATE TRIGGER no_room_for_runs BEFORE UPDATE ON runs "
                "BEGIN SELECT RAISE(ABORT, 'no room to close the run'); END;"
            )
        capsys.readouterr()
        assert main(args + ["run"]) == 1
        err = capsys.readouterr().err
        assert err.splitlines() == ["tickcast: database error: no room for csv:big"], err
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone() == ("running",)
            assert conn.execute("SELECT count(*) FROM run_lease").fetchone() == (0,)  # released all the same
            conn.executescript("DROP TRIGGER no_room_for_rows; DROP TRIGGER no_room_for_runs;")
        assert main(args + ["run", "csv:small"]) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    with closing(sqlite3.connect(db)) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
    assert statuses == ["ok", "failed", "ok"], statuses
    ledger.record("disk: full", rows_lost=assert_intact(db, before))
