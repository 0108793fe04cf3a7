"""``tickcast backup FILE``: a consistent copy of the SQLite database while the service runs.

Copying the file itself is not a backup: in WAL mode the newest transactions (at first, the whole
schema) are still in ``tickcast.db-wal``, and a copy taken between the two files is torn. SQLite's
online backup API copies the database as of one read transaction instead; in WAL mode that never
blocks the writer, so the service keeps running. The copy is written beside FILE under a temporary
name, switched to a self-contained rollback journal (no ``-wal`` file to forget), checked, and only
then renamed to FILE: FILE is either the complete copy or absent. A backup killed half-way (kill
-9, the OOM killer) leaves its temporary file behind: each backup holds an ``flock`` on its own while
it writes, and the next backup into that directory removes those nobody holds.

FILE must not be one of the database's own side files (``-journal``, ``-wal``, ``-shm``): SQLite
deletes or rewrites those as it pleases, so a backup written there would silently vanish.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .db import describe, normalize_url
from .errors import TickcastError

PARTIAL_PREFIX = ".tickcast-backup-"  # a backup being written (or left by one that was killed)
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


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


def _check_destination(destination: str, source: str) -> str:
    """The absolute path to write ``destination`` to; BackupError when it cannot or must not be."""
    target = os.path.abspath(destination)
    if os.path.exists(target) and os.path.samefile(target, source):
        raise BackupError(f"the backup must not overwrite the database itself: {destination}")
    real_target, real_source = os.path.realpath(target), os.path.realpath(source)
    for suffix in SQLITE_SIDE_FILES:
        if real_target == real_source + suffix:
            raise BackupError(
                f"{destination} is the name of the database's own {suffix} file, which SQLite deletes or "
                "rewrites as it works: the backup would vanish; choose another file name"
            )
    if os.path.exists(target):
        raise BackupError(f"{destination} already exists; remove it or choose another file name")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise BackupError(f"cannot write {destination}: no such directory {directory}")
    return target


def remove_stale_partials(directory: str) -> list[str]:
    """Remove the temporary files of backups into ``directory`` that were killed before they finished
    (no process holds their flock any more), with their journals; returns the names removed."""
    removed: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(PARTIAL_PREFIX) and name.endswith(".db")):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a backup in progress holds it
            continue
        finally:
            os.close(fd)  # the flock goes with it; a backup starting now makes a new name anyway
        for stale in (path, path + "-journal"):
            try:
                os.unlink(stale)
                removed.append(os.path.basename(stale))
            except FileNotFoundError:
                pass
    return removed


def backup_sqlite(db_url: str, destination: str) -> BackupResult:
    """Write a consistent copy of the SQLite database at ``db_url`` to ``destination`` (a new file;
    "-" writes it to standard output)."""
    source = sqlite_path(db_url)
    if not os.path.isfile(source):
        raise BackupError(f"no database to back up at {source}")
    to_stdout = destination == "-"
    if to_stdout and sys.stdout.isatty():
        raise BackupError("refusing to write a database to a terminal: redirect it, e.g. tickcast backup - > copy.db")
    target = None if to_stdout else _check_destination(destination, source)
    directory = None if target is None else os.path.dirname(target)  # None: the system's temporary directory
    remove_stale_partials(directory or tempfile.gettempdir())
    fd, partial = tempfile.mkstemp(prefix=PARTIAL_PREFIX, suffix=".db", dir=directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process closes it or dies: "in progress"
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary name, not the backup
        try:
            runs = _copy(source, partial)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot back up {source}: {exc}") from None
        size = os.path.getsize(partial)
        if target is None:
            with open(partial, "rb") as copy:
                shutil.copyfileobj(copy, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            os.replace(partial, target)
    finally:
        for leftover in (partial, partial + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        os.close(fd)
    return BackupResult(source=source, destination=destination, size_bytes=size, runs=runs)
