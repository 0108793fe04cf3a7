"""The reliability suite's ledger: every test records the faults it injected, how many the service
survived (its promises held) and how many stored rows were lost; the totals print at the end
(tests/support/report.py).

Slow cases carry ``@pytest.mark.slow``: ``make test`` runs a seeded subset (the rest is deselected),
``make test-reliability`` (``--run-slow``) runs them all.
"""

from __future__ import annotations

import random

import pytest

from ..support.report import LEDGER, Ledger

SEED = 20261123


def seeded_subset(cases: list, k: int, seed: int = SEED) -> list:
    """Wrap ``cases`` for parametrize: a seeded sample of ``k`` run by default, the rest marked slow."""
    chosen = set(random.Random(seed).sample(range(len(cases)), min(k, len(cases))))
    return [case if i in chosen else pytest.param(case, marks=pytest.mark.slow) for i, case in enumerate(cases)]


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER
