"""Shared by the service benchmarks: a real Source over in-memory frames (no I/O), so the figures
measure tickcast and not a network or a disk it reads from."""

from __future__ import annotations

import pandas as pd


class SyntheticSource:
    """Hands out pre-built frames (``ts``, ``value``) by series symbol, from ``since`` on."""

    def __init__(self, frames: dict[str, pd.DataFrame]):
        self.frames = frames

    def fetch(self, spec, since):
        frame = self.frames[spec.symbol]
        return frame if since is None else frame[frame["ts"] >= since]
