"""Crash points for the reliability tests: ``reached("store-fit")`` kills the process with SIGKILL
when ``TICKCAST_KILL_AT`` names that point and this is its n-th arrival. A no-op otherwise.

SIGKILL, not an exception: nothing gets to clean up, exactly like a power cut or the OOM killer, so
the tests see what the database really holds after a crash. Just before, one line on stderr names
the point, so a test can tell which point it killed.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from .config import kill_point

# In the order a run reaches them (per series, except finish: once per run).
POINTS = ("fetch", "ingest-write", "plan", "train", "store-fit", "store-history", "store-forecasts", "finish")

_arrivals: Counter = Counter()
_target = kill_point(POINTS)  # an unknown name in TICKCAST_KILL_AT fails here, naming the known ones


def reached(point: str) -> None:
    if point not in POINTS:  # a typo in the code would otherwise be a crash point no test can reach
        raise ValueError(f"unknown crash point {point!r} (known: {', '.join(POINTS)})")
    if _target is None or _target[0] != point:
        return
    _arrivals[point] += 1
    if _arrivals[point] == _target[1]:
        os.write(2, f"tickcast: crash point {point}:{_arrivals[point]} reached: SIGKILL\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)
