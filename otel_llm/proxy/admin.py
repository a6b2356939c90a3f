"""The admin port: ``/metrics``, ``/healthz``, ``/readyz``; apart from client traffic.

* ``/metrics``: the GenAI metrics of every call through the proxy, from the same
  ``otel_llm.prometheus`` translation the in-process endpoint uses (so the names are
  identical: ``gen_ai_client_operation_duration_seconds``...), plus the proxy's own
  ``http_server_request_duration_seconds`` and prometheus-client's ``process_*``
  (CPU, memory). OpenMetrics (with exemplars) when the scraper asks for it.
* ``/healthz``: 200 while the process serves.
* ``/readyz``: 200 when the upstream answers ``GET /api/version``; 503 when it does not,
  or while the proxy drains on shutdown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from otel_llm.proxy.forward import JSON, Receive, Scope, Send

__all__ = ["AdminApp", "build_registry"]


class _Translated(Collector):
    """Each scrape: a fresh snapshot of the OTel metrics, named as the Collector names them."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def collect(self) -> Iterator[Any]:
        from otel_llm.prometheus import translate

        return iter(translate(self._reader.snapshot()))

    def describe(self) -> Iterator[Any]:
        return iter(())


def build_registry(reader: Any) -> CollectorRegistry:
    """A registry serving ``reader`` (a ``prometheus.PrometheusReader``) and process stats."""
    registry = CollectorRegistry(auto_describe=False)
    if reader is not None:
        registry.register(_Translated(reader))
    ProcessCollector(registry=registry)
    return registry


class AdminApp:
    """ASGI app of the admin port."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        upstream: str,
        registry: CollectorRegistry,
        *,
        probe_timeout: float = 2.0,
    ) -> None:
        self._client = client
        self._probe = upstream.rstrip("/") + "/api/version"
        self._upstream = upstream
        self._registry = registry
        self._probe_timeout = probe_timeout
        self.draining = False
        """Set on shutdown: ``/readyz`` turns 503 so load balancers stop sending."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method not in ("GET", "HEAD"):
            await _reply(send, 405, _json({"error": "method not allowed"}), JSON)
        elif path == "/metrics":
            accept = ""
            for name, value in scope["headers"]:
                if name == b"accept":
                    accept = value.decode("latin-1")
            encoder, content_type = choose_encoder(accept)
            body = await asyncio.to_thread(encoder, self._registry)
            await _reply(send, 200, body, content_type.encode())
        elif path == "/healthz":
            await _reply(send, 200, _json({"status": "ok"}), JSON)
        elif path == "/readyz":
            status, payload = await self._ready()
            await _reply(send, status, _json(payload), JSON)
        else:
            await _reply(send, 404, _json({"error": "not found"}), JSON)

    async def _ready(self) -> tuple[int, dict[str, Any]]:
        if self.draining:
            return 503, {"status": "draining"}
        try:
            response = await self._client.get(self._probe, timeout=self._probe_timeout)
        except httpx.HTTPError as exc:
            return 503, {
                "status": "unavailable",
                "upstream": self._upstream,
                "error": type(exc).__name__,
            }
        if response.status_code >= 400:
            return 503, {
                "status": "unavailable",
                "upstream": self._upstream,
                "error": f"upstream answered {response.status_code}",
            }
        return 200, {"status": "ready", "upstream": self._upstream}


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _reply(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
