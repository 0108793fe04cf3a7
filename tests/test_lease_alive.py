"""Whether a lease's holder is alive (service/lease.py ``holder_alive``), case by case, against real
processes: this one, a live child, a child that has exited, and holders on other machines or an
earlier boot of this one, where only the lease's expiry can tell."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from tickcast.service import lease
from tickcast.service.lease import boot_id, holder_alive, process_start

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LATER, EARLIER = NOW + timedelta(minutes=5), NOW - timedelta(minutes=5)


def row(pid: int, expires_at: datetime, **changes) -> SimpleNamespace:
    fields = {
        "holder": "h-1",
        "host": socket.gethostname(),
        "boot_id": boot_id(),
        "pid": pid,
        "process_start": process_start(pid),
        "expires_at": expires_at,
    }
    return SimpleNamespace(**(fields | changes))


@pytest.fixture
def child():
    # every signal at its default action, whatever this process ignores (nohup ignores SIGHUP): a
    # signal sent to the child ends it
    script = (
        "import signal, time\n"
        "for s in signal.valid_signals():\n"
        "    try:\n"
        "        signal.signal(s, signal.SIG_DFL)\n"
        "    except (OSError, ValueError):\n"
        "        pass\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"  # its handlers are in place
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("expires_at", [LATER, EARLIER])
def test_a_live_process_that_started_when_the_lease_says_holds_it_expired_or_not(child, expires_at):
    assert holder_alive(row(child.pid, expires_at), NOW) is True
    # asking never disturbs the holder (signal 0 checks; any other signal would end this child)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.5)


@pytest.mark.parametrize("expires_at", [LATER, EARLIER])
def test_a_pid_reused_by_another_process_does_not_hold_it(child, expires_at):
    started = process_start(child.pid)
    assert started is not None
    assert holder_alive(row(child.pid, expires_at, process_start=started - 1), NOW) is False


@pytest.mark.parametrize("start", ["recorded", "unknown"])
def test_a_process_that_exited_holds_nothing_even_before_expiry(gone, start):
    recorded = row(gone, LATER, process_start=12345 if start == "recorded" else None)
    assert holder_alive(recorded, NOW) is False


def test_a_live_process_without_a_recorded_start_holds_it_until_expiry(child):
    assert holder_alive(row(child.pid, LATER, process_start=None), NOW) is True
    assert holder_alive(row(child.pid, EARLIER, process_start=None), NOW) is False
    with pytest.raises(subprocess.TimeoutExpired):  # asking sent it no signal: it is still running
        child.wait(timeout=0.3)


def test_this_process_holds_only_the_leases_it_took(monkeypatch):
    monkeypatch.setattr(lease, "_held", {"h-1"})
    assert holder_alive(row(os.getpid(), EARLIER), NOW) is True  # held here: its expiry does not matter
    assert holder_alive(row(os.getpid(), LATER, holder="h-2"), NOW) is False  # an older run of ours


@pytest.mark.parametrize(
    "where", [{"host": "another-machine"}, {"boot_id": "an-earlier-boot"}], ids=["other host", "earlier boot"]
)
def test_elsewhere_only_the_expiry_tells(gone, where):
    """Another machine's pid (or this machine's before a reboot) says nothing here: a pid that is
    not running here may well be running there."""
    assert holder_alive(row(gone, LATER, process_start=None, **where), NOW) is True
    assert holder_alive(row(gone, EARLIER, process_start=None, **where), NOW) is False
    assert holder_alive(row(gone, NOW, process_start=None, **where), NOW) is False  # expired at its moment
