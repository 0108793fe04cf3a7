"""The installed ``tickcast`` command, run as a user runs it: a real process, with no ``TICKCAST_*``
variable leaking in from the environment the tests run in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tickcast_executable() -> list[str]:
    script = Path(sys.executable).parent / "tickcast"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tickcast"]


def run_cli(*args: str, env: dict | None = None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    full_env.update(env or {})
    return subprocess.run(
        tickcast_executable() + list(args), capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )
