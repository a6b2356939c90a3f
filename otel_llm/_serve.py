"""A uvicorn server for a program that owns its signals, and the socket it listens on.

Written once for the mock Ollama (served from a helper thread) and the proxy (two servers on
one loop). Imported only by them: uvicorn is an optional dependency.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn

__all__ = ["QuietServer", "bind"]


class QuietServer(uvicorn.Server):
    """Leaves signal handling to the host program (a helper thread, or a shared loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # the same hook in uvicorn < 0.29
        pass


def bind(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket; port 0 picks a free one.

    The protocol is given explicitly: asyncio sets ``TCP_NODELAY`` on accepted sockets only
    when ``sock.proto == IPPROTO_TCP`` (with 0, Nagle stays on: ~40 ms stalls per response).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
