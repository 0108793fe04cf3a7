"""Backups (service/backup.py) in this process, on real SQLite files: the copy is one self-contained
file equal to the database, written under a temporary name and renamed, with the permissions a new
file gets; what it says it did; each refusal in one line with nothing left behind; temporary files of
killed backups removed unless a backup in progress holds them; the copy to standard output.
tests/test_backup.py runs ``tickcast backup`` itself, beside a process that writes."""

from __future__ import annotations

import fcntl
import io
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tickcast.service import backup, schema
from tickcast.service.backup import (
    PARTIAL_PREFIX,
    BackupError,
    BackupResult,
    backup_sqlite,
    remove_stale_partials,
    sqlite_path,
)
from tickcast.service.db import open_database, write_transaction


@pytest.fixture
def database(tmp_path):
    """A tickcast database in WAL mode with two runs, its file and URL."""
    path = tmp_path / "data" / "tickcast.db"
    url = f"sqlite:///{path}"
    engine = open_database(url)
    with write_transaction(engine) as conn:
        for status in ("ok", "failed"):
            conn.execute(sa.insert(schema.runs).values(trigger="manual", status=status, started_at=datetime.now(UTC)))
    engine.dispose()
    return str(path), url


def rows(path: str, table: str = "runs") -> list:
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True)  # read-only would leave -wal and -shm behind
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        conn.close()


def listing(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_a_backup_is_one_file_equal_to_the_database_and_says_what_it_copied(database, tmp_path):
    path, url = database
    target = tmp_path / "copy.db"
    result = backup_sqlite(url, str(target))
    assert result == BackupResult(source=path, destination=str(target), size_bytes=target.stat().st_size, runs=2)
    assert rows(str(target)) == rows(path) and len(rows(str(target))) == 2
    assert rows(str(target), "alembic_version") == rows(path, "alembic_version")
    conn = sqlite3.connect(str(target))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no -wal file to forget
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert listing(tmp_path) == ["copy.db", "data"]  # no temporary file, no side file
    assert listing(tmp_path / "data") == ["tickcast.db"]  # nor beside the database
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # a new file's, not the temporary name's 0600


def test_a_relative_destination_and_a_relative_database_are_taken_from_here(database, tmp_path, monkeypatch):
    path, _ = database
    monkeypatch.chdir(tmp_path)
    result = backup_sqlite("sqlite:///data/tickcast.db", "copy.db")
    assert (result.source, result.destination) == (path, "copy.db")
    assert rows(str(tmp_path / "copy.db")) == rows(path)


def test_a_database_that_is_not_tickcasts_is_copied_without_a_run_count(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    result = backup_sqlite(f"sqlite:///{other}", str(tmp_path / "copy.db"))
    assert result.runs is None and rows(str(tmp_path / "copy.db"), "t") == [(1,)]


def test_urls_that_name_no_sqlite_file_are_refused():
    with pytest.raises(BackupError) as pg:
        sqlite_path("postgresql://tickcast@127.0.0.1:9/tickcast")
    assert str(pg.value) == (
        "backup copies SQLite databases; postgresql+psycopg://tickcast@127.0.0.1:9/tickcast is PostgreSQL: "
        "use pg_dump, e.g. pg_dump --format=custom --file=tickcast.dump DBNAME"
    )
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x.db?mode=memory&uri=true"):
        with pytest.raises(BackupError, match=r"^backup needs a SQLite database file, not "):
            sqlite_path(url)
    assert sqlite_path("sqlite:///relative/t.db") == os.path.abspath("relative/t.db")


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("existing.db", "existing.db already exists; remove it or choose another file name"),
        ("data/tickcast.db", "the backup must not overwrite the database itself: data/tickcast.db"),
        ("link.db", "the backup must not overwrite the database itself: link.db"),
        ("missing-dir/copy.db", "cannot write missing-dir/copy.db: no such directory {tmp}/missing-dir"),
        ("data/tickcast.db-wal", "data/tickcast.db-wal is the name of the database's own -wal file, "),
        ("data/tickcast.db-journal", "data/tickcast.db-journal is the name of the database's own -journal file, "),
        ("data/tickcast.db-shm", "data/tickcast.db-shm is the name of the database's own -shm file, "),
        ("linkdir/tickcast.db-shm", "linkdir/tickcast.db-shm is the name of the database's own -shm file, "),
    ],
)
def test_a_destination_that_cannot_or_must_not_be_written_is_refused_and_nothing_is_left(
    database, tmp_path, monkeypatch, destination, message
):
    path, url = database
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing.db").write_bytes(b"keep me")
    os.symlink(path, tmp_path / "link.db")
    os.symlink(tmp_path / "data", tmp_path / "linkdir")
    before = {p: sorted(os.listdir(p)) for p in (tmp_path, tmp_path / "data")}
    with pytest.raises(BackupError) as refused:
        backup_sqlite(url, destination)
    assert str(refused.value).startswith(message.format(tmp=tmp_path)) and "\n" not in str(refused.value)
    if "own" in message:
        assert str(refused.value).endswith(
            "file, which SQLite deletes or rewrites as it works: the backup would vanish; choose another file name"
        )
    assert {p: sorted(os.listdir(p)) for p in before} == before
    assert (tmp_path / "existing.db").read_bytes() == b"keep me"


def test_a_missing_or_broken_database_is_refused_and_no_temporary_file_is_left(tmp_path):
    with pytest.raises(BackupError) as missing:
        backup_sqlite(f"sqlite:///{tmp_path / 'nothing.db'}", str(tmp_path / "copy.db"))
    assert str(missing.value) == f"no database to back up at {tmp_path / 'nothing.db'}"
    (tmp_path / "junk.db").write_text("not a database\n")
    with pytest.raises(BackupError) as junk:
        backup_sqlite(f"sqlite:///{tmp_path / 'junk.db'}", str(tmp_path / "copy.db"))
    assert str(junk.value) == f"cannot back up {tmp_path / 'junk.db'}: file is not a database"
    assert listing(tmp_path) == ["junk.db"]  # neither the copy nor its temporary file
    assert not os.path.exists(tmp_path / "nothing.db")  # a missing database is not created


def partial(directory, name: str, journal: bool = False) -> str:
    path = os.path.join(directory, PARTIAL_PREFIX + name)
    with open(path, "wb") as fh:
        fh.write(b"half a copy")
    if journal:
        with open(path + "-journal", "wb") as fh:
            fh.write(b"its journal")
    return path


HOLDER = (
    "import fcntl, select, sys; fh = open(sys.argv[1], 'rb'); fcntl.flock(fh, fcntl.LOCK_EX);"
    " print('holding', flush=True); select.select([sys.stdin], [], [], 120)"
)


def test_temporary_files_of_killed_backups_are_removed_and_those_in_progress_kept(tmp_path):
    dead = partial(tmp_path, "a1.db", journal=True)
    also_dead = partial(tmp_path, "b2.db")
    busy = partial(tmp_path, "c3.db")
    after_busy = partial(tmp_path, "d4.db")  # looked at after the one in progress
    (tmp_path / (PARTIAL_PREFIX + "notes.txt")).write_text("not a backup's")
    (tmp_path / "keep.db").write_text("someone's database")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, busy], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        removed = remove_stale_partials(str(tmp_path))
    finally:
        holder.kill()
        holder.wait(30)
    names = [os.path.basename(p) for p in (dead, dead + "-journal", also_dead, after_busy)]
    assert removed == names
    assert listing(tmp_path) == sorted([os.path.basename(busy), PARTIAL_PREFIX + "notes.txt", "keep.db"])
    assert remove_stale_partials(str(tmp_path)) == [os.path.basename(busy)]  # its backup is gone now
    assert remove_stale_partials(str(tmp_path / "missing")) == []


def test_a_backup_removes_the_leftovers_of_killed_backups_in_its_directory(database, tmp_path):
    _, url = database
    dead = partial(tmp_path, "x9.db", journal=True)
    backup_sqlite(url, str(tmp_path / "copy.db"))
    assert not os.path.exists(dead) and not os.path.exists(dead + "-journal")
    assert listing(tmp_path) == ["copy.db", "data"]


def test_a_temporary_file_that_cannot_be_opened_is_left_alone(tmp_path, monkeypatch):
    unreadable = partial(tmp_path, "u.db")
    after = partial(tmp_path, "v.db")  # the next one is still looked at
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if path == unreadable:
            raise PermissionError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(backup.os, "open", refuse)
    assert remove_stale_partials(str(tmp_path)) == [os.path.basename(after)] and os.path.exists(unreadable)


class Stdout:
    """Standard output redirected to a file (or a terminal, ``tty``)."""

    def __init__(self, tty: bool = False):
        self.buffer, self.tty = io.BytesIO(), tty

    def isatty(self) -> bool:
        return self.tty


def test_a_backup_to_standard_output_is_the_whole_copy_and_leaves_nothing(database, tmp_path, monkeypatch):
    path, url = database
    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(backup.tempfile, "tempdir", str(tmp_path))  # its temporary file, watched here
    result = backup_sqlite(url, "-")
    copy = tmp_path / "streamed.db"
    copy.write_bytes(out.buffer.getvalue())
    assert result.destination == "-" and result.size_bytes == len(out.buffer.getvalue()) and result.runs == 2
    assert rows(str(copy)) == rows(path)
    assert listing(tmp_path) == ["data", "streamed.db"]


def test_a_backup_to_a_terminal_is_refused(database, monkeypatch):
    _, url = database
    out = Stdout(tty=True)
    monkeypatch.setattr(sys, "stdout", out)
    with pytest.raises(BackupError) as refused:
        backup_sqlite(url, "-")
    assert str(refused.value) == (
        "refusing to write a database to a terminal: redirect it, e.g. tickcast backup - > copy.db"
    )
    assert out.buffer.getvalue() == b""


def test_the_temporary_file_is_held_while_the_copy_is_written(database, tmp_path, monkeypatch):
    """Another backup's cleaning never removes a copy being written: its flock is held."""
    _, url = database
    seen: list = []
    real_copy = backup._copy

    def copy_and_look(source: str, target: str):
        name = os.path.basename(target)  # beside the destination, named as a killed backup's would be found
        assert os.path.dirname(target) == str(tmp_path) and name.startswith(PARTIAL_PREFIX) and name.endswith(".db")
        fd = os.open(target, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append("free")
        except OSError:
            seen.append("held")
        finally:
            os.close(fd)
        seen.append(remove_stale_partials(os.path.dirname(target)))
        return real_copy(source, target)

    monkeypatch.setattr(backup, "_copy", copy_and_look)
    backup_sqlite(url, str(tmp_path / "copy.db"))
    assert seen == ["held", []] and os.path.exists(tmp_path / "copy.db")


def test_a_copy_that_fails_half_way_leaves_neither_its_file_nor_its_journal(database, tmp_path, monkeypatch):
    _, url = database

    def fails_half_way(source: str, target: str):
        with open(target + "-journal", "wb") as fh:
            fh.write(b"a journal SQLite left")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(backup, "_copy", fails_half_way)
    with pytest.raises(BackupError) as failed:
        backup_sqlite(url, str(tmp_path / "copy.db"))
    assert str(failed.value).endswith(": disk I/O error")
    assert listing(tmp_path) == ["data"]


# --- `tickcast backup` in this process -----------------------------------------------------------------


def test_tickcast_backup_says_what_it_copied_where_or_nothing_when_quiet(database, tmp_path, capsys):
    from tickcast.service.cli import main

    path, url = database
    copy = tmp_path / "copy.db"
    assert main(["--db", url, "backup", str(copy)]) == 0
    out, err = capsys.readouterr()
    assert out == f"backed up {path} to {copy} ({copy.stat().st_size / 1e6:.1f} MB, 2 run(s))\n" and err == ""
    assert main(["-q", "--db", url, "backup", str(tmp_path / "quiet.db")]) == 0
    assert capsys.readouterr() == ("", "") and rows(str(tmp_path / "quiet.db")) == rows(path)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    assert main(["--db", f"sqlite:///{other}", "backup", str(tmp_path / "other-copy.db")]) == 0
    size = (tmp_path / "other-copy.db").stat().st_size
    assert capsys.readouterr().out == f"backed up {other} to {tmp_path / 'other-copy.db'} ({size / 1e6:.1f} MB)\n"


def test_tickcast_backup_to_standard_output_says_so_on_standard_error(database, tmp_path, monkeypatch, capsys):
    from tickcast.service.cli import main

    path, url = database
    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["--db", url, "backup", "-"]) == 0
    size = len(out.buffer.getvalue())
    assert capsys.readouterr().err == f"backed up {path} to standard output ({size / 1e6:.1f} MB, 2 run(s))\n"
    # the summary never goes to standard output: Stdout takes bytes only (it has no write())
    copy = tmp_path / "streamed.db"
    copy.write_bytes(out.buffer.getvalue())
    assert rows(str(copy)) == rows(path)
