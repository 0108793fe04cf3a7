"""Waiting for a web server's JSON (Datasette, a container's port) within a deadline."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def fetch_json(url: str, timeout: float = 30):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)
