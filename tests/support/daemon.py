"""`tickcast serve` (or any long-running command) in a real subprocess, its stderr read line by line,
and the rows of the SQLite database it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import sqlalchemy as sa

from .cli import tickcast_executable


def db_rows(tmp_path, query):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'tickcast.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).all()
    finally:
        engine.dispose()


class Daemon:
    """`tickcast serve` in a subprocess, its stderr collected line by line."""

    def __init__(self, args, env):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env
        self.proc = subprocess.Popen(
            tickcast_executable() + args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=full_env
        )
        self.lines: list[str] = []
        self.out: list[str] = []
        # Both pipes drained: a process whose stdout fills the pipe (a web server's access log)
        # blocks on its next write, and then on SIGTERM.
        self.reader = threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True)
        self.reader.start()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True).start()

    @staticmethod
    def _read(pipe, lines: list[str]):
        for line in pipe:
            lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen; stderr so far:\n" + "\n".join(self.lines))

    def terminate(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return code
