"""Every way a response can end closes its span exactly once, with the right status."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest
from opentelemetry.trace import StatusCode

from tests.conftest import Spans
from tests.wire import NDJSON_CHAT, SSE_CHAT

MODULES = [pytest.param(httpx, id="httpx"), pytest.param(httpx2, id="httpx2")]
CHAT = {"model": "qwen3:8b", "messages": [{"role": "user", "content": "Weather in Tokyo?"}]}


def sync_client(module: Any, chunks: Callable[[], Iterator[bytes]], ctype: str) -> Any:
    def handler(request: Any) -> Any:
        return module.Response(200, headers={"content-type": ctype}, content=chunks())

    return module.Client(transport=module.MockTransport(handler), base_url="http://127.0.0.1:11434")


def async_client(module: Any, chunks: Callable[[], AsyncIterator[bytes]], ctype: str) -> Any:
    async def handler(request: Any) -> Any:
        return module.Response(200, headers={"content-type": ctype}, content=chunks())

    return module.AsyncClient(
        transport=module.MockTransport(handler), base_url="http://127.0.0.1:11434"
    )


def _achunks(chunks: list[bytes]) -> Callable[[], AsyncIterator[bytes]]:
    """A fresh async iterator over ``chunks`` per request."""

    async def gen() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return gen


def no_double_end(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if "already ended" in r.getMessage().lower()]


@pytest.mark.parametrize("module", MODULES)
class TestSyncEndings:
    def test_final_record(
        self, module: ModuleType, spans: Spans, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The done:true record ends the span, OK, with the server's counts."""
        client = sync_client(module, lambda: iter(NDJSON_CHAT), "application/x-ndjson")
        with client.stream("POST", "/api/chat", json=CHAT) as response:
            body = b"".join(response.iter_raw())
        assert b"".join(NDJSON_CHAT) == body
        span = spans.one()
        assert StatusCode.UNSET == span.status.status_code
        assert "final" == span.attributes["otel_llm.stream.ended_by"]
        assert 173 == span.attributes["gen_ai.usage.input_tokens"]
        assert 41 == span.attributes["gen_ai.usage.output_tokens"]
        assert ("get_weather",) == span.attributes["otel_llm.tool_calls.names"]
        assert ("call_k3v9x0qa",) == span.attributes["otel_llm.tool_calls.ids"]
        assert span.attributes["otel_llm.response.thinking"] is True
        assert 4 == span.attributes["otel_llm.stream.chunks"]
        no_double_end(caplog)

    def test_exhausted_without_final(self, module: ModuleType, spans: Spans) -> None:
        """A stream that ends with no done record is an error (stream_incomplete)."""
        client = sync_client(module, lambda: iter(NDJSON_CHAT[:2]), "application/x-ndjson")
        with client.stream("POST", "/api/chat", json=CHAT) as response:
            assert b"".join(NDJSON_CHAT[:2]) == response.read()
        span = spans.one()
        assert StatusCode.ERROR == span.status.status_code
        assert "stream_incomplete" == span.attributes["error.type"]
        assert "exhausted" == span.attributes["otel_llm.stream.ended_by"]
        assert ("error",) == span.attributes["gen_ai.response.finish_reasons"]

    def test_early_break_then_close(self, module: ModuleType, spans: Spans) -> None:
        """Leaving the stream early ends the span at close, not as an error."""
        client = sync_client(module, lambda: iter(NDJSON_CHAT), "application/x-ndjson")
        with client.stream("POST", "/api/chat", json=CHAT) as response:
            for _line in response.iter_lines():
                break
        span = spans.one()
        assert StatusCode.UNSET == span.status.status_code
        assert "close" == span.attributes["otel_llm.stream.ended_by"]
        assert "gen_ai.usage.input_tokens" not in span.attributes

    def test_error_while_reading(self, module: ModuleType, spans: Spans) -> None:
        """The app sees the transport's exception; the span records its class."""

        def broken() -> Iterator[bytes]:
            yield NDJSON_CHAT[0]
            raise module.ReadError("connection reset")

        client = sync_client(module, broken, "application/x-ndjson")
        with (
            pytest.raises(module.ReadError, match="connection reset"),
            client.stream("POST", "/api/chat", json=CHAT) as response,
        ):
            response.read()
        span = spans.one()
        assert StatusCode.ERROR == span.status.status_code
        assert "ReadError" == span.attributes["error.type"]
        assert "error" == span.attributes["otel_llm.stream.ended_by"]

    def test_garbage_collected(self, module: ModuleType, spans: Spans) -> None:
        """A response dropped unread still ends its span when collected."""
        client = sync_client(module, lambda: iter(NDJSON_CHAT), "application/x-ndjson")
        request = client.build_request("POST", "/api/chat", json=CHAT)
        response = client.send(request, stream=True)
        assert not spans.llm()
        del response
        gc.collect()
        span = spans.one()
        assert "gc" == span.attributes["otel_llm.stream.ended_by"]

    def test_mid_stream_error_line(self, module: ModuleType, spans: Spans) -> None:
        """Ollama's {"error": ...} line after a 200 is an error span (stream_error)."""
        chunks = [NDJSON_CHAT[1], b'{"error":"an error was encountered while running the model"}\n']
        client = sync_client(module, lambda: iter(chunks), "application/x-ndjson")
        with client.stream("POST", "/api/chat", json=CHAT) as response:
            assert b"".join(chunks) == response.read()
        span = spans.one()
        assert "stream_error" == span.attributes["error.type"]
        assert "an error was encountered while running the model" == span.status.description

    def test_sse_done_ends_span(self, module: ModuleType, spans: Spans) -> None:
        """[DONE] ends a /v1 stream; usage is read from the usage chunk."""
        client = sync_client(module, lambda: iter(SSE_CHAT), "text/event-stream")
        body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert b"".join(SSE_CHAT) == response.read()
        span = spans.one()
        assert "final" == span.attributes["otel_llm.stream.ended_by"]
        assert "chatcmpl-82" == span.attributes["gen_ai.response.id"]
        assert 26 == span.attributes["gen_ai.usage.input_tokens"]
        assert ("stop",) == span.attributes["gen_ai.response.finish_reasons"]
        assert 4 == span.attributes["otel_llm.stream.chunks"]

    def test_sse_cut_without_done(self, module: ModuleType, spans: Spans) -> None:
        """A /v1 stream that stops before [DONE] is an error (Ollama's mid-stream failures)."""
        client = sync_client(module, lambda: iter(SSE_CHAT[:2]), "text/event-stream")
        with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
            r.read()
        span = spans.one()
        assert "stream_incomplete" == span.attributes["error.type"]
        assert span.attributes["otel_llm.usage.missing"] is True


@pytest.mark.anyio
@pytest.mark.parametrize("module", MODULES)
class TestAsyncEndings:
    async def test_final_record(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: the done record ends the span."""

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in NDJSON_CHAT:
                yield chunk

        client = async_client(module, chunks, "application/x-ndjson")
        async with client.stream("POST", "/api/chat", json=CHAT) as response:
            body = b"".join([c async for c in response.aiter_raw()])
        assert b"".join(NDJSON_CHAT) == body
        span = spans.one()
        assert StatusCode.UNSET == span.status.status_code
        assert "final" == span.attributes["otel_llm.stream.ended_by"]
        assert (173, 41) == (
            span.attributes["gen_ai.usage.input_tokens"],
            span.attributes["gen_ai.usage.output_tokens"],
        )
        assert ("get_weather",) == span.attributes["otel_llm.tool_calls.names"]
        assert 4 == span.attributes["otel_llm.stream.chunks"]

    async def test_exhausted_without_final(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: a stream that ends with no done record is stream_incomplete."""
        client = async_client(module, _achunks(NDJSON_CHAT[:2]), "application/x-ndjson")
        async with client.stream("POST", "/api/chat", json=CHAT) as response:
            assert b"".join(NDJSON_CHAT[:2]) == await response.aread()
        span = spans.one()
        assert StatusCode.ERROR == span.status.status_code
        assert "stream_incomplete" == span.attributes["error.type"]
        assert "exhausted" == span.attributes["otel_llm.stream.ended_by"]
        assert ("error",) == span.attributes["gen_ai.response.finish_reasons"]

    async def test_garbage_collected(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: a response dropped unread still ends its span when collected."""
        client = async_client(module, _achunks(NDJSON_CHAT), "application/x-ndjson")
        request = client.build_request("POST", "/api/chat", json=CHAT)
        response = await client.send(request, stream=True)
        assert not spans.llm()
        del response
        gc.collect()
        assert "gc" == spans.one().attributes["otel_llm.stream.ended_by"]

    async def test_mid_stream_error_line(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: Ollama's {"error": ...} line after a 200 is stream_error."""
        chunks = [NDJSON_CHAT[1], b'{"error":"an error was encountered while running the model"}\n']
        client = async_client(module, _achunks(chunks), "application/x-ndjson")
        async with client.stream("POST", "/api/chat", json=CHAT) as response:
            assert b"".join(chunks) == await response.aread()
        span = spans.one()
        assert "stream_error" == span.attributes["error.type"]
        assert "an error was encountered while running the model" == span.status.description

    async def test_sse_done_ends_span(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: [DONE] ends a /v1 stream; usage is read from the usage chunk."""
        client = async_client(module, _achunks(SSE_CHAT), "text/event-stream")
        body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert b"".join(SSE_CHAT) == await response.aread()
        span = spans.one()
        assert "final" == span.attributes["otel_llm.stream.ended_by"]
        assert "chatcmpl-82" == span.attributes["gen_ai.response.id"]
        assert 26 == span.attributes["gen_ai.usage.input_tokens"]
        assert ("stop",) == span.attributes["gen_ai.response.finish_reasons"]

    async def test_sse_cut_without_done(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: a /v1 stream that stops before [DONE] is stream_incomplete."""
        client = async_client(module, _achunks(SSE_CHAT[:2]), "text/event-stream")
        async with client.stream(
            "POST", "/v1/chat/completions", json={**CHAT, "stream": True}
        ) as response:
            await response.aread()
        span = spans.one()
        assert "stream_incomplete" == span.attributes["error.type"]
        assert span.attributes["otel_llm.usage.missing"] is True

    async def test_early_aclose(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: aclose after an early break ends the span once."""

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in NDJSON_CHAT:
                yield chunk

        client = async_client(module, chunks, "application/x-ndjson")
        async with client.stream("POST", "/api/chat", json=CHAT) as response:
            async for _line in response.aiter_lines():
                break
        assert "close" == spans.one().attributes["otel_llm.stream.ended_by"]

    async def test_cancelled_mid_stream(self, module: ModuleType, spans: Spans) -> None:
        """A task cancelled while waiting for the next chunk ends the span as cancelled."""
        started = asyncio.Event()

        async def chunks() -> AsyncIterator[bytes]:
            yield NDJSON_CHAT[0]
            started.set()
            await asyncio.sleep(30)
            yield NDJSON_CHAT[1]

        client = async_client(module, chunks, "application/x-ndjson")

        async def consume() -> None:
            async with client.stream("POST", "/api/chat", json=CHAT) as response:
                async for _chunk in response.aiter_raw():
                    pass

        task = asyncio.create_task(consume())
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        span = spans.one()
        assert StatusCode.ERROR == span.status.status_code
        assert "CancelledError" == span.attributes["error.type"]

    async def test_error_while_reading(self, module: ModuleType, spans: Spans) -> None:
        """Async twin: the app sees the same exception."""

        async def chunks() -> AsyncIterator[bytes]:
            yield NDJSON_CHAT[0]
            raise module.RemoteProtocolError("peer closed connection")

        client = async_client(module, chunks, "application/x-ndjson")
        with pytest.raises(module.RemoteProtocolError):
            async with client.stream("POST", "/api/chat", json=CHAT) as response:
                await response.aread()
        assert "RemoteProtocolError" == spans.one().attributes["error.type"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("module", MODULES)
def test_connection_refused(module: ModuleType, spans: Spans) -> None:
    """A refused connection raises as usual and records the exception class."""
    port = _closed_port()
    with module.Client() as client, pytest.raises(module.ConnectError):
        client.post(f"http://127.0.0.1:{port}/api/chat", json=CHAT)
    span = spans.one()
    assert "ConnectError" == span.attributes["error.type"]
    assert StatusCode.ERROR == span.status.status_code


@pytest.mark.parametrize("module", MODULES)
def test_http_error_status(module: ModuleType, spans: Spans) -> None:
    """HTTP >= 400: the app gets the response untouched; error.type is the status code."""
    body = b'{"error":"model \'llama9\' not found"}'

    def handler(request: Any) -> Any:
        return module.Response(404, headers={"content-type": "application/json"}, content=body)

    client = module.Client(
        transport=module.MockTransport(handler), base_url="http://127.0.0.1:11434"
    )
    response = client.post("/api/chat", json={**CHAT, "model": "llama9"})
    assert 404 == response.status_code
    assert body == response.content
    span = spans.one()
    assert "404" == span.attributes["error.type"]
    assert "model 'llama9' not found" == span.status.description


def test_internal_failure_is_logged_once_and_call_goes_on(
    spans: Spans, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in our parser never reaches the app: bytes flow, one warning is logged."""
    from otel_llm.adapters import ollama

    def explode(self: Any, data: bytes) -> bool:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(ollama.NdjsonStream, "feed", explode)
    client = sync_client(httpx, lambda: iter(NDJSON_CHAT), "application/x-ndjson")
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        for _ in range(3):
            with client.stream("POST", "/api/chat", json=CHAT) as response:
                assert b"".join(NDJSON_CHAT) == response.read()
    assert 3 == len(spans.llm())
    warnings = [r for r in caplog.records if r.name == "otel_llm"]
    assert 1 == len(warnings)


def test_fifty_thousand_chunk_stream_memory_flat(spans: Spans) -> None:
    """Observing a 50,000-chunk stream holds no chunk: traced memory stays flat."""
    import tracemalloc

    line = NDJSON_CHAT[1]

    def chunks() -> Iterator[bytes]:
        for _ in range(50_000):
            yield bytes(line)  # a fresh object each time, as a socket read would be
        yield NDJSON_CHAT[3]

    client = sync_client(httpx, chunks, "application/x-ndjson")
    tracemalloc.start()
    try:
        with client.stream("POST", "/api/chat", json=CHAT) as response:
            for i, _ in enumerate(response.iter_raw()):
                if i == 1_000:
                    tracemalloc.reset_peak()
                    base = tracemalloc.get_traced_memory()[0]
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - base < 64 * 1024
    attrs = spans.one().attributes
    assert (50_001, "final") == (attrs["otel_llm.stream.chunks"], attrs["otel_llm.stream.ended_by"])


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_wsgi_and_asgi_transports(kind: str, spans: Spans) -> None:
    """Apps mounted with httpx's WSGI/ASGI transports are traced like any server."""
    body = NDJSON_CHAT[3]

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "application/x-ndjson")])
        return [body]

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-ndjson")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    if kind == "wsgi":
        with httpx.Client(transport=httpx.WSGITransport(app=wsgi_app)) as client:
            assert body == client.post("http://ollama.local/api/chat", json=CHAT).content
    else:

        async def run() -> bytes:
            transport = httpx.ASGITransport(app=asgi_app)
            async with httpx.AsyncClient(transport=transport) as client:
                return (await client.post("http://ollama.local/api/chat", json=CHAT)).content

        assert body == asyncio.run(run())
    attrs = spans.one().attributes
    assert (173, "ollama.local") == (attrs["gen_ai.usage.input_tokens"], attrs["server.address"])


# --- the steady state: ordinary records counted by the observer --------------------------

_TOKENS = 40
STREAMED = {**CHAT, "stream": True}


def _ndjson_records() -> list[bytes]:
    """Thinking, then ordinary records with a tool call among them, then the final one."""
    ordinary = [
        b'{"model":"qwen3:8b","created_at":"2025-11-03T14:05:40.1Z","message":'
        b'{"role":"assistant","content":"tok%d"},"done":false}\n' % i
        for i in range(_TOKENS)
    ]
    return [NDJSON_CHAT[0], *ordinary[:25], NDJSON_CHAT[2], *ordinary[25:], NDJSON_CHAT[3]]


def _sse_records() -> list[bytes]:
    first, ordinary, *ending = SSE_CHAT
    return [first, *[ordinary.replace(b'"!"', b'"tok%d"' % i) for i in range(_TOKENS)], *ending]


def _chunkings(records: list[bytes]) -> dict[str, list[bytes]]:
    body = b"".join(records)
    return {
        "one record per chunk": records,
        "two records per chunk": [b"".join(records[i : i + 2]) for i in range(0, len(records), 2)],
        "cut inside records": [body[i : i + 97] for i in range(0, len(body), 97)],
        "cut after each newline but one": [
            piece for record in records for piece in (record[:-1], record[-1:])
        ],
    }


_STREAMS = [
    pytest.param("/api/chat", "application/x-ndjson", _ndjson_records(), id="ndjson"),
    pytest.param("/v1/chat/completions", "text/event-stream", _sse_records(), id="sse"),
]


def _parser_class(path: str) -> type:
    from otel_llm.adapters.ollama import NdjsonStream
    from otel_llm.adapters.openai_compat import SseStream

    return NdjsonStream if path == "/api/chat" else SseStream


def _counting_feeds(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[int]:
    calls = [0]
    feed = cls.feed

    def counted(self: Any, data: bytes) -> bool:
        calls[0] += 1
        return bool(feed(self, data))

    monkeypatch.setattr(cls, "feed", counted)
    return calls


def _stream_attributes(spans: Spans) -> dict[str, Any]:
    span = spans.one()
    spans.clear()
    assert StatusCode.UNSET == span.status.status_code
    assert "final" == span.attributes["otel_llm.stream.ended_by"]
    timed = ("duration", "time_to_first")
    return {k: v for k, v in span.attributes.items() if not any(t in k for t in timed)}


def _assert_steady_counting(
    read: Callable[[list[bytes]], bytes], records: list[bytes], spans: Spans, feeds: list[int]
) -> None:
    """Every chunking of ``records`` read through ``read`` gives the span the whole body
    gives; one record per chunk feeds the parser only the records that are not ordinary."""
    body = b"".join(records)
    assert body == read([body])
    whole = _stream_attributes(spans)
    events = len(records) - (1 if records[-1] == b"data: [DONE]\n\n" else 0)
    assert events == whole["otel_llm.stream.chunks"]
    for name, chunks in _chunkings(records).items():
        feeds[0] = 0
        assert body == read(chunks), name
        assert whole == _stream_attributes(spans), name
        if name == "one record per chunk":
            assert feeds[0] <= 5, feeds[0]  # first records, the tool call, the ending


@pytest.mark.parametrize(("path", "ctype", "records"), _STREAMS)
def test_steady_records_counted_as_the_parser_counts(
    path: str,
    ctype: str,
    records: list[bytes],
    spans: Spans,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The observer counts an ordinary record itself (``Steady``): every chunking of the
    same stream gives the span the parser gives it when fed the whole body at once."""
    feeds = _counting_feeds(monkeypatch, _parser_class(path))

    def read(chunks: list[bytes]) -> bytes:
        client = sync_client(httpx, lambda: iter(chunks), ctype)
        with client.stream("POST", path, json=STREAMED) as response:
            return b"".join(response.iter_raw())

    _assert_steady_counting(read, records, spans, feeds)


@pytest.mark.parametrize(("path", "ctype", "records"), _STREAMS)
def test_steady_records_counted_as_the_parser_counts_async(
    path: str,
    ctype: str,
    records: list[bytes],
    spans: Spans,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Async twin of ``test_steady_records_counted_as_the_parser_counts``."""
    feeds = _counting_feeds(monkeypatch, _parser_class(path))

    async def aread(chunks: list[bytes]) -> bytes:
        client = async_client(httpx, _achunks(chunks), ctype)
        async with client, client.stream("POST", path, json=STREAMED) as response:
            return b"".join([part async for part in response.aiter_raw()])

    _assert_steady_counting(lambda chunks: asyncio.run(aread(chunks)), records, spans, feeds)
