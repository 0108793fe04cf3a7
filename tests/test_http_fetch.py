"""What a fetch over HTTP sends, reads and gives up on (``sources/http.py``, under FRED and CSV by
URL), against real servers on 127.0.0.1: the request's headers, the size cap, the body's charset,
retries and their backoff, the reason a failure gives, and that an attempt given up on lets go of
its connection instead of leaving a thread reading it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tickcast.service import stopping
from tickcast.service.errors import SourceError
from tickcast.service.settings import SeriesSpec
from tickcast.service.sources import http
from tickcast.service.sources.csvfile import CsvSource
from tickcast.service.sources.http import USER_AGENT, http_get, root_cause

from .reliability.servers import SilentListener, TricklingServer
from .support.httpserver import Reply
from .support.waiting import eventually

CSV = "date,value\n2024-01-02,1.5\n2024-01-03,2.5\n"


def fetch_threads(what: str) -> list[threading.Thread]:
    """The helper threads of attempts at fetching ``what`` that are still alive."""
    return [t for t in threading.enumerate() if t.name == f"tickcast-wait: fetching {what}"[:60] and t.is_alive()]


class Dropper(SilentListener):
    """Reads each request and closes the connection without a word: the first ``drops`` times, and
    then answers with a CSV."""

    def __init__(self, drops: int) -> None:
        self.drops, self.served = drops, 0
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        earlier, self.served = self.served, self.served + 1  # counted before the answer: the client
        if earlier >= self.drops:  # may read it and go on before this thread runs again
            body = CSV.encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        conn.close()


class Firehose(SilentListener):
    """Answers with a declared body of ``size`` bytes, written as fast as the client takes it, and
    counts the bytes the client took before it closed the connection."""

    def __init__(self, size: int) -> None:
        self.size, self.sent, self.finished = size, 0, threading.Event()
        super().__init__()

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n" % self.size)
            block = b"1" * 65536
            while self.sent < self.size:
                self.sent += conn.send(block[: self.size - self.sent])
        except OSError:
            pass
        finally:
            conn.close()
            self.finished.set()


# --- what is sent -------------------------------------------------------------------------------


def test_a_request_names_tickcast_and_carries_the_query(http_server, make_settings):
    http_server.route("/f", Reply(200, CSV))
    text = http_get(http_server.base_url + "/f", make_settings().sources, "fred:X", params={"id": "X"})
    assert text == CSV
    assert http_server.requests == [("/f", {"id": "X"})]
    assert http_server.headers[0]["User-Agent"] == USER_AGENT == "tickcast (+https://github.com/tickcast)"


# --- the size cap -------------------------------------------------------------------------------


def test_a_body_at_the_cap_is_read_and_one_byte_more_is_refused_at_once(http_server, make_settings, monkeypatch):
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", 2**20)
    http_server.route("/exact", Reply(200, b"x" * 2**20))
    http_server.route("/over", Reply(200, b"x" * (2**20 + 1)))
    settings = make_settings().sources
    assert len(http_get(http_server.base_url + "/exact", settings, "csv:big")) == 2**20
    with pytest.raises(SourceError) as failure:
        http_get(http_server.base_url + "/over", settings, "csv:big")
    assert str(failure.value) == (
        f"csv:big: the response from {http_server.base_url}/over is larger than 1 MB, the most tickcast reads "
        "from one URL: refused"
    )
    assert [path for path, _ in http_server.requests] == ["/exact", "/over"]  # a refusal is not retried


def test_a_body_over_the_cap_is_not_downloaded(make_settings, monkeypatch):
    """Refused as it streams in: the client stops reading a little past the cap, instead of taking
    the whole body into memory first."""
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", 2**20)
    size = 256 * 2**20  # beyond what the kernel may buffer on 127.0.0.1 (tcp_rmem's ceiling here is 32 MB)
    with Firehose(size) as server:
        with pytest.raises(SourceError, match="larger than 1 MB"):
            http_get(f"http://127.0.0.1:{server.port}/big.csv", make_settings(retries=0).sources, "csv:big")
        assert server.finished.wait(10)
        assert server.sent < size // 4, f"the client took {server.sent / 2**20:.0f} MB of a body it refused at 1 MB"


# --- the body's charset --------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    "content_type, body, expected",
    [
        # no charset: UTF-8, its byte order mark dropped (requests would guess ISO-8859-1 for text/*)
        ("text/csv", BOM + "Wert (€),x\n".encode(), "Wert (€),x\n"),
        ("text/plain", "café\n".encode(), "café\n"),
        ("application/octet-stream", BOM + b"date\n", "date\n"),
        # a declared UTF-8, in any spelling: the byte order mark dropped too
        ("text/csv; charset=utf-8", BOM + b"date\n", "date\n"),
        ("text/csv; charset=UTF8", BOM + b"date\n", "date\n"),
        ('text/csv;charset="utf-8"', "café\n".encode(), "café\n"),
        # a declared charset that is not UTF-8 is used
        ("text/csv; charset=iso-8859-1", "café\n".encode("latin-1"), "café\n"),
        ("text/csv; Charset=Windows-1252", "€5\n".encode("cp1252"), "€5\n"),
        # a charset Python does not know: UTF-8, its byte order mark dropped
        ("text/csv; charset=x-unknown-42", BOM + "café\n".encode(), "café\n"),
        # bytes that are not UTF-8 are replaced, not an error
        ("text/csv", b"caf\xe9\n", "caf\ufffd\n"),
    ],
)
def test_a_body_is_decoded_by_its_declared_charset_else_utf8(http_server, make_settings, content_type, body, expected):
    http_server.route("/f", Reply(200, body, content_type))
    assert http_get(http_server.base_url + "/f", make_settings().sources, "csv:x") == expected


def test_a_utf8_file_with_a_byte_order_mark_served_as_text_csv_finds_its_columns(http_server, make_settings):
    http_server.route("/f.csv", Reply(200, BOM + "Datum,Wert (€)\n2024-01-02,1.5\n2024-01-03,2.5\n".encode()))
    spec = SeriesSpec(
        key="csv:x",
        source="csv",
        symbol="x",
        url=http_server.base_url + "/f.csv",
        date_column="Datum",
        value_column="Wert (€)",
    )
    frame = CsvSource(make_settings().sources).fetch(spec, None)
    assert list(frame["value"]) == [1.5, 2.5]


# --- retries, their backoff and the reason given -------------------------------------------------


def test_retries_back_off_doubling_and_the_failure_counts_the_attempts(http_server, make_settings, monkeypatch):
    waits = []
    real_pause = stopping.pause
    monkeypatch.setattr(
        stopping, "pause", lambda seconds, what: (waits.append((seconds, what)), real_pause(seconds, what))
    )
    http_server.route("/f", Reply(503, "busy", "text/plain"))
    settings = make_settings(retries=3, backoff_seconds=0.01).sources
    with pytest.raises(SourceError) as failure:
        http_get(http_server.base_url + "/f", settings, "fred:X")
    assert str(failure.value) == f"fred:X: HTTP 503 from {http_server.base_url}/f (4 attempts)"
    assert waits == [(0.01, "waiting to fetch fred:X again"), (0.02, "waiting to fetch fred:X again"),
                     (0.04, "waiting to fetch fred:X again")]  # fmt: skip
    assert len(http_server.requests) == 4


def test_one_attempt_is_one_attempt(http_server, make_settings):
    http_server.route("/f", Reply(429, "slow down", "text/plain"))
    with pytest.raises(SourceError) as failure:
        http_get(http_server.base_url + "/f", make_settings(retries=0).sources, "csv:x")
    assert str(failure.value) == f"csv:x: HTTP 429 (rate limited) from {http_server.base_url}/f (1 attempt)"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_and_not_called_rate_limits(http_server, make_settings, status):
    http_server.route("/f", Reply(status, "no", "text/plain"), Reply(status, "no", "text/plain"))
    with pytest.raises(SourceError) as failure:
        http_get(http_server.base_url + "/f", make_settings(retries=1).sources, "csv:x")
    assert str(failure.value) == f"csv:x: HTTP {status} from {http_server.base_url}/f (2 attempts)"


@pytest.mark.parametrize("status", [400, 401, 403, 410, 451])
def test_client_errors_fail_at_once(http_server, make_settings, status):
    http_server.route("/f", Reply(status, "date,value\n2024-01-02,1\n", "text/csv"))
    with pytest.raises(SourceError) as failure:
        http_get(http_server.base_url + "/f", make_settings().sources, "csv:x")
    assert str(failure.value) == f"csv:x: HTTP {status} from {http_server.base_url}/f"
    assert len(http_server.requests) == 1


def test_a_url_is_quoted_without_its_credentials_or_query(http_server, make_settings):
    http_server.route("/f.csv", Reply(500, "no", "text/plain"))
    url = http_server.base_url.replace("http://", "http://alice:s3cret@") + "/f.csv?token=abc"
    with pytest.raises(SourceError) as failure:
        http_get(url, make_settings(retries=0).sources, "csv:x")
    shown = http_server.base_url.replace("http://", "http://***@") + "/f.csv?***"
    assert str(failure.value) == f"csv:x: HTTP 500 from {shown} (1 attempt)"


def test_a_connection_dropped_before_an_answer_is_retried(make_settings):
    with Dropper(drops=1) as server:
        text = http_get(f"http://127.0.0.1:{server.port}/f.csv", make_settings(retries=1).sources, "csv:x")
        assert text == CSV and server.served == 2
    with Dropper(drops=10) as server:
        with pytest.raises(SourceError) as failure:
            http_get(f"http://127.0.0.1:{server.port}/f.csv", make_settings(retries=2).sources, "csv:x")
        assert str(failure.value) == (
            f"csv:x: the server closed the connection without answering from http://127.0.0.1:{server.port}/f.csv "
            "(3 attempts)"
        )
        assert server.served == 3


def test_a_transfer_cut_off_is_retried_with_its_reason(http_server, make_settings):
    http_server.route("/f", Reply(200, CSV, cut=10))
    with pytest.raises(SourceError) as failure:
        http_get(http_server.base_url + "/f", make_settings(retries=1).sources, "csv:x")
    assert str(failure.value) == (
        f"csv:x: the response was cut off (truncated transfer) from {http_server.base_url}/f (2 attempts)"
    )


# --- giving up: the reason, and the connection let go --------------------------------------------


def test_a_trickling_server_is_given_up_at_the_deadline_and_its_connection_shut(make_settings):
    with TricklingServer(interval=0.1) as server:
        started = time.monotonic()
        with pytest.raises(SourceError) as failure:
            http_get(f"http://127.0.0.1:{server.port}/f.csv", make_settings(retries=0, http_timeout=0.5).sources,
                     "csv:slow")  # fmt: skip
        assert time.monotonic() - started < 3
        assert str(failure.value) == (
            f"csv:slow: timed out after 0.5 s (sources.http_timeout, for the whole response) from "
            f"http://127.0.0.1:{server.port}/f.csv (1 attempt)"
        )
        assert server.lines_sent > 2  # it did trickle
        # the attempt's socket is shut: its thread ends now, not when the server stops talking
        assert eventually(lambda: not fetch_threads("csv:slow"), 2.0), "the abandoned attempt is still reading"


def test_a_server_that_never_answers_leaves_no_thread_behind(make_settings):
    """Before any answer there is no response to shut: requests' own timeout ends the attempt's
    thread at the deadline, instead of a thread waiting on the socket for as long as it stays open."""
    with SilentListener() as server:
        with pytest.raises(SourceError, match=r"timed out after 0.3 s \(sources.http_timeout"):
            http_get(f"http://127.0.0.1:{server.port}/f.csv", make_settings(retries=0, http_timeout=0.3).sources,
                     "csv:mute")  # fmt: skip
        assert eventually(lambda: not fetch_threads("csv:mute"), 2.0), "the attempt's thread still waits"


def test_a_stall_read_by_requests_is_reported_as_the_timeout(make_settings):
    """A body that stops coming: requests ends the read at its timeout with a ConnectionError (not a
    Timeout). That is the deadline, whichever clock notices first, not a truncated transfer."""
    import requests

    with TricklingServer(interval=5.0) as server:  # headers and a first line, then nothing for 5 s
        response = requests.get(f"http://127.0.0.1:{server.port}/f.csv", stream=True, timeout=0.3)
        with pytest.raises(http._Retry) as failure:
            http._read_body(response, "csv:x", "shown", 0.3)
    assert str(failure.value) == "timed out after 0.3 s (sources.http_timeout, for the whole response)"


def test_a_stop_request_ends_a_fetch_in_progress_with_what_it_was_doing(make_settings, monkeypatch):
    monkeypatch.setattr(stopping, "_requested", None)  # restored after the test
    with TricklingServer(interval=0.1) as server:
        timer = threading.Timer(0.3, setattr, args=(stopping, "_requested", "SIGTERM"))
        timer.start()
        started = time.monotonic()
        with pytest.raises(stopping.StopNow) as stopped:
            http_get(f"http://127.0.0.1:{server.port}/f.csv", make_settings(http_timeout=30).sources, "csv:slow")
        assert time.monotonic() - started < 5
        assert str(stopped.value) == "stopped by SIGTERM while fetching csv:slow"
        assert eventually(lambda: not fetch_threads("csv:slow"), 2.0)


# --- what a failure quotes ----------------------------------------------------------------------


def test_a_url_requests_cannot_use_is_quoted_without_its_secrets(make_settings):
    settings = make_settings(retries=0).sources
    with pytest.raises(SourceError) as failure:
        http_get("http://alice:s3cret@127.0.0.1:99999/x.csv?token=abc", settings, "csv:x")
    assert str(failure.value) == (
        "csv:x: request to http://***@127.0.0.1:99999/x.csv?*** failed: Failed to parse: "
        "http://***@127.0.0.1:99999/x.csv?***"
    )
    long = "http://127.0.0.1:99999/" + "a" * 120 + ".csv"
    with pytest.raises(SourceError) as failure:
        http_get(long, settings, "csv:x")
    reason = str(failure.value).split(" failed: ", 1)[1]
    assert reason == ("Failed to parse: " + long)[:119] + "…"


def chain(*messages: str) -> BaseException:
    """An exception raised while handling each of ``messages`` in turn (the first the deepest)."""
    exc: BaseException | None = None
    for message in messages:
        try:
            try:
                if exc is not None:
                    raise exc
            finally:
                raise OSError(message)
        except OSError as raised:
            exc = raised
    assert exc is not None
    return exc


@pytest.mark.parametrize(
    "deepest",
    [
        "[Errno 111] Connection refused",
        "[Errno -2] Name or service not known",
        "[Errno -3] Temporary failure in name resolution",
        "[Errno 101] Network is unreachable",
        "[Errno 113] No route to host",
        "[Errno 104] Connection reset by peer",
    ],
)
def test_a_known_network_failure_is_named_in_a_few_words(deepest):
    words = deepest.split("] ", 1)[1].replace(" by peer", "").lower()
    assert root_cause(chain(deepest, "HTTPConnectionPool(host='h', port=80): Max retries exceeded")) == words


def test_the_root_cause_is_the_deepest_exception_named_in_a_few_words():
    assert root_cause(chain("[Errno 111] Connection refused", "Max retries exceeded (Caused by ...)")) == (
        "connection refused"
    )
    assert root_cause(chain("[Errno -2] Name or service not known", "outer")) == "name or service not known"
    # no known marker: the deepest exception's text after its first ": ", secrets masked, cut to 120
    deep = chain("Errno 99: Cannot assign requested address to http://bob:pw@h/x?key=1 (port 0)", "outer: x")
    assert root_cause(deep) == "Cannot assign requested address to http://***@h/x?*** (port 0)"
    assert root_cause(OSError("a: " + "b" * 200)) == "b" * 119 + "…"
    cause = OSError("inner: the cause")
    outer = OSError("outer: the effect")
    outer.__cause__ = cause
    outer.__context__ = OSError("context: ignored")  # an explicit cause comes first
    assert root_cause(outer) == "the cause"
