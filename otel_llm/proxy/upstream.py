"""The upstream hop: a lean HTTP/1.1 transport for the proxy's patched ``httpx.AsyncClient``.

The proxy talks to one origin, request after request. httpcore (connection pool, h11
events, anyio cancel scopes, a write per part of a request) cost about a third of the
proxy's CPU per call in py-spy; this transport does the same job with an asyncio
protocol and httptools' C parser: one write per request (head and body together), the
response head parsed in C, body chunks handed over as they arrive, flow control by
pausing the socket. The client above it is still a patched ``httpx.AsyncClient``, so
the GenAI telemetry is the core's, the same code an in-process app runs.

The contract an ``httpx`` transport owes its client, as httpcore keeps it:

* errors are httpx's: ``ConnectError``/``ConnectTimeout`` before a connection exists,
  ``ReadTimeout`` when the upstream stays silent ``timeout["read"]`` seconds (before its
  head or between chunks), ``WriteTimeout``, ``RemoteProtocolError`` for a broken or
  garbled answer (a connection closed mid-body included);
* a connection is reused only after a complete response on a keep-alive connection; a
  response closed early, cancelled or broken closes its connection; an idle connection
  the upstream closed is never handed out (and a request on a reused connection that
  dies before any answer byte is retried once on a new one, when its body is bytes);
* the body streams: a streamed upload is written as it is produced (chunked unless it
  has a length), a response body is yielded chunk by chunk as it arrives.

``SINK`` is the proxy's own addition: a coroutine in ``request.extensions`` that gets
each body chunk before the chunk is yielded up. The proxy writes it to its client
there, so the client has its bytes before the telemetry above (which may end the span
on the final chunk) runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import httptools
import httpx

__all__ = ["SINK", "UpstreamTransport"]

SINK: Final = "otel_llm.proxy.sink"
"""``request.extensions`` key: ``async (chunk: bytes) -> None``, called before yielding."""

Sink = Callable[[bytes], Awaitable[None]]

_HIGH_WATER: Final = 256 * 1024
"""Buffered response bytes beyond which the socket stops being read."""
_LOW_WATER: Final = 64 * 1024
_MAX_IDLE: Final = 256
_NO_BODY_STATUS: Final = frozenset({204, 304})


class _Connection(asyncio.Protocol):
    """One keep-alive TCP connection; one request/response on it at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._begin(head_only=False)

    def _begin(self, *, head_only: bool) -> None:
        self.parser: Any = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.head_done = False
        self.done = False
        self.until_close = False
        self.keep_alive = False
        self.received = False
        self.error: Exception | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.done:  # bytes nobody asked for: this connection is not reusable
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid response from upstream: {exc}"))
            self.close()
            return
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done:
            if self.head_done and self.until_close:
                self.done = True  # a body delimited by the close: complete
            else:
                self._fail(
                    httpx.RemoteProtocolError(
                        "upstream closed the connection without a complete response"
                    )
                )
        self._wake()
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # --- httptools callbacks

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (we never send Expect): wait for the real one
            self.headers = []
            self.reason = b""
            return
        self.status = status
        self.head_done = True
        self.keep_alive = bool(self.parser.should_keep_alive())  # llhttp forgets it at the end
        if self.head_only or status in _NO_BODY_STATUS:
            self.done = True
        else:
            framed = False
            for name, _ in self.headers:
                lowered = name.lower()
                if lowered == b"content-length" or lowered == b"transfer-encoding":
                    framed = True
                    break
            self.until_close = not framed
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.head_done and not self.done:
            self.chunks.append(body)
            self.buffered += len(body)
            self._wake()

    def on_message_complete(self) -> None:
        if self.head_done:
            self.done = True
            self._wake()

    # --- ours

    def _fail(self, exc: Exception) -> None:
        if self.error is None and not self.done:
            self.error = exc

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until something happens (head, chunk, end, error), or raise ``ReadTimeout``."""
        waiter = self._waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def take(self) -> bytes:
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered < _LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    async def drain(self, timeout: float | None) -> None:
        drained = self._drained
        if drained is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(drained), timeout)
        except asyncio.TimeoutError:
            raise httpx.WriteTimeout("upstream did not take the request in time") from None

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise httpx.RemoteProtocolError("upstream closed the connection")
        self.transport.write(data)

    def reusable(self) -> bool:
        return (
            self.done
            and self.error is None
            and not self.closed
            and not self.until_close
            and self.keep_alive
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("upstream sent nothing in time"))


class _ResponseBody(httpx.AsyncByteStream):
    """The response body as it arrives; the connection goes back to the pool at the end."""

    def __init__(
        self,
        transport: UpstreamTransport,
        conn: _Connection,
        timeout: float | None,
        sink: Sink | None,
    ) -> None:
        self._transport = transport
        self._conn = conn
        self._timeout = timeout
        self._sink = sink
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, sink = self._conn, self._sink
        try:
            while True:
                if conn.chunks:
                    chunk = conn.take()
                    if sink is not None:
                        await sink(chunk)
                    yield chunk
                elif conn.error is not None:
                    raise conn.error
                elif conn.done:
                    break
                else:
                    await conn.wait(self._timeout)
        except BaseException:
            self._release(reuse=False)
            raise
        self._release(reuse=True)

    async def aclose(self) -> None:
        self._release(reuse=False)

    def _release(self, *, reuse: bool) -> None:
        if self._released:
            return
        self._released = True
        self._transport.give_back(self._conn, reuse and self._conn.reusable())


class UpstreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to one origin over reused connections (a LIFO list of idle ones)."""

    def __init__(self, verify: ssl.SSLContext | None = None) -> None:
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._ssl = verify

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None  # a streamed upload
        conn = await self._acquire(request, timeouts)
        try:
            return await self._exchange(conn, request, body, timeouts)
        except httpx.RemoteProtocolError:
            if not (conn.reused and body is not None and not conn.received):
                raise
        # a kept-alive connection the upstream had closed: once more on a new one
        conn = await self._acquire(request, timeouts, fresh=True)
        return await self._exchange(conn, request, body, timeouts)

    async def _exchange(
        self,
        conn: _Connection,
        request: httpx.Request,
        body: bytes | None,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        read = timeouts.get("read")
        try:
            conn._begin(head_only=request.method == "HEAD")
            conn.write(_head(request) + (body or b""))
            if body is None:
                await self._upload(conn, request, timeouts.get("write"))
            while not conn.head_done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(read)
        except BaseException:
            self.give_back(conn, False)
            raise
        sink = request.extensions.get(SINK)
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_ResponseBody(self, conn, read, sink),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason},
        )

    async def _upload(
        self, conn: _Connection, request: httpx.Request, timeout: float | None
    ) -> None:
        chunked = any(
            name.lower() == b"transfer-encoding" and b"chunked" in value.lower()
            for name, value in request.headers.raw
        )
        stream: Any = request.stream
        async for chunk in stream:
            if not chunk:
                continue
            conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain(timeout)
            if conn.error is not None:  # answered (or broken) before the upload ended
                return
        if chunked:
            conn.write(b"0\r\n\r\n")

    async def _acquire(
        self, request: httpx.Request, timeouts: dict[str, float | None], fresh: bool = False
    ) -> _Connection:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
            self._all.discard(conn)
        url = request.url
        scheme = url.scheme
        host = url.host
        port = url.port or (443 if scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl or httpx.create_ssl_context()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                ),
                timeouts.get("connect"),
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._all.add(conn)
        return conn

    def give_back(self, conn: _Connection, reuse: bool) -> None:
        """Idle again (``reuse``), or closed for good."""
        if reuse and len(self._idle) < _MAX_IDLE:
            self._idle.append(conn)
            return
        self._all.discard(conn)
        conn.close()

    async def aclose(self) -> None:
        conns, self._all, self._idle = list(self._all), set(), []
        for conn in conns:
            conn.close()


def _head(request: httpx.Request) -> bytes:
    """Request line and headers, as httpx built them (``Host`` first)."""
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)
