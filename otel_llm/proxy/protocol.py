"""The client connection: uvicorn's HTTP/1.1 protocol with the limits a gateway needs.

uvicorn parses requests (httptools or h11) and drives the ASGI app. Either parser class
is wrapped here, identically, with what must hold before the app sees a request:

* **Head size.** At most ``max_header_bytes`` of request line and headers are handed to
  the parser; one byte more and the answer is 431. Memory stays bounded whatever the
  client sends.
* **Deadlines.** A request's head must be complete ``header_timeout`` seconds after
  its first byte (or after the connection opened): 408 if part of it came, a silent
  close if nothing did. A request body may not go silent for ``body_timeout`` seconds
  (408). An idle keep-alive connection is closed after ``idle_timeout`` (uvicorn's
  keep-alive timer).
* **Refusals the parser would get wrong.** ``CONNECT`` gets 405 (httptools fails on its
  authority-form target, h11 would hand it on); every malformed request gets 400,
  including ``Content-Length`` together with ``Transfer-Encoding`` (RFC 9112 §6.1),
  which llhttp rejects and the app refuses for h11.

Every refusal here is Ollama's ``{"error": "..."}`` with ``Connection: close``; the
connection is then half-closed and read (and dropped) for up to ``LINGER_SECONDS``
before it is closed, so unread input does not make the kernel reset it before the
client reads the answer. The header count and absolute-form targets are checked by the
app, which sees parsed headers under both parsers. Separately, a response head waits
for its first body bytes so both leave in one write (``_Coalescing``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from otel_llm.proxy.forward import JSON, error_body

__all__ = [
    "ABSOLUTE_FORM",
    "ALLOW",
    "CONNECT_REFUSED",
    "LINGER_BYTES",
    "LINGER_SECONDS",
    "Limits",
    "http_protocol",
    "refusal",
]

ABSOLUTE_FORM: Final = "otel_llm.absolute_form"
"""Scope key the httptools protocol sets when the request target was not origin-form."""

ALLOW: Final = b"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"
"""Methods the proxy forwards (the ``Allow`` header of a 405)."""
CONNECT_REFUSED: Final = "CONNECT is not supported: this proxy only forwards to its upstream"
LINGER_SECONDS: Final = 2.0
"""After refusing, how long the proxy keeps reading (and dropping) before it closes."""
LINGER_BYTES: Final = 4 * 1024 * 1024
"""After refusing, the most it reads and drops before it closes."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What a client connection may take; the proxy's defaults follow nginx and Go."""

    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    idle_timeout: float = 75.0
    body_timeout: float = 60.0


def refusal(status: int, message: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer in Ollama's error shape that closes the connection."""
    body = error_body(message)
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode()),
            b"content-type: " + JSON + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            extra,
            b"connection: close\r\n\r\n",
            body,
        )
    )


class _Coalescing:
    """A transport that holds a response's head until its first body bytes (or the end
    of the event-loop turn), so both leave in one ``send`` call.

    uvicorn writes a response head and each body chunk separately; on loopback every
    write is a syscall that also runs the receiver's TCP path, the largest single cost
    in the proxy's profile. Joining the head with what follows saves one per response
    and delays nothing: body chunks are written at once (the client has each before the
    telemetry looks at it), and a lone head leaves before the loop next waits for I/O.
    """

    __slots__ = ("_held", "_loop", "_transport", "fresh")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self.fresh = True
        """The next write is a response head: hold it."""

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.fresh:
            self.fresh = False
            self._held = data
            self._loop.call_soon(self._flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self._transport.write(data)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (len(held) if held else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Guard:
    """Mixed in before a uvicorn protocol class; ``limits`` is set per built class."""

    limits: Limits
    # uvicorn's protocol attributes we read
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    _writer: _Coalescing

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_start = b""
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_last = 0.0
        self._refused = False
        self._lingered = 0
        self._linger: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._writer = _Coalescing(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(self._writer)  # type: ignore[misc]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        if not self._awaiting_head():
            self._body_last = self.loop.time()  # the body deadline is per silence, not total
            super().data_received(data)  # type: ignore[misc]
            return
        if self._head_timer is None:
            self._arm_head_timer()
        if len(self._head_start) < 8:
            self._head_start = (self._head_start + data[:8]).lstrip(b"\r\n")[:8]
            if self._head_start.startswith(b"CONNECT "):
                self._refuse(405, CONNECT_REFUSED, b"allow: " + ALLOW + b"\r\n")
                return
        room = self.limits.max_header_bytes - self._head_bytes
        self._head_bytes += len(data)
        if len(data) <= room:
            self._feed(data)
            return
        cycle = self.cycle
        self._feed(data[:room])
        if self._refused or self.transport.is_closing():
            return
        if self.cycle is cycle:  # the head is still not complete
            self._refuse(
                431,
                "request header fields too large: the limit is "
                f"{self.limits.max_header_bytes} bytes",
            )
            return
        self.data_received(data[room:])

    # --- uvicorn hooks

    def send_400_response(self, msg: str) -> None:
        """The parser's refusal (``msg`` is uvicorn's plain text), in Ollama's shape."""
        self._refuse(400, "invalid HTTP request")

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self._head_bytes and self._head_timer is None and not self.transport.is_closing():
            self._arm_head_timer()  # a pipelined head began while we answered

    # --- ours

    def _feed(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not cycle:  # a head was complete: the next one starts afresh
            self._writer.fresh = True  # and its answer's head may wait for its body
            self._head_bytes = 0
            self._head_start = b""
            self._cancel_head_timer()
            new = self.cycle
            if new is not None and new.more_body and self._body_timer is None:
                self._body_last = self.loop.time()
                self._body_timer = self.loop.call_later(
                    self.limits.body_timeout, self._body_timeout
                )

    def _awaiting_head(self) -> bool:
        cycle = self.cycle
        return cycle is None or not cycle.more_body

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._refused:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return  # still answering: re-armed once the answer is complete
        if not self._head_bytes:
            self.transport.close()  # nothing came: no answer to give
            return
        self._refuse(
            408, f"request header timeout: send the head within {self.limits.header_timeout:g} s"
        )

    def _body_timeout(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or self._refused or cycle is None or not cycle.more_body:
            return
        flow = getattr(self, "flow", None)
        if flow is not None and flow.read_paused:  # we stopped reading (backpressure)
            self._body_last = self.loop.time()  # silence that is ours does not count
        silent = self.loop.time() - self._body_last
        if silent < self.limits.body_timeout:
            wait = self.limits.body_timeout - silent
            self._body_timer = self.loop.call_later(wait, self._body_timeout)
            return
        self._refuse(
            408,
            f"request body timeout: no body bytes for {self.limits.body_timeout:g} s",
            mid_request=True,
        )

    def _refuse(
        self, status: int, message: str, extra: bytes = b"", *, mid_request: bool = False
    ) -> None:
        """Answer, half-close, read and drop for a moment, close.

        ``mid_request``: the app is still waiting for this request's body, so it has not
        answered; it sees a disconnect once the connection is closed.
        """
        self._refused = True
        self._cancel_head_timer()
        cycle = self.cycle
        transport = self.transport
        if transport.is_closing():
            return
        answering = cycle is not None and not cycle.response_complete
        if answering and (cycle.response_started or not mid_request):
            transport.close()  # an answer is under way: ours cannot be written
            return
        transport.write(refusal(status, message, extra))
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except (OSError, RuntimeError):
            transport.close()
            return
        self._linger = self.loop.call_later(LINGER_SECONDS, transport.close)


def http_protocol(kind: str, limits: Limits | None = None) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol class (``auto``, ``httptools``, ``h11``) with the limits.

    httptools hands uvicorn only the path of ``GET http://elsewhere/x``, so the app could
    not tell it from ``GET /x``; that class also marks such requests in the scope. (h11
    keeps the whole target in ``scope["path"]``, which the app checks directly.)
    """
    bound = limits or Limits()
    if kind in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        except ImportError:
            if kind == "httptools":
                raise
        else:

            class GuardedHttpTools(_Guard, HttpToolsProtocol):
                limits = bound

                def on_headers_complete(self) -> None:
                    if self.url[:1] != b"/":
                        self.scope[ABSOLUTE_FORM] = True  # type: ignore[typeddict-unknown-key]
                    super().on_headers_complete()

            return GuardedHttpTools
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11(_Guard, H11Protocol):
        limits = bound

    return GuardedH11
