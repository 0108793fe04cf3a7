"""HTTP GET with a wall-clock deadline and a size cap, retries with exponential backoff (rate
limits, 5xx, timeouts), and one-line reasons on failure.

requests' ``timeout`` bounds each socket read, not a request: a server that trickles a line every
two seconds never trips it. Here each attempt runs in a helper thread (``stopping.bounded_call``)
and is given up after ``sources.http_timeout`` seconds of wall-clock time, whatever the server does;
a stop signal gives it up at once. The body is read in chunks and refused past
``MAX_RESPONSE_BYTES``. URLs are quoted without their user name, password or query string (a token
in a URL must not land in ``series.last_error``, which Datasette serves).
"""

from __future__ import annotations

import re
import socket

import requests

from .. import stopping
from ..errors import SourceError, cut, mask_url
from ..settings import SourceSettings

RETRY_STATUS = {429, 500, 502, 503, 504}
USER_AGENT = "tickcast (+https://github.com/tickcast)"
MAX_RESPONSE_BYTES = 256 * 2**20  # a CSV of millions of rows; more is not a series, or not for memory
CHUNK_BYTES = 64 * 1024


class _Retry(Exception):
    """An attempt that failed in a way worth another try; the message is the reason."""


def http_get(url: str, settings: SourceSettings, what: str, params: dict | None = None) -> str:
    """The body of ``url`` as text; retry rate limits, 5xx and timeouts with backoff; raise
    SourceError with the reason (StopNow on a stop signal)."""
    shown = mask_url(url)
    last = ""
    for attempt in range(settings.retries + 1):
        if attempt:
            stopping.pause(settings.backoff_seconds * 2 ** (attempt - 1), f"waiting to fetch {what} again")
        try:
            return _attempt(url, shown, settings, what, params)
        except _Retry as exc:
            last = str(exc)
    tries = settings.retries + 1
    raise SourceError(f"{what}: {last} from {shown} ({tries} attempt{'s' if tries > 1 else ''})")


def _attempt(url: str, shown: str, settings: SourceSettings, what: str, params: dict | None) -> str:
    session = requests.Session()
    box: dict[str, requests.Response] = {}

    def get() -> str:
        try:
            response = session.get(
                url, params=params, timeout=settings.http_timeout, headers={"User-Agent": USER_AGENT}, stream=True
            )
        except requests.Timeout:
            raise _Retry(f"timed out after {settings.http_timeout:g} s") from None
        except requests.exceptions.ChunkedEncodingError:
            raise _Retry("the response was cut off (truncated transfer)") from None
        except requests.ConnectionError as exc:
            if "IncompleteRead" in str(exc) or "Connection broken" in str(exc):
                raise _Retry("the response was cut off (truncated transfer)") from None
            # Refused connections and unknown hosts do not heal in seconds: fail fast.
            raise SourceError(f"{what}: cannot connect to {shown} ({root_cause(exc)})") from None
        except requests.RequestException as exc:
            raise SourceError(f"{what}: request to {shown} failed: {cut(str(exc), 120)}") from None
        box["response"] = response
        with response:
            if response.status_code in RETRY_STATUS:
                limited = " (rate limited)" if response.status_code == 429 else ""
                raise _Retry(f"HTTP {response.status_code}{limited}")
            if response.status_code >= 400:
                raise SourceError(f"{what}: HTTP {response.status_code} from {mask_url(response.url)}")
            return _read_body(response, what, shown)

    def give_up() -> str:
        return f"timed out after {settings.http_timeout:g} s (sources.http_timeout, for the whole response)"

    return stopping.bounded_call(
        get,
        settings.http_timeout,
        lambda: _Retry(give_up()),
        f"fetching {what}",
        abandon=lambda: _shut(box.get("response"), session),
    )


def _read_body(response: requests.Response, what: str, shown: str) -> str:
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise SourceError(
                    f"{what}: the response from {shown} is larger than {MAX_RESPONSE_BYTES // 2**20} MB, the most "
                    "tickcast reads from one URL: refused"
                )
            chunks.append(chunk)
    except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError):
        raise _Retry("the response was cut off (truncated transfer)") from None
    except requests.Timeout:
        raise _Retry(f"the response stalled (no data for {response.elapsed.total_seconds():.0f} s)") from None
    encoding = response.encoding if response.encoding and response.encoding.lower() not in ("utf-8", "utf8") else None
    return b"".join(chunks).decode(encoding or "utf-8-sig", errors="replace")


def _shut(response: requests.Response | None, session: requests.Session) -> None:
    """Hurry an attempt given up on: shut its socket, so that a read blocked on it ends now."""
    connection = getattr(getattr(response, "raw", None), "connection", None) if response is not None else None
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    session.close()


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
    # requests names the URL it tried (with its query string): never quote a token
    return cut(re.sub(r"\?[^\s)]*", "?***", text.split(": ", 1)[-1]), 120)
