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

import codecs
import re
import socket

import requests
from urllib3.exceptions import ReadTimeoutError

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
            raise _Retry(timed_out(settings.http_timeout)) from None
        except requests.ConnectionError as exc:
            if "Connection aborted" in str(exc):  # connected, then dropped before an answer: may heal
                raise _Retry("the server closed the connection without answering") from None
            # Refused connections and unknown hosts do not heal in seconds: fail fast.
            raise SourceError(f"{what}: cannot connect to {shown} ({root_cause(exc)})") from None
        except requests.RequestException as exc:
            raise SourceError(f"{what}: request to {shown} failed: {cut(scrub(str(exc)), 120)}") from None
        box["response"] = response
        with response:
            if response.status_code in RETRY_STATUS:
                limited = " (rate limited)" if response.status_code == 429 else ""
                raise _Retry(f"HTTP {response.status_code}{limited}")
            if response.status_code >= 400:
                raise SourceError(f"{what}: HTTP {response.status_code} from {mask_url(response.url)}")
            return _read_body(response, what, shown, settings.http_timeout)

    return stopping.bounded_call(
        get,
        settings.http_timeout,
        lambda: _Retry(timed_out(settings.http_timeout)),
        f"fetching {what}",
        abandon=lambda: _shut(box.get("response"), session),
    )


def timed_out(seconds: float) -> str:
    """Why an attempt was given up on. One reason whichever clock ran out: requests' own timeout
    bounds each socket read, and can end a read at the same moment as the wall-clock deadline."""
    return f"timed out after {seconds:g} s (sources.http_timeout, for the whole response)"


def _read_body(response: requests.Response, what: str, shown: str, timeout: float) -> str:
    """The body, decoded: refused past ``MAX_RESPONSE_BYTES`` without reading the rest."""
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
    except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
        if isinstance(exc.args[0] if exc.args else None, ReadTimeoutError):  # requests' name for a stall
            raise _Retry(timed_out(timeout)) from None
        raise _Retry("the response was cut off (truncated transfer)") from None
    return b"".join(chunks).decode(charset(response.headers.get("Content-Type", "")), errors="replace")


def charset(content_type: str) -> str:
    """The codec of a body: the charset its Content-Type declares, else UTF-8 (a byte order mark
    dropped). Not requests' guess, ISO-8859-1 for any text/* type without a charset: that reads a
    UTF-8 file's byte order mark as three letters of its first column's name."""
    declared = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    if declared:
        try:
            name = codecs.lookup(declared.group(1)).name
        except LookupError:  # a charset Python does not know: read it as UTF-8
            name = "utf-8"
        if name != "utf-8":
            return name
    return "utf-8-sig"


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
    return cut(scrub(text.split(": ", 1)[-1]), 120)


def scrub(text: str) -> str:
    """An exception's text fit to store: requests quotes the URL it tried, and a user name, password
    or token in it must not land in ``series.last_error``."""
    text = re.sub(r"//[^/\s@'\"]+@", "//***@", text)
    return re.sub(r"\?[^\s)'\"]*", "?***", text)
