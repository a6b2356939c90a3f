"""Bodies as real servers send them: compressed, with huge lines, huge vectors, huge names.

A tiny HTTP/1.1 server on 127.0.0.1 answers with exact bytes and headers (chunked
transfer coding, one chunk per piece), so the client's own transport and decoders are
in the path: ``MockTransport`` hands over bodies already decoded and would hide these.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import brotli
import httpx
import httpx2
import pytest
import zstandard
from opentelemetry.trace import StatusCode

from otel_llm import _fields
from tests.conftest import Spans
from tests.wire import CHAT_BODY, NDJSON_CHAT, SSE_CHAT, V1_CHAT_BODY

MODULES = [pytest.param(httpx, id="httpx"), pytest.param(httpx2, id="httpx2")]
CHAT = {"model": "qwen3:8b", "messages": [{"role": "user", "content": "Weather in Tokyo?"}]}


@dataclass
class Reply:
    """What the server answers on one path: status, headers, body pieces (one chunk each)."""

    pieces: list[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early (a body that does not decode) is expected


class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers each path with a fixed ``Reply``."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        replies = self.replies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                reply = replies[self.path]
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for piece in reply.pieces:
                    if piece:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    with RawServer() as raw:
        yield raw


# --- compressed bodies ---------------------------------------------------------------


def _compressor(encoding: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """(compress one piece and flush it, finish): pieces decode as they arrive."""
    if encoding in ("gzip", "deflate"):
        engine = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)
        return (
            lambda data: engine.compress(data) + engine.flush(zlib.Z_SYNC_FLUSH),
            lambda: engine.flush(),
        )
    if encoding == "br":
        br = brotli.Compressor()
        return (lambda data: br.process(data) + br.flush(), br.finish)
    zst = zstandard.ZstdCompressor().compressobj()
    return (
        lambda data: zst.compress(data) + zst.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK),
        lambda: zst.flush(),
    )


def compressed(encoding: str, records: list[bytes]) -> list[bytes]:
    """The records compressed as one stream, each flushed into its own piece."""
    step, end = _compressor(encoding)
    return [step(record) for record in records] + [end()]


ENCODINGS = ["gzip", "deflate", "br", "zstd"]


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("encoding", ENCODINGS)
class TestCompressed:
    """The span reads the decoded body; the app reads exactly what it would untraced."""

    def _serve(self, server: RawServer, path: str, encoding: str, records: list[bytes]) -> str:
        ctype = "application/x-ndjson" if len(records) > 1 else "application/json"
        if path.startswith("/v1/") and len(records) > 1:
            ctype = "text/event-stream"
        key = f"/{encoding}{path}"
        server.replies[key] = Reply(
            compressed(encoding, records),
            {"content-type": ctype, "content-encoding": encoding},
        )
        return key

    def test_unstreamed_sync(
        self, module: ModuleType, encoding: str, server: RawServer, spans: Spans
    ) -> None:
        """A compressed /api/chat body: OK span with the server's counts."""
        path = self._serve(server, "/api/chat", encoding, [CHAT_BODY])
        with module.Client(base_url=server.url) as client:
            answer = client.post(path, json={**CHAT, "stream": False}).json()
        assert json.loads(CHAT_BODY) == answer
        span = spans.one()
        assert StatusCode.UNSET == span.status.status_code
        assert (26, 10) == (
            span.attributes["gen_ai.usage.input_tokens"],
            span.attributes["gen_ai.usage.output_tokens"],
        )

    def test_streamed_sync(
        self, module: ModuleType, encoding: str, server: RawServer, spans: Spans
    ) -> None:
        """A compressed NDJSON stream: the final record ends the span, with its counts."""
        path = self._serve(server, "/api/chat", encoding, NDJSON_CHAT)
        with (
            module.Client(base_url=server.url) as client,
            client.stream("POST", path, json=CHAT) as response,
        ):
            lines = list(response.iter_lines())
        assert [line.rstrip(b"\n").decode() for line in NDJSON_CHAT] == lines
        attrs = spans.one().attributes
        assert ("final", 173, 41, 4) == (
            attrs["otel_llm.stream.ended_by"],
            attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"],
            attrs["otel_llm.stream.chunks"],
        )

    @pytest.mark.anyio
    async def test_unstreamed_async(
        self, module: ModuleType, encoding: str, server: RawServer, spans: Spans
    ) -> None:
        """Async twin: a compressed /v1/chat/completions body."""
        path = self._serve(server, "/v1/chat/completions", encoding, [V1_CHAT_BODY])
        async with module.AsyncClient(base_url=server.url) as client:
            answer = (await client.post(path, json=CHAT)).json()
        assert json.loads(V1_CHAT_BODY) == answer
        span = spans.one()
        assert StatusCode.UNSET == span.status.status_code
        assert ("llama3.2", 26) == (
            span.attributes["gen_ai.response.model"],
            span.attributes["gen_ai.usage.input_tokens"],
        )

    @pytest.mark.anyio
    async def test_streamed_async(
        self, module: ModuleType, encoding: str, server: RawServer, spans: Spans
    ) -> None:
        """Async twin: a compressed SSE stream ends at [DONE] with its usage."""
        path = self._serve(server, "/v1/chat/completions", encoding, SSE_CHAT)
        async with (
            module.AsyncClient(base_url=server.url) as client,
            client.stream("POST", path, json={**CHAT, "stream": True}) as response,
        ):
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert b"".join(SSE_CHAT) == body
        attrs = spans.one().attributes
        assert ("final", 26, 10) == (
            attrs["otel_llm.stream.ended_by"],
            attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"],
        )


@pytest.mark.parametrize("module", MODULES)
def test_raw_bytes_untouched(module: ModuleType, server: RawServer, spans: Spans) -> None:
    """``iter_raw`` still yields the compressed bytes the server sent (only the span decodes)."""
    pieces = compressed("gzip", NDJSON_CHAT)
    server.replies["/raw/api/chat"] = Reply(
        pieces, {"content-type": "application/x-ndjson", "content-encoding": "gzip"}
    )
    with (
        module.Client(base_url=server.url) as client,
        client.stream("POST", "/raw/api/chat", json=CHAT) as response,
    ):
        raw = b"".join(response.iter_raw())
    assert b"".join(pieces) == raw
    assert b"".join(NDJSON_CHAT) == gzip.decompress(raw)
    assert "final" == spans.one().attributes["otel_llm.stream.ended_by"]


def test_corrupt_compressed_body(server: RawServer, spans: Spans) -> None:
    """A body that does not inflate: the app gets httpx's DecodingError, and so does the span
    (``error.type`` is the class of the exception the call ended with)."""
    server.replies["/corrupt/api/chat"] = Reply(
        [b"\x1f\x8b\x08\x00not gzip at all"],
        {"content-type": "application/json", "content-encoding": "gzip"},
    )
    with httpx.Client(base_url=server.url) as client, pytest.raises(httpx.DecodingError):
        client.post("/corrupt/api/chat", json={**CHAT, "stream": False})
    span = spans.one()
    assert StatusCode.ERROR == span.status.status_code
    assert "DecodingError" == span.attributes["error.type"]


def test_compressed_through_the_proxy(server: RawServer, collected: Spans) -> None:
    """``otel-llm proxy`` forwards the gzip bytes as they came; its span reads them decoded."""
    import http.client
    import time

    from opentelemetry import trace

    import otel_llm
    from otel_llm.proxy import ProxyConfig, ProxyServer

    pieces = compressed("gzip", NDJSON_CHAT)
    server.replies["/api/chat"] = Reply(
        pieces, {"content-type": "application/x-ndjson", "content-encoding": "gzip"}
    )
    otel_llm.instrument(tracer_provider=trace.get_tracer_provider())
    config = ProxyConfig(
        listen=("127.0.0.1", 0), admin=("127.0.0.1", 0), upstream=server.url, access_log=False
    )
    with ProxyServer(config) as proxy:
        host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("POST", "/api/chat", body=json.dumps(CHAT).encode())
            response = conn.getresponse()
            raw = response.read()
            encoding = response.getheader("content-encoding")
        finally:
            conn.close()
        deadline = time.monotonic() + 5
        while not collected.llm() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert ("gzip", b"".join(NDJSON_CHAT)) == (encoding, gzip.decompress(raw))
    attrs = collected.one().attributes
    assert ("final", 173, 41) == (
        attrs["otel_llm.stream.ended_by"],
        attrs["gen_ai.usage.input_tokens"],
        attrs["gen_ai.usage.output_tokens"],
    )


# --- long records ----------------------------------------------------------------------

_TIMINGS = (
    b'"total_duration":402712458,"load_duration":21834500,"prompt_eval_count":26,'
    b'"prompt_eval_duration":93215000,"eval_count":10,"eval_duration":179433000}'
)


def generate_final(tokens: int) -> bytes:
    """``/api/generate``'s final record, its ``context`` holding ``tokens`` integers."""
    context = b",".join(b"%d" % (i * 7919 % 128256) for i in range(tokens))
    return (
        b'{"model":"llama3.2","created_at":"2025-11-03T14:06:02.311578Z","response":"",'
        b'"done":true,"done_reason":"stop","context":[' + context + b"]," + _TIMINGS
    )


GENERATE_RECORDS = [
    b'{"model":"llama3.2","created_at":"2025-11-03T14:06:02.1Z","response":"Hi","done":false}\n',
    b'{"model":"llama3.2","created_at":"2025-11-03T14:06:02.2Z","response":"!","done":false}\n',
]


def pieces_of(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def assert_final_fields(attrs: Any) -> None:
    assert (26, 10, ("stop",), 0.402712458, 0.179433) == (
        attrs["gen_ai.usage.input_tokens"],
        attrs["gen_ai.usage.output_tokens"],
        attrs["gen_ai.response.finish_reasons"],
        attrs["ollama.total_duration"],
        attrs["ollama.eval_duration"],
    )


@pytest.mark.parametrize("module", MODULES)
def test_streamed_final_record_with_huge_context(
    module: ModuleType, server: RawServer, spans: Spans
) -> None:
    """A 2.4 MB final record (its ``context``) still ends the stream with counts and timings."""
    final = generate_final(400_000) + b"\n"
    assert len(final) > 2 * 1024 * 1024
    body = b"".join(GENERATE_RECORDS) + final
    server.replies["/long/api/generate"] = Reply(
        pieces_of(body), {"content-type": "application/x-ndjson"}
    )
    with module.Client(base_url=server.url) as client:
        reply = client.post("/long/api/generate", json={"model": "llama3.2", "prompt": "Hi"})
    assert body == reply.content
    span = spans.one()
    assert StatusCode.UNSET == span.status.status_code
    attrs = span.attributes
    assert ("final", 3) == (attrs["otel_llm.stream.ended_by"], attrs["otel_llm.stream.chunks"])
    assert_final_fields(attrs)


@pytest.mark.parametrize("module", MODULES)
def test_unstreamed_generate_with_huge_context(
    module: ModuleType, server: RawServer, spans: Spans
) -> None:
    """A non-streamed ``/api/generate`` body of 2.4 MB yields every field but ``context``."""
    body = generate_final(400_000)
    server.replies["/once/api/generate"] = Reply(
        pieces_of(body), {"content-type": "application/json; charset=utf-8"}
    )
    payload = {"model": "llama3.2", "prompt": "Hi", "stream": False}
    with module.Client(base_url=server.url) as client:
        reply = client.post("/once/api/generate", json=payload)
    assert body == reply.content
    span = spans.one()
    assert StatusCode.UNSET == span.status.status_code
    assert "llama3.2" == span.attributes["gen_ai.response.model"]
    assert_final_fields(span.attributes)


def test_long_final_record_costs_bounded_memory(spans: Spans) -> None:
    """A 40 MB final line is read in bounded memory: the parser keeps its ends only."""
    import tracemalloc

    from otel_llm.adapters.ollama import NdjsonStream

    head = b'{"model":"llama3.2","response":"","done":true,"done_reason":"length","context":['
    block = b"12345," * 10922  # 65,532 bytes of context per piece
    call = make_call("/api/generate")
    parser = NdjsonStream(call)
    tracemalloc.start()
    try:
        parser.feed(head)
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(640):
            assert not parser.feed(bytes(block))
        final = parser.feed(b"1]," + _TIMINGS + b"\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert final
    assert peak - base < 3 * 1024 * 1024
    assert (26, 10, ["length"]) == (call.input_tokens, call.output_tokens, call.finish_reasons)


def make_call(path: str) -> Any:
    """An ``LLMCall`` for ``path`` with the instrumented settings (no span)."""
    from otel_llm import _state
    from otel_llm._types import LLMCall
    from otel_llm.adapters import match

    endpoint = match("POST", path)
    assert endpoint is not None and _state.current is not None
    return LLMCall(
        operation=endpoint[1],
        provider="ollama",
        adapter=endpoint[0],
        settings=_state.current.settings,
        server_address="127.0.0.1",
        server_port=11434,
        start_ns=0,
    )


# --- large embeddings ------------------------------------------------------------------


def vector(dims: int, seed: int) -> list[float]:
    """Float32-looking values, some negative, some in exponent form."""
    return [((i * 7919 + seed * 104729) % 20011 - 10005) / 1e6 for i in range(dims)]


def ollama_embed(count: int, dims: int) -> bytes:
    """``/api/embed``'s answer, compact as Go writes it."""
    vectors = [vector(dims, n) for n in range(count)]
    body = {
        "model": "qwen3-embedding",
        "embeddings": vectors,
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": 16,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def openai_embed(count: int, dims: int, *, base64: bool = False) -> bytes:
    """``/v1/embeddings``' answer, spaced as Python servers write it."""
    import array
    from base64 import b64encode

    data = []
    for n in range(count):
        values = vector(dims, n)
        embedding: Any = (
            b64encode(array.array("f", values).tobytes()).decode() if base64 else values
        )
        data.append({"object": "embedding", "embedding": embedding, "index": n})
    body = {
        "object": "list",
        "data": data,
        "model": "text-embedding-3-large",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }
    return json.dumps(body).encode()


EMBED_CASES = [
    pytest.param("/api/embed", ollama_embed(3, 4096), 3, 4096, "qwen3-embedding", 16, id="embed"),
    pytest.param(
        "/api/embed", ollama_embed(1, 384), 1, 384, "qwen3-embedding", 16, id="embed-small"
    ),
    pytest.param(
        "/api/embeddings",
        json.dumps({"embedding": vector(4096, 1)}, separators=(",", ":")).encode(),
        1,
        4096,
        None,
        None,
        id="embeddings",
    ),
    pytest.param(
        "/v1/embeddings", openai_embed(2, 4096), 2, 4096, "text-embedding-3-large", 9, id="v1"
    ),
    pytest.param(
        "/v1/embeddings",
        openai_embed(4, 3072, base64=True),
        4,
        3072,
        "text-embedding-3-large",
        9,
        id="v1-base64",
    ),
]


@pytest.mark.parametrize(("path", "body", "count", "dims", "model", "tokens"), EMBED_CASES)
def test_embeddings_of_any_size(
    path: str,
    body: bytes,
    count: int,
    dims: int,
    model: str | None,
    tokens: int | None,
    server: RawServer,
    spans: Spans,
) -> None:
    """Dimensions and vector count are right whatever the body's size; so are model, tokens."""
    server.replies["/emb" + path] = Reply(
        pieces_of(body, 7000), {"content-type": "application/json; charset=utf-8"}
    )
    with httpx.Client(base_url=server.url) as client:
        reply = client.post("/emb" + path, json={"model": "m", "input": ["a"] * count})
    assert body == reply.content
    attrs = spans.one().attributes
    assert (dims, count, model, tokens) == (
        attrs.get("gen_ai.embeddings.dimension.count"),
        attrs.get("otel_llm.embeddings.count"),
        attrs.get("gen_ai.response.model"),
        attrs.get("gen_ai.usage.input_tokens"),
    )


@pytest.mark.anyio
async def test_embeddings_async_split_anywhere(server: RawServer, spans: Spans) -> None:
    """Async twin, with the body cut into 13-byte pieces (starts of vectors split too)."""
    body = ollama_embed(2, 1024)
    server.replies["/split/api/embed"] = Reply(
        pieces_of(body, 13), {"content-type": "application/json; charset=utf-8"}
    )
    async with httpx.AsyncClient(base_url=server.url) as client:
        reply = await client.post("/split/api/embed", json={"model": "m", "input": ["a", "b"]})
    assert body == reply.content
    attrs = spans.one().attributes
    assert (1024, 2) == (
        attrs["gen_ai.embeddings.dimension.count"],
        attrs["otel_llm.embeddings.count"],
    )


# --- strings copied from traffic are capped ---------------------------------------------


def test_huge_model_name_capped_everywhere(server: RawServer, collected: Spans) -> None:
    """A 10,000-character model name is cut in the span name, attributes and metric labels."""
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import otel_llm
    from otel_llm.adapters._common import MAX_TEXT_LENGTH

    huge = "m" * 10_000
    record = json.loads(CHAT_BODY)
    record.update(model=huge, done_reason="s" * 10_000)
    server.replies["/cap/api/chat"] = Reply(
        [json.dumps(record).encode()], {"content-type": "application/json"}
    )
    reader = InMemoryMetricReader()
    otel_llm.instrument(
        tracer_provider=trace.get_tracer_provider(),
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    payload = {"model": huge, "messages": [], "stream": False, "options": {"stop": ["x" * 9999]}}
    with httpx.Client(base_url=server.url) as client:
        assert huge == client.post("/cap/api/chat", json=payload).json()["model"]
    span = collected.one()
    capped = huge[:MAX_TEXT_LENGTH]
    attrs = span.attributes
    assert (
        f"chat {capped}",
        capped,
        capped,
        ("s" * MAX_TEXT_LENGTH,),
        ("x" * MAX_TEXT_LENGTH,),
    ) == (
        span.name,
        attrs["gen_ai.request.model"],
        attrs["gen_ai.response.model"],
        attrs["gen_ai.response.finish_reasons"],
        attrs["gen_ai.request.stop_sequences"],
    )
    data = reader.get_metrics_data()
    assert data is not None
    labels = [
        value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        for key, value in (point.attributes or {}).items()
        if key.endswith(".model")
    ]
    assert labels and {capped} == set(labels)


# --- long answers: read by their ends --------------------------------------------------


def test_long_unstreamed_answer_read_by_its_ends(
    server: RawServer, spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 MB non-streamed answer: every small field is read, the text is never decoded."""
    answer = 'He said "done", then left. ' * 40_000
    record = json.loads(CHAT_BODY)
    record["message"] = {
        "role": "assistant",
        "content": answer,
        "tool_calls": [{"id": "call_1", "function": {"name": "lookup", "arguments": {"q": "x"}}}],
    }
    body = json.dumps(record, separators=(",", ":")).encode()
    server.replies["/answer/api/chat"] = Reply(
        pieces_of(body), {"content-type": "application/json"}
    )
    decoded: list[int] = []
    real = _fields.json_value  # every decode of a body goes through it

    def spy(data: Any) -> Any:
        decoded.append(len(data))
        return real(data)

    with httpx.Client(base_url=server.url) as client:
        monkeypatch.setattr(_fields, "json_value", spy)
        reply = client.post("/answer/api/chat", json={**CHAT, "stream": False})
        monkeypatch.undo()
    assert body == reply.content
    attrs = spans.one().attributes
    assert (26, 10, ("stop",), ("lookup",), ("call_1",)) == (
        attrs["gen_ai.usage.input_tokens"],
        attrs["gen_ai.usage.output_tokens"],
        attrs["gen_ai.response.finish_reasons"],
        attrs["otel_llm.tool_calls.names"],
        attrs["otel_llm.tool_calls.ids"],
    )
    assert decoded and max(decoded) <= 2 * 16384


def _long_choices_body(reasoning: bool) -> bytes:
    """A /v1 completion whose middle is more than one string: three long choices, or a
    long reasoning before a long answer (Ollama's ``reasoning`` field)."""
    record = json.loads(V1_CHAT_BODY)
    text = 'She wrote "finish_reason": "stop" in the log. ' * 1_500  # escaped: not a field
    if reasoning:
        message = {"role": "assistant", "content": text, "reasoning": "Let me think. " * 5_000}
        record["choices"] = [{"index": 0, "message": message, "finish_reason": "length"}]
    else:
        record["choices"] = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": r}
            for i, r in enumerate(("stop", "length", "tool_calls"))
        ]
    return json.dumps(record, separators=(",", ":")).encode()


@pytest.mark.parametrize("reasoning", [False, True], ids=["three-choices", "reasoning"])
@pytest.mark.parametrize("piece", [65536, 977, 23])
def test_long_unstreamed_choices_read_by_search(
    server: RawServer, spans: Spans, reasoning: bool, piece: int
) -> None:
    """A long /v1 answer whose two ends do not make one JSON text still gives its id,
    every choice's finish reason and its reasoning, however the bytes are cut."""
    body = _long_choices_body(reasoning)
    path = f"/choices{piece}{int(reasoning)}/v1/chat/completions"
    server.replies[path] = Reply(pieces_of(body, piece), {"content-type": "application/json"})
    with httpx.Client(base_url=server.url) as client:
        reply = client.post(path, json={**CHAT, "stream": False})
    assert body == reply.content
    attrs = spans.one().attributes
    assert (
        "chatcmpl-417",
        ("length",) if reasoning else ("stop", "length", "tool_calls"),
        26,
        10,
        "ollama",
    ) == (
        attrs["gen_ai.response.id"],
        attrs["gen_ai.response.finish_reasons"],
        attrs["gen_ai.usage.input_tokens"],
        attrs["gen_ai.usage.output_tokens"],
        attrs["gen_ai.provider.name"],
    )
    assert attrs.get("otel_llm.response.thinking", False) is reasoning
