"""HTTP GET with a timeout, retries with exponential backoff (rate limits, 5xx, timeouts), and
one-line reasons on failure."""

from __future__ import annotations

import time

import requests

from ..errors import SourceError
from ..settings import SourceSettings

RETRY_STATUS = {429, 500, 502, 503, 504}
USER_AGENT = "tickcast (+https://github.com/tickcast)"


def http_get(url: str, settings: SourceSettings, what: str, params: dict | None = None) -> requests.Response:
    """GET ``url``; retry rate limits, 5xx and timeouts with backoff; raise SourceError with the reason."""
    last = ""
    for attempt in range(settings.retries + 1):
        if attempt:
            time.sleep(settings.backoff_seconds * 2 ** (attempt - 1))
        try:
            response = requests.get(
                url, params=params, timeout=settings.http_timeout, headers={"User-Agent": USER_AGENT}
            )
        except requests.Timeout:
            last = f"timed out after {settings.http_timeout:g} s"
            continue
        except requests.exceptions.ChunkedEncodingError:
            last = "the response was cut off (truncated transfer)"
            continue
        except requests.ConnectionError as exc:
            if "IncompleteRead" in str(exc) or "Connection broken" in str(exc):
                last = "the response was cut off (truncated transfer)"
                continue
            # Refused connections and unknown hosts do not heal in seconds: fail fast.
            raise SourceError(f"{what}: cannot connect to {url} ({root_cause(exc)})") from None
        except requests.RequestException as exc:
            raise SourceError(f"{what}: request to {url} failed: {exc}") from None
        if response.status_code in RETRY_STATUS:
            last = f"HTTP {response.status_code}" + (" (rate limited)" if response.status_code == 429 else "")
            continue
        if response.status_code >= 400:
            raise SourceError(f"{what}: HTTP {response.status_code} from {response.url}")
        return response
    tries = settings.retries + 1
    raise SourceError(f"{what}: {last} from {url} ({tries} attempt{'s' if tries > 1 else ''})")


def root_cause(exc: BaseException) -> str:
    while (deeper := exc.__cause__ or exc.__context__) is not None:
        exc = deeper
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "Network is unreachable",
        "No route to host",
        "Connection reset",
    ):
        if marker in text:
            return marker.lower()
    return text.split(": ", 1)[-1][:120]
