"""What a test wants shown at the end of every run, passed or not: ``lines`` (figures, e.g. the
image's size) and the reliability ledger (faults injected, survived, rows lost, by category).
tests/conftest.py prints both in the terminal summary; under pytest-xdist each worker hands its
share to the controller (``worker_output`` / ``merge_worker_output``)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

lines: list[str] = []


@dataclass
class Ledger:
    rows: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))  # category -> [injected, survived, lost]

    def record(self, category: str, injected: int = 1, survived: int | bool = True, rows_lost: int = 0) -> None:
        entry = self.rows[category]
        entry[0] += injected
        entry[1] += int(survived) if isinstance(survived, bool) else survived
        entry[2] += rows_lost

    def merge(self, rows: dict) -> None:
        for category, (injected, survived, lost) in rows.items():
            self.record(category, injected, survived, lost)


LEDGER = Ledger()


def worker_output() -> str:
    return json.dumps({"lines": lines, "ledger": dict(LEDGER.rows)})


def merge_worker_output(text: str) -> None:
    data = json.loads(text)
    lines.extend(data["lines"])
    LEDGER.merge(data["ledger"])


def summary(write_line, section) -> None:
    if lines:
        section("figures")
        for line in lines:
            write_line(line)
    if not LEDGER.rows:
        return
    section("reliability: faults injected, survived, rows lost")
    width = max(len(c) for c in LEDGER.rows)
    write_line(f"{'category'.ljust(width)}  injected  survived  rows lost")
    totals = [0, 0, 0]
    for category in sorted(LEDGER.rows):
        injected, survived, lost = LEDGER.rows[category]
        totals = [a + b for a, b in zip(totals, (injected, survived, lost))]
        write_line(f"{category.ljust(width)}  {injected:8d}  {survived:8d}  {lost:9d}")
    write_line(f"{'total'.ljust(width)}  {totals[0]:8d}  {totals[1]:8d}  {totals[2]:9d}")
