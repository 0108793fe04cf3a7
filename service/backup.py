"""``tickcast backup FILE``: a consistent copy of the SQLite database while the service runs.

Copying the file itself is not a backup: in WAL mode the newest transactions (at first, the whole
schema) are still in ``tickcast.db-wal``, and a copy taken between the two files is torn. SQLite's
online backup API copies the database as of one read transaction instead; in WAL mode that never
blocks the writer, so the service keeps running. The copy is written beside FILE under a temporary
name, switched to a self-contained rollback journal (no ``-wal`` file to forget), checked, and only
then renamed to FILE: FILE is either the complete copy or absent.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .db import describe, normalize_url
from .errors import TickcastError


class BackupError(TickcastError):
    """The backup could not be made; nothing was left at the destination."""


@dataclass(frozen=True)
class BackupResult:
    source: str
    destination: str  # a path, or "-" for standard output
    size_bytes: int
    runs: int | None  # rows in `runs` in the copy (None: not a tickcast database)


def sqlite_path(db_url: str) -> str:
    """The file behind a SQLite URL; a clear error for PostgreSQL and in-memory databases."""
    url = normalize_url(db_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"backup copies SQLite databases; {describe(db_url)} is PostgreSQL: use pg_dump, "
            "e.g. pg_dump --format=custom --file=tickcast.dump DBNAME"
        )
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError(f"backup needs a SQLite database file, not {describe(db_url)}")
    return os.path.abspath(url.database)


def _copy(source: str, target: str) -> int | None:
    """Copy ``source`` into the new file ``target`` with the backup API; returns the copy's run count."""
    # mode=rw, not ro: never create a missing database, but be an ordinary connection, which removes
    # the -wal/-shm files it had to create when it is the last one to close (a read-only connection
    # leaves them behind, owned by whoever ran the backup).
    src = sqlite3.connect(f"{Path(source).as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one read snapshot, the writer goes on meanwhile
            dst.execute("PRAGMA journal_mode = DELETE")  # the copy is one file, whatever the source used
            problem = dst.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise BackupError(f"the copy failed its integrity check: {problem}")
            has_runs = dst.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
            return dst.execute("SELECT count(*) FROM runs").fetchone()[0] if has_runs else None
        finally:
            dst.close()
    finally:
        src.close()


def backup_sqlite(db_url: str, destination: str) -> BackupResult:
    """Write a consistent copy of the SQLite database at ``db_url`` to ``destination`` (a new file;
    "-" writes it to standard output)."""
    source = sqlite_path(db_url)
    if not os.path.isfile(source):
        raise BackupError(f"no database to back up at {source}")
    to_stdout = destination == "-"
    if to_stdout and sys.stdout.isatty():
        raise BackupError("refusing to write a database to a terminal: redirect it, e.g. tickcast backup - > copy.db")
    if not to_stdout:
        target = os.path.abspath(destination)
        if os.path.exists(target) and os.path.samefile(target, source):
            raise BackupError(f"the backup must not overwrite the database itself: {destination}")
        if os.path.exists(target):
            raise BackupError(f"{destination} already exists; remove it or choose another file name")
        directory = os.path.dirname(target)
        if not os.path.isdir(directory):
            raise BackupError(f"cannot write {destination}: no such directory {directory}")
    else:
        directory = None  # the system's temporary directory
    fd, partial = tempfile.mkstemp(prefix=".tickcast-backup-", suffix=".db", dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary name, not the backup
    try:
        try:
            runs = _copy(source, partial)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot back up {source}: {exc}") from None
        size = os.path.getsize(partial)
        if to_stdout:
            with open(partial, "rb") as copy:
                shutil.copyfileobj(copy, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return BackupResult(source=source, destination=destination, size_bytes=size, runs=runs)
