"""One request to the upstream and its answer back to the client, chunk for chunk.

The request goes out through an ``httpx.AsyncClient`` that ``otel_llm.instrument()``
has patched, so an LLM call gets its GenAI span from the same core an in-process app
uses (request parsing, stream observer, metrics): the proxy adds no telemetry of its own
to it. Under that client, ``upstream.UpstreamTransport`` does the HTTP and hands each
body chunk to the client connection before it goes up to the telemetry. The contract:

* Bodies stream both ways. Each upstream chunk is sent to the client as it arrives
  (uvicorn writes it at once and applies backpressure in ``send``); an upload is read
  from the client only as fast as the upstream takes it. The one exception is the
  small JSON body of an LLM call (``/api/chat``, ``/v1/chat/completions``...), read
  whole first so the core can see the model and parameters; the server cannot start
  before it has the whole body anyway.
* A client that goes away cancels the upstream request: the connection is closed and
  the GenAI span ends (``CancelledError``).
* An upstream that is down or silent gets a 502 or 504 with Ollama's ``{"error": ...}``
  body if no byte was sent yet; mid-stream, the client connection is cut, so the client
  sees a truncated body, as it would have directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx

from otel_llm.adapters import match
from otel_llm.proxy.headers import request_headers, response_headers
from otel_llm.proxy.upstream import SINK, UpstreamTransport

__all__ = [
    "JSON",
    "ClientGone",
    "Exchange",
    "Forwarder",
    "Refused",
    "drain",
    "error_body",
    "make_client",
    "upstream_client",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json; charset=utf-8"
_URL_CACHE = 256
DRAIN_LIMIT = 4 * 1024 * 1024
"""Most request bytes read and dropped after refusing a body as too large."""


def error_body(message: str) -> bytes:
    """Ollama's error shape, ``{"error":"..."}``, compact like Go writes it."""
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped)
    return b'{"error":"' + escaped.encode() + b'"}'


class Refused(Exception):
    """Answered by the proxy itself, before or instead of the upstream."""

    def __init__(
        self,
        status: int,
        message: str,
        outcome: str,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        cause: BaseException | None = None,
        drain: int = 0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.outcome = outcome
        self.headers = headers or []
        self.cause = cause
        self.drain = drain
        """Bytes of the unread request body to read and drop before answering (0: none)."""


class ClientGone(Exception):
    """The client disconnected while we were still reading its body."""


@dataclass(slots=True)
class Exchange:
    """What happened to one request: the app turns it into span attributes and a log line."""

    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    outcome: str = "ok"
    """``ok``, ``client_disconnected``, ``upstream_unreachable``, ``upstream_timeout``,
    ``upstream_error`` (broken mid-stream), ``refused`` (auth, size, target, method)."""
    error_type: str | None = None
    error_message: str | None = None
    exception: BaseException | None = None
    response_started: bool = False
    response_complete: bool = False

    def fail(self, outcome: str, exc: BaseException, message: str) -> None:
        self.outcome = outcome
        self.error_type = type(exc).__qualname__
        self.error_message = message
        self.exception = exc


def make_client(
    connect_timeout: float,
    timeout: float,
    keepalive: int = 256,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """A plain upstream client (the admin's readiness check): no env proxies, no
    redirects, no cookie jar, Nagle off.

    Requests are built as ``httpx.Request`` and passed to ``send``, so the client's
    default headers (``User-Agent: python-httpx``...) are never merged in. httpcore
    writes a request's head and body separately; without ``TCP_NODELAY`` (uvloop sets
    it, the stdlib loop via anyio does not) the body waits for a delayed ACK: +40 ms.
    """
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    transport = httpx.AsyncHTTPTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=keepalive),
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout),
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


class _NoCookies(httpx.Cookies):
    """Keeps no cookie and, unlike an empty jar, spends nothing per response looking."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _UpstreamClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` (so ``instrument()``'s patch of ``send`` applies) that
    never reads ``Set-Cookie``: a gateway passes cookies on, it keeps none."""

    _none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None


def upstream_client(connect_timeout: float, timeout: float) -> httpx.AsyncClient:
    """The proxy's upstream client: ``make_client``'s settings over ``UpstreamTransport``.

    Its ``send`` is ``httpx.AsyncClient.send``, which ``otel_llm.instrument()`` patched:
    the GenAI telemetry is the core's, unchanged.
    """
    return _UpstreamClient(
        transport=UpstreamTransport(httpx.create_ssl_context()),
        timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout),
        follow_redirects=False,
        trust_env=False,
    )


async def send_error(
    send: Send,
    exchange: Exchange,
    status: int,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with Ollama's JSON error shape (nothing was sent yet)."""
    body = error_body(message)
    exchange.status = status
    exchange.response_started = True
    head = [(b"content-type", JSON), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    exchange.bytes_out = len(body)
    exchange.response_complete = True
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Forwarder:
    """Sends requests to the one upstream it was built for; ``__call__`` is one exchange."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        upstream: str,
        *,
        max_body: int = 0,
        strip_authorization: bool = False,
    ) -> None:
        self._client = client
        self._urls: dict[str, httpx.URL] = {}
        self._base = upstream.rstrip("/")
        self._max_body = max_body
        self._strip_authorization = strip_authorization

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, exchange: Exchange
    ) -> None:
        """Forward one request; raises ``Refused`` for answers the proxy gives itself."""
        method: str = scope["method"]
        path: str = scope["path"]
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        self._check_length(raw_headers)
        first = await receive()
        if first["type"] == "http.disconnect":
            exchange.outcome = "client_disconnected"
            return
        body: bytes = first.get("body", b"")
        more = bool(first.get("more_body", False))
        self._count(exchange, len(body), more)
        if more and match(method, path) is not None:
            body = await self._read_rest(body, receive, exchange)  # the core parses LLM bodies
            more = False
        body_done = asyncio.Event()
        content: bytes | AsyncIterator[bytes]
        if more:
            content = self._stream_body(body, receive, exchange, body_done)
        else:
            content = body
            body_done.set()
        request = httpx.Request(
            method,
            self._url(scope),
            headers=request_headers(
                raw_headers,
                http_version=scope.get("http_version", "1.1"),
                strip_authorization=self._strip_authorization,
            ),
            content=content,
        )
        # The exchange runs in this task (no extra task, no extra wake-up per request); a
        # disconnect seen by the watcher cancels this task, and only that cancellation is
        # swallowed here.
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(_watch_disconnect(receive, body_done, exchange))
        state = {"active": True, "gone": False}

        def on_gone(done: asyncio.Future[bool]) -> None:
            if not state["active"] or done.cancelled() or done.exception() is not None:
                return
            if done.result() and task is not None:
                state["gone"] = True
                task.cancel()

        watcher.add_done_callback(on_gone)
        try:
            await self._exchange(request, send, exchange)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise  # we are being cancelled (shutdown deadline): not the client's doing
            uncancel = getattr(task, "uncancel", None)  # 3.11+: the count must balance
            if uncancel is not None:
                uncancel()
            exchange.outcome = "client_disconnected"
        finally:
            state["active"] = False
            watcher.cancel()

    # --- request side

    def _url(self, scope: Scope) -> httpx.URL:
        """The upstream URL; parsed once per distinct target (URLs are immutable)."""
        raw_path: bytes | None = scope.get("raw_path")
        path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
        query: bytes = scope.get("query_string", b"")
        target = path + ("?" + query.decode("latin-1") if query else "")
        url = self._urls.get(target)
        if url is None:
            url = httpx.URL(self._base + target)
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()  # many distinct targets (blobs, queries): start over
            self._urls[target] = url
        return url

    def _check_length(self, headers: list[tuple[bytes, bytes]]) -> None:
        if not self._max_body:
            return
        for name, value in headers:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return  # the server's parser rejects it
                if length > self._max_body:
                    # small excess: read it, so the client can see the answer (no reset);
                    # a huge one is refused at once (curl waits for 100-continue anyway)
                    excess = length <= self._max_body + DRAIN_LIMIT
                    raise _too_large(self._max_body, drain=DRAIN_LIMIT if excess else 0)

    def _count(self, exchange: Exchange, size: int, more: bool) -> None:
        exchange.bytes_in += size
        if self._max_body and exchange.bytes_in > self._max_body:
            raise _too_large(self._max_body, drain=DRAIN_LIMIT if more else 0)

    async def _receive(self, receive: Receive, exchange: Exchange) -> AsyncIterator[bytes]:
        """The rest of the request body, counted against the limit, as the client sends it."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk: bytes = message.get("body", b"")
            more = bool(message.get("more_body", False))
            self._count(exchange, len(chunk), more)
            if chunk:
                yield chunk
            if not more:
                return

    async def _read_rest(self, first: bytes, receive: Receive, exchange: Exchange) -> bytes:
        return first + b"".join([chunk async for chunk in self._receive(receive, exchange)])

    async def _stream_body(
        self, first: bytes, receive: Receive, exchange: Exchange, done: asyncio.Event
    ) -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in self._receive(receive, exchange):
            yield chunk
        done.set()

    # --- response side

    async def _exchange(self, request: httpx.Request, send: Send, exchange: Exchange) -> None:
        async def sink(chunk: bytes) -> None:
            # called by the transport below the telemetry: the client has each chunk
            # before the core parses it (and, on the final record, ends the span)
            exchange.bytes_out += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        request.extensions[SINK] = sink
        try:
            response = await self._client.send(request, stream=True)
        except (Refused, ClientGone):
            raise
        except httpx.TimeoutException as exc:
            exchange.fail("upstream_timeout", exc, f"upstream timed out: {_describe(exc)}")
            raise Refused(504, "upstream timed out", "upstream_timeout", cause=exc) from exc
        except httpx.TransportError as exc:
            reason = "unreachable" if isinstance(exc, httpx.ConnectError) else "failed"
            outcome = "upstream_unreachable" if reason == "unreachable" else "upstream_error"
            exchange.fail(outcome, exc, f"upstream {reason}: {_describe(exc)}")
            raise Refused(502, f"upstream {reason}", outcome, cause=exc) from exc
        try:
            exchange.status = response.status_code
            exchange.response_started = True
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response_headers(response.headers.raw),
                }
            )
            try:
                async for _ in response.aiter_raw():
                    pass  # the sink forwarded it
            except httpx.TransportError as exc:
                # Headers are gone: returning without the last message makes the server
                # cut the connection, so the client sees the break as it would directly.
                outcome = (
                    "upstream_timeout"
                    if isinstance(exc, httpx.TimeoutException)
                    else "upstream_error"
                )
                exchange.fail(outcome, exc, f"upstream broke mid-response: {_describe(exc)}")
                return
            exchange.response_complete = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _watch_disconnect(receive: Receive, body_done: asyncio.Event, exchange: Exchange) -> bool:
    """True when the client disconnects before its response is complete."""
    await body_done.wait()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return not exchange.response_complete


def _too_large(limit: int, drain: int) -> Refused:
    return Refused(
        413,
        f"request body too large: the limit is {limit} bytes",
        "refused",
        headers=[(b"connection", b"close")],
        drain=drain,
    )


async def drain(receive: Receive, budget: int, seconds: float = 2.0) -> None:
    """Read and drop up to ``budget`` more body bytes, so an early answer is not lost.

    Closing a socket with unread input makes the kernel send a reset, which can destroy
    our 413 in the client's buffer before it reads it (the "lingering close" problem).
    """

    async def read() -> None:
        left = budget
        while left > 0:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            left -= len(message.get("body", b""))

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(read(), seconds)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__qualname__}: {text}" if text else type(exc).__qualname__
