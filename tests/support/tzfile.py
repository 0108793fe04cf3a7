"""A made-up time zone whose clocks changed a few days ago, for `tickcast serve` as a real process.

The daemon reads the real clock, so a test cannot move "now" to just after a DST change; it can move
the DST change to just before now. ``write_zone`` writes a TZif file (the format of
/usr/share/zoneinfo, read by Python's zoneinfo); a process started with ``PYTHONTZPATH`` pointing at
its directory finds the zone by name like any other.
"""

from __future__ import annotations

import struct
from pathlib import Path

# (UTC offset in seconds, is DST, abbreviation)
STANDARD = (-5 * 3600, False, "TST")
SUMMER = (-4 * 3600, True, "TDT")


def write_zone(root: Path, name: str, transitions: list[tuple[int, tuple]], footer: str = "TST5") -> Path:
    """Write zone ``name`` under ``root``: before the first transition STANDARD time, then each
    ``(utc_seconds, local_time_type)`` in order; after the last one the POSIX rule ``footer``."""
    types: list[tuple] = [STANDARD]
    for _, kind in transitions:
        if kind not in types:
            types.append(kind)
    chars = b"".join(t[2].encode() + b"\0" for t in types)
    offsets, position = [], 0
    for t in types:
        offsets.append(position)
        position += len(t[2]) + 1

    def block(time_format: str) -> bytes:
        counts = struct.pack(">6l", 0, 0, 0, len(transitions), len(types), len(chars))
        times = b"".join(struct.pack(time_format, when) for when, _ in transitions)
        indices = bytes(types.index(kind) for _, kind in transitions)
        infos = b"".join(struct.pack(">lBB", t[0], int(t[1]), offsets[i]) for i, t in enumerate(types))
        return b"TZif2" + b"\0" * 15 + counts + times + indices + infos + chars

    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(block(">l") + block(">q") + f"\n{footer}\n".encode())
    return path
