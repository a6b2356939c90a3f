"""A loopback HTTP server answering fixed bytes: byte-identity, gzip and redirect tests.

The mock Ollama stamps each reply with the time, so comparing bodies with and
without instrumentation needs a server whose bytes never change.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    chunks: Sequence[bytes] = ()
    content_type: str = "application/x-ndjson"
    status: int = 200
    gzip: bool = False
    location: str | None = None  # answer 307 to here instead
    cut: bool = False  # drop the connection inside a chunk after the chunks


@dataclass
class StaticServer:
    routes: dict[str, Route]
    received: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                route = owner.routes.get(self.path)
                if route is None:  # e.g. a context-window lookup (/api/show): not the test's
                    body = b'{"error":"not found"}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                owner.received.append({k.lower(): v for k, v in self.headers.items()})
                if route.location is not None:
                    self.send_response(307)
                    self.send_header("Location", route.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Transfer-Encoding", "chunked")
                if route.gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                chunks = [gzip.compress(b"".join(route.chunks))] if route.gzip else route.chunks
                for chunk in chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                if route.cut:
                    self.wfile.write(b"ff\r\npartial")
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"0\r\n\r\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StaticServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
