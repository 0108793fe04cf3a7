"""The warnings a logger says, recorded for a test (lock waits: ``tickcast.db``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Warnings(logging.Handler):
    """Each warning's line, and an event set at the first."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.first = threading.Event()

    def emit(self, record):
        self.lines.append(record.getMessage())
        self.first.set()


@contextmanager
def warnings_of(name: str = "tickcast.db") -> Iterator[Warnings]:
    handler = Warnings()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
