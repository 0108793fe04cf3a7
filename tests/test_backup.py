"""`tickcast backup FILE`: a consistent copy of a real SQLite database while another process keeps
writing to it, where copying the file is not (its newest transactions are still in the WAL)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .support.cli import run_cli, tickcast_executable

CONFIG = '[watchlist]\nsample = ["core-cpi"]\n'

# A writer in its own process, as the service is: it creates the database (tickcast's migrations),
# then each transaction adds one run and one observation, so every consistent snapshot has as many
# runs as observations. It keeps its connections open, so nothing is checkpointed into the main
# file (as in a service that has just started), counts its commits in a file, and stops writing
# when the stop file appears.
WRITER = textwrap.dedent("""
    import sqlite3, sys, time, os
    from tickcast.service.db import open_database
    db, progress, stop = sys.argv[1:4]
    engine = open_database("sqlite:///" + db)  # its pooled connection stays open
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO series (key, source, symbol, created_at) "
                 "VALUES ('csv:walk', 'csv', 'walk', '2026-01-01 00:00:00')")
    series_id = conn.execute("SELECT id FROM series").fetchone()[0]
    n = 0
    while not os.path.exists(stop):
        n += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO runs (trigger, status, started_at, finished_at, series_total) "
                     "VALUES ('manual', 'ok', '2026-01-01 00:00:00', '2026-01-01 00:00:01', ?)", (n,))
        conn.execute("INSERT INTO observations (series_id, ts, value) VALUES (?, date('2000-01-01', ?), ?)",
                     (series_id, f"+{n} days", float(n)))
        conn.execute("COMMIT")
        with open(progress, "w") as fh:
            fh.write(str(n))
        time.sleep(0.002)
    print("writer stopped", flush=True)
    time.sleep(3600)  # keep the connection (and the WAL) until killed
""")


@pytest.fixture
def world(tmp_path):
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(CONFIG)
    env = {"TICKCAST_CONFIG": str(cfg), "TICKCAST_DATA_DIR": str(tmp_path / "data")}
    return tmp_path, env


def committed(progress: Path) -> int:
    try:
        return int(progress.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_until(predicate, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def snapshot_counts(path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    try:
        runs, top = conn.execute("SELECT count(*), coalesce(max(series_total), 0) FROM runs").fetchone()
        observations = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
        return runs, observations, top
    finally:
        conn.close()


def test_backup_is_consistent_while_another_process_writes(world):
    tmp_path, env = world
    db = tmp_path / "data" / "tickcast.db"
    db.parent.mkdir()
    progress, stop = tmp_path / "progress", tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(progress), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: committed(progress) >= 50)
        before = committed(progress)
        done = run_cli("backup", str(tmp_path / "copy.db"), env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"backed up {db} to {tmp_path / 'copy.db'} (")
        wait_until(lambda: committed(progress) >= before + 50)  # the writer was never held up for long
        stop.touch()
        assert writer.stdout.readline() == "writer stopped\n"
        # The copy is one complete snapshot: every transaction in it is whole, none is missing
        # from the ones committed before the backup began, and it needs no side files.
        runs, observations, top = snapshot_counts(tmp_path / "copy.db")
        assert runs == observations == top and runs >= before
        assert not (tmp_path / "copy.db-wal").exists()
        check = sqlite3.connect(tmp_path / "copy.db")
        assert check.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()
        # What the README's old advice (copying the file) gives at this moment: the tables are
        # still in the WAL, so the copy has none. This is the defect `backup` exists for.
        shutil.copyfile(db, tmp_path / "plain.db")
        with pytest.raises(sqlite3.OperationalError, match="no such table: runs"):
            snapshot_counts(tmp_path / "plain.db")
        # The same command writes the copy to standard output (for `docker compose exec -T`).
        streamed = subprocess.run(
            [*tickcast_executable(), "backup", "-"],
            capture_output=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env,
            timeout=120,
        )
        assert streamed.returncode == 0, streamed.stderr
        assert streamed.stderr.decode().startswith(f"backed up {db} to standard output (")
        (tmp_path / "streamed.db").write_bytes(streamed.stdout)
        assert snapshot_counts(tmp_path / "streamed.db") == (committed(progress),) * 3
    finally:
        stop.touch()
        writer.kill()
        writer.wait(timeout=30)


def test_backup_of_a_database_nobody_has_open_leaves_no_side_files(world):
    tmp_path, env = world
    assert run_cli("init", env=env).returncode == 0
    data = tmp_path / "data"
    assert sorted(p.name for p in data.iterdir()) == ["tickcast.db"]  # closed cleanly: no WAL
    assert run_cli("-q", "backup", str(tmp_path / "copy.db"), env=env).stdout == ""
    assert sorted(p.name for p in data.iterdir()) == ["tickcast.db"]
    assert snapshot_counts(tmp_path / "copy.db") == (0, 0, 0)


def test_backup_to_standard_output_refuses_a_terminal(world):
    import pty

    tmp_path, env = world
    assert run_cli("init", env=env).returncode == 0
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [*tickcast_executable(), "backup", "-"],
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 1 and done.stderr == (
        "tickcast: refusing to write a database to a terminal: redirect it, e.g. tickcast backup - > copy.db\n"
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["backup", "existing.db"], "tickcast: existing.db already exists; remove it or choose another file name"),
        (
            ["backup", "data/tickcast.db"],
            "tickcast: the backup must not overwrite the database itself: data/tickcast.db",
        ),
        (["backup", "missing-dir/copy.db"], "tickcast: cannot write missing-dir/copy.db: no such directory "),
        (["--db", "sqlite:///nothing-here.db", "backup", "copy.db"], "tickcast: no database to back up at "),
        (
            ["--db", "sqlite:///junk.db", "backup", "copy.db"],
            "tickcast: cannot back up {tmp}/junk.db: file is not a database",
        ),
        (["--db", "sqlite://", "backup", "copy.db"], "tickcast: backup needs a SQLite database file"),
        (
            ["--db", "postgresql://tickcast@127.0.0.1:9/tickcast", "backup", "copy.db"],
            "tickcast: backup copies SQLite databases; "
            "postgresql+psycopg://tickcast@127.0.0.1:9/tickcast is PostgreSQL: "
            "use pg_dump",
        ),
        (["backup"], "tickcast: the following arguments are required: FILE"),
    ],
)
def test_backup_refuses_bad_input_with_one_line_and_writes_nothing(world, args, message):
    tmp_path, env = world
    assert run_cli("init", env=env).returncode == 0
    (tmp_path / "existing.db").write_bytes(b"keep me")
    (tmp_path / "junk.db").write_text("not a database\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = run_cli(*args, env=env, cwd=tmp_path)
    assert done.returncode == (2 if args == ["backup"] else 1)
    assert done.stderr.startswith(message.format(tmp=tmp_path)) and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no copy, no temporary file left
    assert (tmp_path / "existing.db").read_bytes() == b"keep me"
