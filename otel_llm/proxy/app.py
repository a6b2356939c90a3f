"""The proxy's ASGI application: one SERVER span per request, continuing the caller's trace.

For each request: extract ``traceparent``/``tracestate``/``baggage`` from the caller,
start the SERVER span as a child of the caller's span, make that context current, refuse
what a fixed-upstream gateway must refuse (``CONNECT``, absolute-form targets, missing
or wrong bearer tokens, oversized bodies), then hand over to ``Forwarder``. While it
forwards, the context is current, so the core's GenAI span is a child of the SERVER span
and copies the allowed baggage keys (``session.id``, ``user.id``, ``otel_llm.tag.*``...)
to its attributes; the core injects the context upstream. Afterwards: span status and
attributes, the ``http.server.request.duration`` histogram (method, route, status and
error type only: no tag ever becomes a label), and one structured access-log line with
the trace and span ids. Query strings, headers and token values are never logged.
"""

from __future__ import annotations

import asyncio
from time import perf_counter_ns
from typing import Any, Final

import httpx
import structlog
from opentelemetry import baggage, context, metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_llm import _state
from otel_llm._units import seconds
from otel_llm.proxy.auth import CHALLENGE, BearerAuth
from otel_llm.proxy.config import ProxyConfig
from otel_llm.proxy.forward import (
    ClientGone,
    Exchange,
    Forwarder,
    Receive,
    Refused,
    Scope,
    Send,
    drain,
    send_error,
    upstream_client,
)
from otel_llm.proxy.protocol import ABSOLUTE_FORM, ALLOW, CONNECT_REFUSED
from otel_llm.tags import TAG_PREFIX, allow_list
from otel_llm.version import __version__

__all__ = ["ABSOLUTE_FORM", "ROUTES", "ProxyApp", "route_of"]

ROUTES: Final = frozenset(
    {
        "/",
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/api/pull",
        "/api/push",
        "/api/create",
        "/api/show",
        "/api/tags",
        "/api/ps",
        "/api/copy",
        "/api/delete",
        "/api/version",
        "/api/status",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/v1/responses",
        "/v1/messages",
    }
)
"""Ollama's routes, the only paths used as ``http.route`` (low cardinality)."""

_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"}
)
_CLOSE: Final = (b"connection", b"close")
_PROPAGATION: Final = frozenset({b"traceparent", b"tracestate", b"baggage"})
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def route_of(path: str) -> str | None:
    """The Ollama route a path is, or None (unknown paths have no ``http.route``)."""
    if path in ROUTES:
        return path
    if path.startswith("/api/blobs/"):
        return "/api/blobs/{digest}"
    if path.startswith("/v1/models/"):
        return "/v1/models/{model}"
    return None


class ProxyApp:
    """ASGI app forwarding every request to ``config.upstream`` through a patched httpx client."""

    def __init__(
        self,
        config: ProxyConfig,
        client: httpx.AsyncClient | None = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        self.config = config
        self.client = client or upstream_client(config.connect_timeout, config.timeout)
        """The upstream client; ``await app.client.aclose()`` on shutdown."""
        self._auth = BearerAuth(config.tokens)
        self._max_headers = config.max_headers
        self._forward = Forwarder(
            self.client,
            config.upstream,
            max_body=config.max_body,
            strip_authorization=self._auth.enabled,
        )
        self._tracer = trace.get_tracer(
            "otel_llm.proxy", __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter("otel_llm.proxy", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests (through the proxy, to the last byte).",
            explicit_bucket_boundaries_advisory=list(_BUCKETS),
        )
        self._log = structlog.get_logger("otel_llm.proxy") if config.access_log else None
        self.active = 0
        """Requests in flight (their spans not ended yet)."""
        upstream = httpx.URL(config.upstream)
        self._upstream_attr = (
            f"{upstream.host}:{upstream.port or (443 if upstream.scheme == 'https' else 80)}"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off and websockets are not served
        start = perf_counter_ns()
        self.active += 1
        method: str = scope["method"]
        path: str = scope["path"]
        carrier: dict[str, str] = {}
        user_agent = None
        for name, value in scope["headers"]:
            if name in _PROPAGATION:
                text = value.decode("latin-1")
                carrier[name.decode()] = (
                    f"{carrier[name.decode()]},{text}" if name.decode() in carrier else text
                )
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
        parent = propagate.extract(carrier, context=Context()) if carrier else Context()
        route = route_of(path)
        span = self._tracer.start_span(
            f"{method} {route}" if route else method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=self._start_attributes(scope, method, path, route, user_agent, parent),
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        exchange = Exchange()
        try:
            await self._handle(scope, receive, send, exchange)
        except asyncio.CancelledError as exc:
            exchange.fail("cancelled", exc, "request cancelled (shutdown deadline)")
            raise
        except Exception as exc:  # a proxy bug: answer 502 if we still can, record it
            exchange.fail("proxy_error", exc, f"proxy error: {type(exc).__qualname__}")
            if not exchange.response_started:
                await send_error(send, exchange, 502, "proxy error")
        finally:
            context.detach(token)
            try:
                self._finish(span, exchange, method, path, route, scope, start)
            finally:
                self.active -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange) -> None:
        try:
            self._admit(scope)
            await self._forward(scope, receive, send, exchange)
        except Refused as refusal:
            if exchange.outcome == "ok":
                exchange.outcome = refusal.outcome
            if not exchange.response_started:
                if refusal.drain:
                    await drain(receive, refusal.drain)
                await send_error(send, exchange, refusal.status, refusal.message, refusal.headers)
        except ClientGone:
            exchange.outcome = "client_disconnected"

    def _admit(self, scope: Scope) -> None:
        """Raise ``Refused`` for what this gateway never forwards."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if len(headers) > self._max_headers:
            raise Refused(
                431,
                f"too many header fields: the limit is {self._max_headers}",
                "refused",
                headers=[_CLOSE],
            )
        if scope["method"] == "CONNECT":  # the protocol refuses it first; pipelined ones too
            raise Refused(405, CONNECT_REFUSED, "refused", headers=[(b"allow", ALLOW), _CLOSE])
        framing = 0
        for name, _ in headers:
            if name == b"content-length":
                framing |= 1
            elif name == b"transfer-encoding":
                framing |= 2
        if framing == 3:  # RFC 9112 §6.1: a smuggling attempt; the rest is unreadable
            raise Refused(
                400,
                "Content-Length with Transfer-Encoding is not allowed",
                "refused",
                headers=[_CLOSE],
            )
        if scope.get(ABSOLUTE_FORM) or not scope["path"].startswith("/"):
            raise Refused(
                400,
                "absolute-form request targets are not supported: this proxy only forwards "
                "to its upstream",
                "refused",
            )
        if not self._auth.allows(scope["headers"]):
            raise Refused(401, "unauthorized", "refused", headers=[CHALLENGE])

    def _start_attributes(
        self,
        scope: Scope,
        method: str,
        path: str,
        route: str | None,
        user_agent: str | None,
        parent: Context,
    ) -> dict[str, AttributeValue]:
        attrs: dict[str, AttributeValue] = {
            "http.request.method": method if method in _METHODS else "_OTHER",
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
            "otel_llm.proxy.upstream": self._upstream_attr,
        }
        if method not in _METHODS:
            attrs["http.request.method_original"] = method
        if route:
            attrs["http.route"] = route
        server = scope.get("server")
        if server:
            attrs["server.address"] = server[0]
            if server[1] is not None:
                attrs["server.port"] = server[1]
        client = scope.get("client")
        if client:
            attrs["client.address"] = client[0]
        if user_agent:
            attrs["user_agent.original"] = user_agent
        entries = baggage.get_all(parent)
        if entries:
            state = _state.current
            allowed = state.settings.baggage_keys if state is not None else allow_list(None)
            for key, value in entries.items():
                if key in allowed or key.startswith(TAG_PREFIX):
                    attrs[key] = str(value)
        return attrs

    def _finish(
        self,
        span: Span,
        exchange: Exchange,
        method: str,
        path: str,
        route: str | None,
        scope: Scope,
        start: int,
    ) -> None:
        duration = seconds(perf_counter_ns() - start)
        status = exchange.status
        error_type = exchange.error_type
        if error_type is None and status >= 500:
            error_type = str(status)
        attrs: dict[str, AttributeValue] = {
            "otel_llm.proxy.outcome": exchange.outcome,
            "http.request.body.size": exchange.bytes_in,
            "http.response.body.size": exchange.bytes_out,
        }
        if status:
            attrs["http.response.status_code"] = status
        if error_type is not None:
            attrs["error.type"] = error_type
        span.set_attributes(attrs)
        if exchange.exception is not None and exchange.outcome not in ("cancelled",):
            span.record_exception(exchange.exception)
        if error_type is not None and (status >= 500 or exchange.outcome != "ok"):
            span.set_status(Status(StatusCode.ERROR, exchange.error_message or error_type))
        span.end()
        labels: dict[str, AttributeValue] = {
            "http.request.method": method if method in _METHODS else "_OTHER",
            "url.scheme": "http",
        }
        if route:
            labels["http.route"] = route
        if status:
            labels["http.response.status_code"] = status
        if error_type is not None:
            labels["error.type"] = error_type
        self._duration.record(duration, labels)
        if self._log is not None:
            ctx = span.get_span_context()
            client = scope.get("client")
            self._log.info(
                "request",
                method=method,
                path=path,
                status=status,
                outcome=exchange.outcome,
                duration_ms=round(duration * 1000, 3),
                bytes_in=exchange.bytes_in,
                bytes_out=exchange.bytes_out,
                client=client[0] if client else None,
                error=exchange.error_message,
                trace_id=format(ctx.trace_id, "032x"),
                span_id=format(ctx.span_id, "016x"),
            )
