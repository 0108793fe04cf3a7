"""Debian's docker-compose, which validates docker-compose.yml without a Docker engine."""

from __future__ import annotations

import shutil


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    assert found, "docker-compose is needed to validate docker-compose.yml (make test installs it with apt)"
    return found
