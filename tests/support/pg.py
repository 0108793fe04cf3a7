"""A real PostgreSQL server for the test run: initdb into a temp dir, 127.0.0.1, a free port.

initdb refuses to run as root, so as root the server runs as the ``postgres`` user (runuser).
Any failure raises: database tests must fail, not skip, when PostgreSQL cannot start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14", "13"):
        candidate = f"/usr/lib/postgresql/{version}/bin/{name}"
        if os.path.exists(candidate):
            return candidate
    raise RuntimeError(f"PostgreSQL's {name} is not installed (needed for the database tests)")


class PostgresServer:
    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="tickcast-pg-")
        self.datadir = os.path.join(self.root, "data")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o755)

    def _run(self, *argv: str) -> None:
        cmd = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(argv)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = ""
            logfile = os.path.join(self.root, "server.log")
            if os.path.exists(logfile):
                with open(logfile) as fh:
                    log = fh.read()[-2000:]
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr or done.stdout}\n{log}")

    def start(self) -> PostgresServer:
        self._run(
            _binary("initdb"),
            "-D",
            self.datadir,
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root} -F -c fsync=off -c max_connections=100"
        self._run(
            _binary("pg_ctl"),
            "-D",
            self.datadir,
            "-o",
            options,
            "-l",
            os.path.join(self.root, "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(_binary("pg_ctl"), "-D", self.datadir, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @contextmanager
    def database(self):
        """A fresh, empty database for one test; dropped afterwards."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.url(name)
        finally:
            deadline = time.time() + 10
            with psycopg.connect(
                f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
            ) as conn:
                while True:
                    try:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        break
                    except psycopg.errors.ObjectInUse:
                        if time.time() > deadline:
                            raise
                        time.sleep(0.2)
