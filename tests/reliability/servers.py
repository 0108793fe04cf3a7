"""Servers on 127.0.0.1 that make a client wait: one that accepts connections and never says a word
(a firewall's black hole, a proxy, the wrong port), and an HTTP server that answers a CSV one line at
a time, every ``interval`` seconds, for as long as it is let. Each notes its connections, so that a
test can wait for the client to be there instead of sleeping."""

from __future__ import annotations

import socket
import threading
import time


class SilentListener:
    """Accepts TCP connections and never writes a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections: list[socket.socket] = []
        self.connected = threading.Event()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        """What is done with each connection accepted (here: nothing, ever)."""
        self.connected.set()

    def close(self) -> None:
        self._closed = True
        for conn in self.connections:
            conn.close()
        self.sock.close()

    def __enter__(self) -> SilentListener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TricklingServer(SilentListener):
    """Answers every request with HTTP 200 and a CSV body sent one line every ``interval`` seconds,
    without end (chunked), until closed."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.lines_sent = 0
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)  # the request
            self.connected.set()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
            day = 0
            lines = [b"date,value\n"]
            while not self._closed:
                for line in lines:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(line), line))
                    self.lines_sent += 1
                time.sleep(self.interval)
                day += 1
                lines = [b"2001-%02d-%02d,%d\n" % (1 + day // 28 % 12, 1 + day % 28, day)]
        except OSError:
            pass
