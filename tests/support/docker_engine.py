"""A Docker engine for the container test: the one already reachable, else a `dockerd` of our own.

Our own daemon keeps its state under one directory outside the checkout (``STATE_DIR``, default
/var/tmp/tickcast-docker; TICKCAST_TEST_DOCKER_DIR moves it): data root, exec root, socket, pid
file and log. The data root is reused between runs, so base images and build layers stay cached.

Concurrent test runs on one machine (two checkouts, two helpers) take turns: an exclusive lock on
``STATE_DIR/lock`` is held for the whole container test, so one run never stops the daemon under
another, builds over its images or reuses its project. The daemon is stopped at the end only if
this run started it, by the pid it wrote; one left running by a run that was killed is adopted
(under the lock it can be nobody else's) and stopped the same way.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = Path(os.environ.get("TICKCAST_TEST_DOCKER_DIR", "/var/tmp/tickcast-docker"))
LOCK_WAIT_SECONDS = 30 * 60  # a whole container test from nothing takes about five minutes


class EngineUnavailable(Exception):
    """No Docker engine is reachable and none could be started here; the message says why."""


@dataclass
class Engine:
    host: str  # a DOCKER_HOST value
    started_pid: int | None = None  # set when this run started (or adopted) the daemon
    notes: list[str] = field(default_factory=list)

    @property
    def own(self) -> bool:
        return self.started_pid is not None

    def env(self, extra: dict | None = None) -> dict:
        return {**os.environ, "DOCKER_HOST": self.host, **(extra or {})}

    def docker(self, *args: str, timeout: float = 600, check: bool = True, **kw) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker", *args], env=self.env(), capture_output=True, text=True, timeout=timeout, **kw)
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def has_image(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False, timeout=60).returncode == 0


def _reachable(host: str) -> bool:
    try:
        done = subprocess.run(
            ["docker", "--host", host, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _pid_alive(pid: int) -> bool:
    try:  # a daemon we started is our child: reap it, or it stays a zombie that kill(0) finds alive
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_dockerd(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(b"dockerd") and str(STATE_DIR / "data").encode() in cmdline


@contextmanager
def _exclusive(path: Path, wait: float) -> Iterator[None]:
    with open(path, "a+") as handle:
        deadline = time.time() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise AssertionError(
                        f"another test run has held {path} for {wait:.0f} s; "
                        f"is one stuck? (see {STATE_DIR / 'dockerd.log'})"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stop(pid: int, timeout: float = 60) -> None:
    """SIGTERM the daemon (it stops its containers and its containerd), SIGKILL if it hangs."""
    if not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while _pid_alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _unmount_leftovers() -> None:
    """dockerd leaves its network namespace mounted under the exec root when it stops; unmount it
    so that nothing of ours stays mounted (the state directory can then simply be deleted)."""
    exec_root = str(STATE_DIR / "exec") + "/"
    with open("/proc/self/mounts") as mounts:
        targets = [line.split()[1] for line in mounts if line.split()[1].startswith(exec_root)]
    for target in reversed(targets):
        subprocess.run(["umount", target], capture_output=True, timeout=30)


def _start_dockerd() -> int:
    """Start dockerd on our state directory and return its pid once it answers."""
    if shutil.which("dockerd") is None:
        raise EngineUnavailable(
            "no Docker engine is reachable and dockerd is not installed (Debian: apt-get install docker.io)"
        )
    if os.geteuid() != 0:
        raise EngineUnavailable("no Docker engine is reachable, and starting dockerd needs root")
    sock, pidfile, log = STATE_DIR / "docker.sock", STATE_DIR / "dockerd.pid", STATE_DIR / "dockerd.log"
    common = [
        "--data-root",
        str(STATE_DIR / "data"),
        "--exec-root",
        str(STATE_DIR / "exec"),
        "--pidfile",
        str(pidfile),
        "-H",
        f"unix://{sock}",
        "--bridge",
        "none",
    ]  # compose makes its own networks; leave docker0 to any other daemon
    # dockerd picks its storage driver (overlay2 where the kernel and file system allow it, which
    # is several times faster than vfs for image builds); vfs works everywhere and is the fallback.
    failures = []
    for extra in ([], ["--storage-driver", "vfs"]):
        with open(log, "w") as out:
            proc = subprocess.Popen(
                ["dockerd", *common, *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            if _reachable(f"unix://{sock}"):
                return proc.pid
            time.sleep(0.5)
        if proc.poll() is None:
            _stop(proc.pid)
        proc.wait(timeout=60)
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        failures.append(f"dockerd {' '.join(extra) or '(default storage driver)'}: " + " | ".join(tail))
    raise EngineUnavailable("no Docker engine is reachable and dockerd did not start: " + "; ".join(failures))


@contextmanager
def docker_engine() -> Iterator[Engine]:
    """The engine for the test, held exclusively; raises EngineUnavailable when there is none."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with _exclusive(STATE_DIR / "lock", LOCK_WAIT_SECONDS):
        outside = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if _reachable(outside):
            yield Engine(outside, notes=[f"engine: the one at {outside}"])
            return
        own = f"unix://{STATE_DIR / 'docker.sock'}"
        leftover = _read_pid(STATE_DIR / "dockerd.pid")
        if leftover and _pid_alive(leftover) and _is_our_dockerd(leftover) and _reachable(own):
            pid, how = leftover, f"adopted dockerd {leftover}, left running by an interrupted run"
        else:
            if leftover and _pid_alive(leftover) and _is_our_dockerd(leftover):
                _stop(leftover)  # ours, but not answering
            pid, how = _start_dockerd(), "started dockerd"
        engine = Engine(own, started_pid=pid)
        driver = engine.docker("info", "--format", "{{.Driver}}").stdout.strip()
        engine.notes.append(f"engine: {how} (pid {pid}, {driver}, state in {STATE_DIR})")
        try:
            yield engine
        finally:
            _stop(pid)
            if not _pid_alive(pid):
                _unmount_leftovers()
