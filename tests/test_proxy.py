"""The sidecar proxy, in process, over real sockets on 127.0.0.1, against the mock Ollama.

Requests are made with ``http.client`` (not patched by otel_llm), bare sockets, curl and
the official Ollama JavaScript client, so every GenAI span seen here was made by the
proxy's own instrumented ``httpx.AsyncClient``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_llm
from otel_llm.prometheus import PrometheusReader
from otel_llm.proxy import ProxyConfig, ProxyServer
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import Spans, require

QUESTION = [{"role": "user", "content": "Why is the sky blue?"}]
CHAT = {"model": "llama3.2", "messages": QUESTION}
SCENARIOS = {
    "broken": Scenario(error_after=2),
    "down": Scenario(status=503, error_message="server overloaded"),
    "wide": Scenario(embedding_dim=384),
    "long": Scenario(chunks=6000),
    "slow": Scenario(ttft=1.0),
    "drip": Scenario(chunks=200, chunk_delay=0.02),
    "paced": Scenario(chunks=5, chunk_delay=0.15),
    "flood": Scenario(reply="x" * 1024, chunks=30000),
}
TRACE_ID = "0af7651916cd43dd8421e5ba7ffdc34b"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
TOKEN = "s3cret-token-0123456789"
ROOT = Path(__file__).resolve().parents[1]

READER = PrometheusReader()
METERS = MeterProvider(metric_readers=[READER])


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama(SCENARIOS) as server:
        yield server


def _config(upstream: str, **changes: Any) -> ProxyConfig:
    base = ProxyConfig(
        listen=("127.0.0.1", 0), admin=("127.0.0.1", 0), upstream=upstream, access_log=False
    )
    return replace(base, **changes)


_RUNNING: list[ProxyServer] = []


def _proxy(config: ProxyConfig) -> ProxyServer:
    server = ProxyServer(config, meter_provider=METERS, metrics_reader=READER)
    _RUNNING.append(server)
    return server


@pytest.fixture(scope="module")
def proxy(mock: MockOllama) -> Iterator[ProxyServer]:
    with _proxy(_config(mock.url)) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(mock: MockOllama) -> Iterator[ProxyServer]:
    """Bearer tokens on, a 64 KiB body limit."""
    with _proxy(_config(mock.url, tokens=(TOKEN, "other"), max_body=65536)) as server:
        yield server


@pytest.fixture(scope="module")
def dead_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    return port


@pytest.fixture(scope="module")
def dead(dead_port: int) -> Iterator[ProxyServer]:
    with _proxy(_config(f"http://127.0.0.1:{dead_port}", connect_timeout=1.0)) as server:
        yield server


@pytest.fixture(autouse=True)
def settled() -> Iterator[None]:
    """After each test, wait until every proxy has ended its spans (so none leak onward)."""
    yield
    wait_for(lambda: all(p.active_requests == 0 for p in _RUNNING), timeout=5)


@pytest.fixture
def traced(collected: Spans, mock: MockOllama) -> Spans:
    """Instrumented like ``otel-llm proxy`` does it: the upstream is an Ollama server."""
    otel_llm.instrument(
        tracer_provider=trace.get_tracer_provider(),
        meter_provider=METERS,
        ollama_hosts=[mock.host],
    )
    return collected


# --- helpers --------------------------------------------------------------------------

Reply = tuple[int, list[tuple[str, str]], bytes]


def fetch(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
) -> Reply:
    """One request over a fresh connection: status, headers as sent, body (de-chunked)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    data: Any = json.dumps(body).encode() if isinstance(body, dict) else body
    hdrs = dict(headers or {})
    if isinstance(body, dict):
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def jsonof(reply: Reply) -> Any:
    return json.loads(reply[2])


_VOLATILE = [
    (re.compile(rb'"created_at":"[^"]+"'), b'"created_at":"T"'),
    (re.compile(rb'"expires_at":"[^"]+"'), b'"expires_at":"T"'),
    (re.compile(rb'"created":\d+'), b'"created":0'),
    (re.compile(rb'"id":"(chatcmpl|cmpl)-\d+"'), rb'"id":"\1-N"'),
]


def normalised(reply: Reply) -> Reply:
    """Timestamps and per-server counters out; everything else byte for byte."""
    status, headers, body = reply
    size = str(len(body))
    for pattern, repl in _VOLATILE:
        body = pattern.sub(repl, body)
    # timestamps vary in length: a content-length is right if it matches its own body
    kept = []
    for name, value in headers:
        name = name.lower()
        if name == "content-length" and value == size:
            value = "matches"
        if name != "date":
            kept.append((name, value))
    return status, kept, body


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def server_span(spans: Spans, path: str, timeout: float = 5.0) -> ReadableSpan:
    """The proxy's SERVER span for ``path`` (it ends just after the last byte is sent)."""

    def find() -> ReadableSpan | None:
        for span in spans.all():
            if span.kind == SpanKind.SERVER and (span.attributes or {}).get("url.path") == path:
                return span
        return None

    span = wait_for(find, timeout)
    assert span is not None, [s.name for s in spans.all()]
    return span  # type: ignore[no-any-return]


def genai_span(spans: Spans, timeout: float = 5.0) -> ReadableSpan:
    found = wait_for(spans.llm, timeout)
    assert len(found) == 1, [s.name for s in found]
    return found[0]  # type: ignore[no-any-return]


def dechunk(data: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body."""
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, data = out + data[:n], data[n + 2 :]
    return out


def hexid(value: int, width: int = 16) -> str:
    return format(value, f"0{width}x")


def open_stream(base: str, payload: dict[str, Any]) -> socket.socket:
    """POST over a bare socket and return it once the response head has arrived."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    body = json.dumps(payload).encode()
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        f"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    return sock


def mock_busy(mock: MockOllama) -> int:
    """Requests the mock is still serving (uvicorn's own count of running ASGI tasks)."""
    server = mock._server
    return len(server.server_state.tasks) if server is not None else 0


# --- byte identity ------------------------------------------------------------------------

BIG_INPUT = [f"text number {i}" for i in range(60)]
CASES: list[tuple[str, str, Any]] = [
    ("POST", "/api/chat", CHAT),
    ("POST", "/api/chat", {**CHAT, "stream": False}),
    ("POST", "/api/generate", {"model": "llama3.2", "prompt": "Why is the sky blue?"}),
    ("POST", "/api/generate", {"model": "llama3.2", "prompt": "Why?", "stream": False}),
    ("POST", "/api/chat", {**CHAT, "model": "broken"}),
    ("POST", "/api/chat", {**CHAT, "model": "broken", "stream": False}),
    ("POST", "/api/chat", {**CHAT, "model": "down"}),
    ("POST", "/api/chat", {**CHAT, "model": "llama9"}),
    ("POST", "/api/chat", b'{"model": llama'),
    ("POST", "/api/chat", {**CHAT, "model": "long", "stream": False}),
    ("POST", "/api/embed", {"model": "wide", "input": BIG_INPUT}),
    ("POST", "/api/embeddings", {"model": "all-minilm", "prompt": "hello"}),
    ("POST", "/v1/chat/completions", {**CHAT, "stream": True}),
    (
        "POST",
        "/v1/chat/completions",
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
    ),
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/chat/completions", {**CHAT, "messages": []}),
    ("POST", "/v1/completions", {"model": "llama3.2", "prompt": "Say hi", "stream": True}),
    ("POST", "/v1/embeddings", {"model": "all-minilm", "input": ["a", "b"]}),
    ("GET", "/api/tags", None),
    ("GET", "/api/ps", None),
    ("GET", "/api/version", None),
    ("POST", "/api/show", {"model": "llama3.2"}),
    ("GET", "/", None),
    ("HEAD", "/", None),
    ("GET", "/v1/models", None),
    ("GET", "/v1/models/llama3.2", None),
    ("DELETE", "/api/delete", {"model": "ghost"}),  # a real delete would change the mock
    ("GET", "/no/such/path?q=1&r=%20x", None),
]


class TestTransparency:
    @pytest.mark.parametrize(("method", "path", "body"), CASES)
    def test_identical_to_direct(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer, method: str, path: str, body: Any
    ) -> None:
        """Status, headers and body through the proxy equal the direct answer."""
        direct = fetch(mock.url, method, path, body)
        proxied = fetch(proxy.url, method, path, body)
        assert normalised(direct) == normalised(proxied)

    def test_request_reaches_upstream_unchanged(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer
    ) -> None:
        """End-to-end headers and the body arrive as sent; hop-by-hop ones stop; Via is added."""
        headers = {
            "X-Custom": "one",
            "User-Agent": "probe/1.0",
            "Authorization": "Bearer upstream-key",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "for-the-proxy-only",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
        }
        body = b'{"model":"x","weird":  [1, 2]}'
        fetch(proxy.url, "POST", "/api/whatever?a=1", body, headers)
        seen = mock.requests[-1]
        kept = {k: seen.headers.get(k) for k in ("x-custom", "user-agent", "authorization", "via")}
        dropped = [k for k in ("x-hop", "keep-alive", "te", "connection") if k in seen.headers]
        expected = {
            "x-custom": "one",
            "user-agent": "probe/1.0",
            "authorization": "Bearer upstream-key",
            "via": "1.1 otel-llm",
        }
        assert (expected, [], body, "/api/whatever") == (kept, dropped, seen.body, seen.path)

    @pytest.mark.parametrize("chunked", [False, True])
    def test_large_upload_streams_through(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer, chunked: bool
    ) -> None:
        """An 8 MiB upload (length-framed or chunked) reaches the upstream byte for byte."""
        payload = os.urandom(8 * 1024 * 1024)
        body: Any = iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)])
        status, _, _ = fetch(
            proxy.url,
            "POST",
            "/api/blobs/sha256:abc",
            body if chunked else payload,
            chunked=chunked,
        )
        assert (404, payload) == (status, mock.requests[-1].body)

    def test_chunks_flushed_as_they_come(self, traced: Spans, proxy: ProxyServer) -> None:
        """Each upstream chunk reaches the client when sent, not when the stream ends."""
        host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        started = time.monotonic()
        conn.request("POST", "/api/chat", body=json.dumps({**CHAT, "model": "paced"}))
        response = conn.getresponse()
        arrivals = []
        while response.readline():
            arrivals.append(time.monotonic() - started)
        conn.close()
        # 5 content lines 0.15 s apart, then the done line: spread out, not bunched at the end
        assert (6, True, True) == (
            len(arrivals),
            arrivals[0] < 0.3,
            arrivals[4] - arrivals[0] > 0.45,
        )

    def test_backpressure_reaches_upstream(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer
    ) -> None:
        """A client that stops reading stalls the upstream instead of filling memory."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(tuple(proxy.config.listen))
        body = json.dumps({**CHAT, "model": "flood"}).encode()  # ~33 MB of NDJSON
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        time.sleep(1.0)  # the stream takes ~1.4 s unthrottled, direct
        still_sending = mock_busy(mock)
        sock.close()
        span = server_span(traced, "/api/chat")
        sent = span.attributes["http.response.body.size"]  # type: ignore[index]
        assert (True, "client_disconnected", True) == (
            still_sending >= 1,  # the mock is stuck in its send: nobody reads
            span.attributes["otel_llm.proxy.outcome"],  # type: ignore[index]
            sent < 16_000_000,  # kernel buffers hold a few MB; the rest waited upstream
        )


# --- trace continuity and tags ----------------------------------------------------------------


class TestTraceContinuity:
    def test_server_span_continues_callers_trace(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer
    ) -> None:
        """SERVER span parent = the caller's span; GenAI span parent = SERVER span; upstream
        gets the GenAI span as its parent."""
        fetch(proxy.url, "POST", "/api/chat", CHAT, {"traceparent": TRACEPARENT})
        server = server_span(traced, "/api/chat")
        genai = genai_span(traced)
        upstream_parent = mock.requests[-1].headers["traceparent"].split("-")[2]
        assert server.parent is not None and genai.parent is not None
        expected = (TRACE_ID, TRACE_ID, CALLER_SPAN, hexid(server.context.span_id), True)
        actual = (
            hexid(server.context.trace_id, 32),
            hexid(genai.context.trace_id, 32),
            hexid(server.parent.span_id),
            hexid(genai.parent.span_id),
            server.parent.is_remote,
        )
        assert expected == actual
        assert hexid(genai.context.span_id) == upstream_parent

    def test_raw_socket_client_joins_the_trace(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer
    ) -> None:
        """A client we cannot patch (any language, here bare HTTP/1.1 bytes) pointed at the
        proxy: its streamed answer is Ollama's bytes, and the spans join its trace."""
        body = json.dumps({**CHAT, "stream": True}).encode()
        head = (
            f"POST /api/chat HTTP/1.1\r\nHost: ollama\r\nContent-Type: application/json\r\n"
            f"traceparent: {TRACEPARENT}\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.encode() + body)
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        direct = fetch(mock.url, "POST", "/api/chat", {**CHAT, "stream": True})
        status_line, _, rest = raw.partition(b"\r\n")
        headers, _, payload = rest.partition(b"\r\n\r\n")
        assert b"200" in status_line
        if b"transfer-encoding: chunked" in headers.lower():
            payload = dechunk(payload)
        records = [json.loads(line) for line in payload.splitlines()]
        expected = [json.loads(line) for line in direct[2].splitlines()]
        strip = ("created_at", "total_duration", "load_duration", "prompt_eval_duration")
        assert [{k: v for k, v in r.items() if k not in strip} for r in expected] == [
            {k: v for k, v in r.items() if k not in strip} for r in records
        ]
        genai = genai_span(traced)
        assert (TRACE_ID, True) == (
            hexid(genai.context.trace_id, 32),
            genai.attributes["gen_ai.usage.output_tokens"] == records[-1]["eval_count"],  # type: ignore[index]
        )

    def test_without_traceparent_a_new_trace(self, traced: Spans, proxy: ProxyServer) -> None:
        """No caller context: the SERVER span is a root and the GenAI span its child."""
        fetch(proxy.url, "POST", "/v1/chat/completions", CHAT)
        server = server_span(traced, "/v1/chat/completions")
        genai = genai_span(traced)
        assert genai.parent is not None
        assert (None, server.context.span_id, "ollama") == (
            server.parent,
            genai.parent.span_id,
            genai.attributes["gen_ai.provider.name"],  # type: ignore[index]
        )

    def test_server_span_shape(self, traced: Spans, proxy: ProxyServer) -> None:
        """The SERVER span is named by method and route and carries the HTTP basics."""
        fetch(proxy.url, "POST", "/api/chat", {**CHAT, "stream": False})
        span = server_span(traced, "/api/chat")
        attrs = span.attributes or {}
        keys = ("http.request.method", "http.route", "http.response.status_code")
        expected = ("POST /api/chat", SpanKind.SERVER, ("POST", "/api/chat", 200), "ok")
        actual = (
            span.name,
            span.kind,
            tuple(attrs.get(k) for k in keys),
            attrs.get("otel_llm.proxy.outcome"),
        )
        assert expected == actual

    def test_non_llm_paths_get_only_a_server_span(self, traced: Spans, proxy: ProxyServer) -> None:
        """Model management is forwarded and traced as HTTP, with no GenAI span."""
        fetch(proxy.url, "GET", "/api/tags", headers={"traceparent": TRACEPARENT})
        span = server_span(traced, "/api/tags")
        assert ("GET /api/tags", [], CALLER_SPAN) == (
            span.name,
            traced.llm(),
            hexid(span.parent.span_id) if span.parent else None,
        )


class TestTags:
    BAGGAGE = (
        "session.id=s-42,user.id=u%207,gen_ai.agent.name=planner,otel_llm.tag.team=search,secret=x"
    )

    def test_baggage_tags_the_call(self, traced: Spans, proxy: ProxyServer) -> None:
        """Allowed baggage keys from the client become GenAI span attributes; others do not."""
        fetch(proxy.url, "POST", "/api/chat", CHAT, {"baggage": self.BAGGAGE})
        attrs = genai_span(traced).attributes or {}
        keys = ("session.id", "user.id", "gen_ai.agent.name", "otel_llm.tag.team", "secret")
        assert ("s-42", "u 7", "planner", "search", None) == tuple(attrs.get(k) for k in keys)

    def test_allow_list_extends(
        self, collected: Spans, mock: MockOllama, proxy: ProxyServer
    ) -> None:
        """``instrument(baggage_keys=...)`` adds keys, through the proxy too."""
        otel_llm.instrument(
            tracer_provider=trace.get_tracer_provider(),
            meter_provider=METERS,
            baggage_keys=["tenant"],
        )
        fetch(
            proxy.url,
            "POST",
            "/api/generate",
            {"model": "llama3.2", "prompt": "hi"},
            {"baggage": "tenant=acme"},
        )
        server = server_span(collected, "/api/generate")
        assert ("acme", "acme") == (
            genai_span(collected).attributes["tenant"],  # type: ignore[index]
            server.attributes["tenant"],  # type: ignore[index]
        )

    def test_tags_never_become_metric_labels(self, traced: Spans, proxy: ProxyServer) -> None:
        """/metrics has the GenAI and HTTP series but no trace of the baggage values."""
        fetch(proxy.url, "POST", "/api/chat", CHAT, {"baggage": self.BAGGAGE})
        genai_span(traced)
        text = fetch(proxy.admin_url, "GET", "/metrics")[2].decode()
        present = [
            name in text
            for name in (
                "gen_ai_client_operation_duration_seconds_bucket",
                "gen_ai_client_token_usage",
                "http_server_request_duration_seconds_bucket",
            )
        ]
        leaked = [
            v for v in ("s-42", "u 7", "planner", "search", "session_id", "user_id") if v in text
        ]
        assert ([True, True, True], []) == (present, leaked)


# --- disconnects and upstream failures ----------------------------------------------------


class TestDisconnect:
    def test_mid_stream_disconnect_cancels_upstream(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer
    ) -> None:
        """A client gone mid-stream ends both spans and the mock stops streaming."""
        sock = open_stream(proxy.url, {**CHAT, "model": "drip"})  # 200 chunks, 4 s
        sock.recv(4096)
        sock.close()
        server = server_span(traced, "/api/chat", timeout=2)
        genai = genai_span(traced, timeout=2)
        idle = wait_for(lambda: mock_busy(mock) == 0, timeout=1)
        attrs = genai.attributes or {}
        assert ("client_disconnected", 200, True, "error", "CancelledError") == (
            server.attributes["otel_llm.proxy.outcome"],  # type: ignore[index]
            server.attributes["http.response.status_code"],  # type: ignore[index]
            idle,
            attrs.get("otel_llm.stream.ended_by"),
            attrs.get("error.type"),
        )

    def test_disconnect_before_first_byte(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer
    ) -> None:
        """A client gone while the model loads cancels the upstream call too."""
        host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
        body = json.dumps({**CHAT, "model": "slow"}).encode()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body
            )
            time.sleep(0.2)
        server = server_span(traced, "/api/chat", timeout=2)
        genai = genai_span(traced, timeout=2)
        assert ("client_disconnected", None, "CancelledError") == (
            server.attributes["otel_llm.proxy.outcome"],  # type: ignore[index]
            server.attributes.get("http.response.status_code"),  # type: ignore[union-attr]
            genai.attributes["error.type"],  # type: ignore[index]
        )


class _BreakingUpstream:
    """Answers one request with a head and one NDJSON line, then drops the connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        data = b""
        while b"}" not in data:
            data += conn.recv(65536)
        line = (
            b'{"model":"llama3.2","created_at":"x",'
            b'"message":{"role":"assistant","content":"Hi"},"done":false}\n'
        )
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(line) + line + b"\r\n"
        )
        time.sleep(0.1)
        conn.close()
        self.sock.close()


class TestUpstreamFailures:
    def test_upstream_down_is_502(self, traced: Spans, dead: ProxyServer) -> None:
        """Nothing listening upstream: 502 in Ollama's error shape, spans say why."""
        status, headers, body = fetch(dead.url, "POST", "/api/chat", CHAT)
        server = server_span(traced, "/api/chat")
        genai = genai_span(traced)
        assert (502, {"error": "upstream unreachable"}, "application/json; charset=utf-8") == (
            status,
            json.loads(body),
            dict(headers)["content-type"],
        )
        assert (StatusCode.ERROR, "ConnectError", "upstream_unreachable", "ConnectError") == (
            server.status.status_code,
            server.attributes["error.type"],  # type: ignore[index]
            server.attributes["otel_llm.proxy.outcome"],  # type: ignore[index]
            genai.attributes["error.type"],  # type: ignore[index]
        )
        assert "upstream unreachable" in (server.status.description or "")

    def test_upstream_down_not_ready(self, traced: Spans, dead: ProxyServer) -> None:
        """/readyz says 503 while the upstream is unreachable; /healthz stays 200."""
        ready = fetch(dead.admin_url, "GET", "/readyz")
        health = fetch(dead.admin_url, "GET", "/healthz")
        assert (503, "unavailable", 200) == (ready[0], jsonof(ready)["status"], health[0])

    def test_slow_upstream_is_504(self, traced: Spans, mock: MockOllama) -> None:
        """An upstream silent past the timeout: 504 and a ReadTimeout on both spans."""
        with _proxy(_config(mock.url, timeout=0.3)) as slow:
            reply = fetch(slow.url, "POST", "/api/chat", {**CHAT, "model": "slow"})
            server = server_span(traced, "/api/chat")
        genai = genai_span(traced)
        assert (
            504,
            {"error": "upstream timed out"},
            "ReadTimeout",
            "upstream_timeout",
            "ReadTimeout",
        ) == (
            reply[0],
            jsonof(reply),
            server.attributes["error.type"],  # type: ignore[index]
            server.attributes["otel_llm.proxy.outcome"],  # type: ignore[index]
            genai.attributes["error.type"],  # type: ignore[index]
        )

    def test_upstream_breaks_mid_stream(self, traced: Spans) -> None:
        """A connection dropped mid-body is cut for the client too; the spans record the break."""
        upstream = _BreakingUpstream()
        with _proxy(_config(upstream.url)) as proxy:
            with pytest.raises(http.client.IncompleteRead) as info:
                fetch(proxy.url, "POST", "/api/chat", CHAT)
            server = server_span(traced, "/api/chat")
        genai = genai_span(traced)
        assert (b'"content":"Hi"' in info.value.partial, StatusCode.ERROR, "upstream_error") == (
            True,
            server.status.status_code,
            server.attributes["otel_llm.proxy.outcome"],  # type: ignore[index]
        )
        assert "RemoteProtocolError" == genai.attributes["error.type"]  # type: ignore[index]


# --- safety ---------------------------------------------------------------------------------


def raw(base: str, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are; return the status code and the body."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and b"content-length" in data.lower():
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                if len(body) >= length:
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


class TestNotAnOpenProxy:
    @pytest.mark.parametrize("http", ["httptools", "h11"])
    def test_absolute_form_refused(self, traced: Spans, mock: MockOllama, http: str) -> None:
        """``GET http://elsewhere/`` is refused, whichever HTTP parser serves."""
        with _proxy(_config(mock.url, http=http)) as proxy:
            count = len(mock.requests)
            status, body = raw(
                proxy.url,
                b"GET http://example.com/api/tags HTTP/1.1\r\n"
                b"Host: example.com\r\nConnection: close\r\n\r\n",
            )
        assert (400, True, count) == (status, b"absolute-form" in body, len(mock.requests))

    @pytest.mark.parametrize(
        ("target", "expected"),
        [(b"example.com:443", (405,)), (b"/api/tags", (405,))],
    )
    def test_connect_refused(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer, target: bytes, expected: Any
    ) -> None:
        """CONNECT is refused with 405, whatever its target; nothing reaches the upstream."""
        count = len(mock.requests)
        request = b"CONNECT " + target + b" HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        status, _ = raw(proxy.url, request)
        assert (True, count) == (status in expected, len(mock.requests))

    def test_loopback_by_default(self) -> None:
        """Without configuration the proxy listens on 127.0.0.1 only."""
        assert ("127.0.0.1", "127.0.0.1") == (ProxyConfig().listen[0], ProxyConfig().admin[0])  # type: ignore[index]


class TestAuth:
    def test_missing_token_401(self, traced: Spans, mock: MockOllama, guarded: ProxyServer) -> None:
        """No bearer token: 401 with a challenge, nothing forwarded."""
        count = len(mock.requests)
        status, headers, body = fetch(guarded.url, "POST", "/api/chat", CHAT)
        assert (401, {"error": "unauthorized"}, True, count) == (
            status,
            json.loads(body),
            "Bearer" in dict(headers)["www-authenticate"],
            len(mock.requests),
        )

    def test_wrong_token_401(self, traced: Spans, guarded: ProxyServer) -> None:
        """A wrong token is refused like a missing one."""
        status = fetch(guarded.url, "GET", "/api/tags", headers={"Authorization": "Bearer nope"})[0]
        assert 401 == status

    def test_good_token_forwarded_without_it(
        self, traced: Spans, mock: MockOllama, guarded: ProxyServer
    ) -> None:
        """A known token passes; the upstream never sees it."""
        status = fetch(
            guarded.url, "POST", "/api/chat", CHAT, {"Authorization": f"Bearer {TOKEN}"}
        )[0]
        assert (200, None) == (status, mock.requests[-1].headers.get("authorization"))

    def test_token_never_logged_or_recorded(self, traced: Spans, mock: MockOllama) -> None:
        """Neither the access log nor any span holds a token, good or bad."""
        config = _config(mock.url, tokens=(TOKEN,), access_log=True)
        with structlog.testing.capture_logs() as logs, _proxy(config) as proxy:
            for token in (TOKEN, "wrong-" + TOKEN):
                fetch(proxy.url, "POST", "/api/chat", CHAT, {"Authorization": f"Bearer {token}"})
            wait_for(lambda: len(logs) >= 2)
        recorded = json.dumps([dict(s.attributes or {}) for s in traced.all()]) + repr(logs)
        assert ([200, 401], False, False) == (
            sorted(e["status"] for e in logs if e.get("event") == "request"),
            TOKEN in recorded,
            TOKEN in repr(config),
        )
        assert all(e.get("trace_id") and e.get("span_id") for e in logs)


class TestBodyLimit:
    def test_content_length_over_limit_413(
        self, traced: Spans, mock: MockOllama, guarded: ProxyServer
    ) -> None:
        """A declared length over the limit is refused before reading it."""
        count = len(mock.requests)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        status, _, body = fetch(guarded.url, "POST", "/api/blobs/sha256:x", b"x" * 70000, auth)
        assert (413, count) == (status, len(mock.requests))
        assert "too large" in json.loads(body)["error"]

    @pytest.mark.parametrize("path", ["/api/blobs/sha256:x", "/api/chat"])
    def test_chunked_over_limit_413(self, traced: Spans, guarded: ProxyServer, path: str) -> None:
        """An undeclared (chunked) body is cut off at the limit, streamed or buffered."""
        auth = {"Authorization": f"Bearer {TOKEN}"}
        parts = iter([b"x" * 16384] * 8)
        assert 413 == fetch(guarded.url, "POST", path, parts, auth, chunked=True)[0]

    def test_under_limit_passes(
        self, traced: Spans, mock: MockOllama, guarded: ProxyServer
    ) -> None:
        """A body just under the limit is forwarded whole."""
        auth = {"Authorization": f"Bearer {TOKEN}"}
        payload = b"y" * 65536
        status = fetch(guarded.url, "POST", "/api/blobs/sha256:y", payload, auth)[0]
        assert (404, payload) == (status, mock.requests[-1].body)


# --- operations -------------------------------------------------------------------------------


class TestAdmin:
    def test_health_and_ready(self, traced: Spans, proxy: ProxyServer) -> None:
        """/healthz and /readyz answer 200 while the upstream is up."""
        health = fetch(proxy.admin_url, "GET", "/healthz")
        ready = fetch(proxy.admin_url, "GET", "/readyz")
        assert ((200, "ok"), (200, "ready")) == (
            (health[0], jsonof(health)["status"]),
            (ready[0], jsonof(ready)["status"]),
        )

    def test_metrics_openmetrics(self, traced: Spans, proxy: ProxyServer) -> None:
        """A scraper asking for OpenMetrics gets it, with process stats beside the GenAI series."""
        fetch(proxy.url, "POST", "/api/embed", {"model": "all-minilm", "input": "hi"})
        genai_span(traced)
        status, headers, body = fetch(
            proxy.admin_url, "GET", "/metrics", headers={"Accept": "application/openmetrics-text"}
        )
        text = body.decode()
        assert (200, True, True, True) == (
            status,
            dict(headers)["content-type"].startswith("application/openmetrics-text"),
            'gen_ai_operation_name="embeddings"' in text,
            "process_cpu_seconds_total" in text,
        )

    def test_admin_is_separate(self, traced: Spans, proxy: ProxyServer) -> None:
        """The client port forwards /metrics upstream instead of answering it."""
        assert (404, b"404 page not found") == fetch(proxy.url, "GET", "/metrics")[::2]


def _refuses(url: str) -> bool:
    """The proxy serves no new request: the connection is refused, or (when it raced into
    the closing listener's backlog) reset or closed unanswered."""
    try:
        fetch(url, "GET", "/api/version")
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return True
    return False


class TestShutdown:
    def _stream(self, proxy: ProxyServer, out: dict[str, Any]) -> None:
        try:
            out["reply"] = fetch(proxy.url, "POST", "/api/chat", {**CHAT, "model": "drip"})
        except Exception as exc:
            out["error"] = exc

    def test_in_flight_stream_finishes(self, traced: Spans, mock: MockOllama) -> None:
        """On stop, a running stream completes, /readyz drains, new connections are refused."""
        SCENARIOS["drip"].chunks = 25  # 0.5 s
        try:
            proxy = _proxy(_config(mock.url, shutdown_timeout=5)).start()
            out: dict[str, Any] = {}
            reader = threading.Thread(target=self._stream, args=(proxy, out))
            reader.start()
            time.sleep(0.1)
            admin, url = proxy.admin_url, proxy.url
            stopper = threading.Thread(target=proxy.stop)
            stopper.start()
            time.sleep(0.05)
            draining = fetch(admin, "GET", "/readyz")
            refused = wait_for(lambda: _refuses(url), timeout=2)
            reader.join(5)
            stopper.join(5)
        finally:
            SCENARIOS["drip"].chunks = 200
        lines = out["reply"][2].splitlines()
        assert ((503, "draining"), True, 26, True) == (
            (draining[0], jsonof(draining)["status"]),
            refused,
            len(lines),
            json.loads(lines[-1])["done"],
        )

    def test_deadline_cuts_streams(self, traced: Spans, mock: MockOllama) -> None:
        """Past the shutdown deadline a stream is cut and its spans still end."""
        proxy = _proxy(_config(mock.url, shutdown_timeout=0.3)).start()
        out: dict[str, Any] = {}
        reader = threading.Thread(target=self._stream, args=(proxy, out))
        reader.start()
        time.sleep(0.2)
        started = time.monotonic()
        proxy.stop()
        took = time.monotonic() - started
        reader.join(5)
        server = server_span(traced, "/api/chat")
        genai = genai_span(traced)
        assert (True, True, "cancelled", "CancelledError") == (
            took < 2,
            isinstance(out.get("error"), http.client.IncompleteRead),
            server.attributes["otel_llm.proxy.outcome"],  # type: ignore[index]
            genai.attributes["error.type"],  # type: ignore[index]
        )


# --- real non-Python clients ------------------------------------------------------------------

JS_DIR = ROOT / "tests" / "js"


def _need(tool: str) -> str:
    return require(tool, "nodejs npm" if tool in ("node", "npm") else tool)


@pytest.fixture(scope="session")
def node() -> str:
    """node with the official ``ollama`` package installed in tests/js (npm ci if missing)."""
    node = _need("node")
    if not (JS_DIR / "node_modules" / "ollama" / "package.json").exists():
        npm = _need("npm")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in tests/js:\n{result.stdout}\n{result.stderr}")
    return node


def new_traceparent() -> tuple[str, str, str]:
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


class TestJavaScriptClient:
    def test_official_client_through_proxy(
        self, traced: Spans, mock: MockOllama, proxy: ProxyServer, node: str
    ) -> None:
        """ollama-js chat (streamed and not), generate and embed work; each continues its trace."""
        steps = []
        for op, stream in (("chat", True), ("chat", False), ("generate", True), ("embed", False)):
            traceparent, trace_id, span_id = new_traceparent()
            steps.append(
                {
                    "op": op,
                    "stream": stream,
                    "headers": {"traceparent": traceparent, "baggage": "session.id=js-1"},
                    "trace_id": trace_id,
                    "span_id": span_id,
                }
            )
        result = subprocess.run(
            [node, str(JS_DIR / "client.mjs"), json.dumps({"host": proxy.url, "steps": steps})],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert 0 == result.returncode, result.stderr
        answers = json.loads(result.stdout)
        reply = SCENARIOS.get("llama3.2", Scenario()).reply
        assert [reply, reply, reply, 8] == [a.get("text", a.get("dims")) for a in answers]
        assert [10, 1, 10, 1] == [a["parts"] for a in answers]
        wait_for(
            lambda: (
                len(traced.llm()) == 4
                and len([s for s in traced.all() if s.kind == SpanKind.SERVER]) == 4
            )
        )
        servers = {
            hexid(s.context.trace_id, 32): s for s in traced.all() if s.kind == SpanKind.SERVER
        }
        genais = {hexid(s.context.trace_id, 32): s for s in traced.llm()}
        for step in steps:
            server, genai = servers[step["trace_id"]], genais[step["trace_id"]]
            assert server.parent is not None and genai.parent is not None
            assert (step["span_id"], server.context.span_id, "js-1") == (
                hexid(server.parent.span_id),
                genai.parent.span_id,
                genai.attributes["session.id"],  # type: ignore[index]
            )

    def test_official_client_sees_errors(
        self, traced: Spans, proxy: ProxyServer, node: str
    ) -> None:
        """Errors reach ollama-js as they would directly: status and message."""
        steps = [{"op": "chat", "stream": False, "model": "llama9", "headers": {}}]
        result = subprocess.run(
            [node, str(JS_DIR / "client.mjs"), json.dumps({"host": proxy.url, "steps": steps})],
            capture_output=True,
            text=True,
            timeout=60,
        )
        answer = json.loads(result.stdout)[0]
        assert (404, "model 'llama9' not found") == (answer["status"], answer["error"])


class TestCurl:
    def _curl(self, *args: str) -> subprocess.CompletedProcess[str]:
        curl = _need("curl")
        return subprocess.run([curl, "-sS", *args], capture_output=True, text=True, timeout=30)

    @pytest.mark.parametrize("stream", [True, False])
    def test_curl_chat(self, traced: Spans, proxy: ProxyServer, stream: bool) -> None:
        """curl streams (``-N``) or not; the caller's traceparent and baggage carry through."""
        traceparent, trace_id, span_id = new_traceparent()
        body = json.dumps({**CHAT, "stream": stream})
        result = self._curl(
            "-N",
            proxy.url + "/api/chat",
            "-d",
            body,
            "-H",
            f"traceparent: {traceparent}",
            "-H",
            "baggage: user.id=curl-user,otel_llm.tag.tool=curl",
        )
        records = [json.loads(line) for line in result.stdout.splitlines()]
        server = server_span(traced, "/api/chat")
        genai = genai_span(traced)
        assert server.parent is not None and genai.parent is not None
        assert (10 if stream else 1, True) == (len(records), records[-1]["done"])
        assert (trace_id, span_id, server.context.span_id, "curl-user", "curl") == (
            hexid(genai.context.trace_id, 32),
            hexid(server.parent.span_id),
            genai.parent.span_id,
            genai.attributes["user.id"],  # type: ignore[index]
            genai.attributes["otel_llm.tag.tool"],  # type: ignore[index]
        )

    def test_curl_v1_stream(self, traced: Spans, proxy: ProxyServer) -> None:
        """An OpenAI-style SSE stream through curl ends with [DONE] and one GenAI span."""
        body = json.dumps({**CHAT, "stream": True})
        result = self._curl(
            "-N",
            proxy.url + "/v1/chat/completions",
            "-d",
            body,
            "-H",
            "Content-Type: application/json",
        )
        events = [line for line in result.stdout.splitlines() if line.startswith("data: ")]
        genai = genai_span(traced)
        assert ("data: [DONE]", "chat llama3.2", "ollama") == (
            events[-1],
            genai.name,
            genai.attributes["gen_ai.provider.name"],  # type: ignore[index]
        )
