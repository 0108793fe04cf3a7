"""Crash points for the reliability tests: ``reached("store")`` kills the process with SIGKILL when
``TICKCAST_KILL_AT`` names that point and this is its n-th arrival. A no-op otherwise.

SIGKILL, not an exception: nothing gets to clean up, exactly like a power cut or the OOM killer, so
the tests see what the database really holds after a crash.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from .config import kill_point

POINTS = ("fetch", "ingest-write", "plan", "train", "store-fit", "store-history", "store-forecasts",
          "finish")

_arrivals: Counter = Counter()
_target = kill_point()


def reached(point: str) -> None:
    if _target is None or _target[0] != point:
        return
    _arrivals[point] += 1
    if _arrivals[point] == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
