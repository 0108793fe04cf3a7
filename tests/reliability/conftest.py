"""The reliability suite's ledger: every test records the faults it injected, how many the service
survived (its promises held) and how many stored rows were lost; the totals print at the end.

Slow cases carry ``@pytest.mark.slow``: ``make test`` runs a seeded subset (the rest is deselected),
``make test-reliability`` (``--run-slow``) runs them all.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

SEED = 20261123


def seeded_subset(cases: list, k: int, seed: int = SEED) -> list:
    """Wrap ``cases`` for parametrize: a seeded sample of ``k`` run by default, the rest marked slow."""
    chosen = set(random.Random(seed).sample(range(len(cases)), min(k, len(cases))))
    return [case if i in chosen else pytest.param(case, marks=pytest.mark.slow) for i, case in enumerate(cases)]


@dataclass
class Ledger:
    rows: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))  # category -> [injected, survived, lost]

    def record(self, category: str, injected: int = 1, survived: int | bool = True, rows_lost: int = 0) -> None:
        entry = self.rows[category]
        entry[0] += injected
        entry[1] += int(survived) if isinstance(survived, bool) else survived
        entry[2] += rows_lost


_LEDGER = Ledger()


@pytest.fixture
def ledger() -> Ledger:
    return _LEDGER


def pytest_terminal_summary(terminalreporter):
    if not _LEDGER.rows:
        return
    tr = terminalreporter
    tr.section("reliability: faults injected, survived, rows lost")
    width = max(len(c) for c in _LEDGER.rows)
    tr.write_line(f"{'category'.ljust(width)}  injected  survived  rows lost")
    totals = [0, 0, 0]
    for category in sorted(_LEDGER.rows):
        injected, survived, lost = _LEDGER.rows[category]
        totals = [a + b for a, b in zip(totals, (injected, survived, lost))]
        tr.write_line(f"{category.ljust(width)}  {injected:8d}  {survived:8d}  {lost:9d}")
    tr.write_line(f"{'total'.ljust(width)}  {totals[0]:8d}  {totals[1]:8d}  {totals[2]:9d}")
