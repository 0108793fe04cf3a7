"""A real HTTP server on 127.0.0.1 serving canned responses, for FRED and CSV-by-URL tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: str | bytes = ""
    content_type: str = "text/csv"
    delay: float = 0.0  # seconds before answering (timeouts)
    cut: int | None = None  # send only this many bytes of the body (a transfer cut off), then close


Handler = Callable[[str, dict], Reply]


class FixtureServer:
    """Routes are path -> list of Replies (served in order; the last one repeats) or a function."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply] | Handler] = {}
        self.fallback: Handler | None = None  # for paths with no route
        self.requests: list[tuple[str, dict]] = []
        self.headers: list[dict[str, str]] = []  # each request's headers, in the order of requests
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                server.requests.append((parts.path, query))
                server.headers.append(dict(self.headers.items()))
                reply = server._reply(parts.path, query)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body if reply.cut is None else body[: reply.cut])
                    if reply.cut is not None:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        # stop() waits for serve_forever's next poll: a short one keeps each test's teardown short
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, path: str, *replies: Reply | Handler) -> None:
        if len(replies) == 1 and callable(replies[0]):
            self.routes[path] = replies[0]
        else:
            self.routes[path] = list(replies)

    def _reply(self, path: str, query: dict) -> Reply:
        route = self.routes.get(path)
        if route is None:
            return self.fallback(path, query) if self.fallback else Reply(404, "not found", "text/plain")
        if callable(route):
            return route(path, query)
        reply = route[0]
        if len(route) > 1:
            route.pop(0)
        return reply

    def start(self) -> FixtureServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
