"""The aiohttp front-end against the mock Ollama (and a fixed-bytes server) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

import otel_llm
from otel_llm import _patch_aiohttp
from otel_llm.testing import CaptureLLM
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.static_server import Route, StaticServer
from tests.wire import CHAT_BODY, NDJSON_CHAT, SSE_CHAT

pytestmark = pytest.mark.anyio

PROMPT = {"model": "llama3.2", "prompt": "Say hello to me"}
MESSAGES = [{"role": "user", "content": "Say hello to me"}]
ENDED_BY = "otel_llm.stream.ended_by"

Reader = Callable[[aiohttp.ClientResponse], Awaitable[Any]]


async def _lines(resp: aiohttp.ClientResponse) -> list[bytes]:
    return [line async for line in resp.content]


async def _readline(resp: aiohttp.ClientResponse) -> list[bytes]:
    out = []
    while line := await resp.content.readline():
        out.append(line)
    return out


async def _chunked(resp: aiohttp.ClientResponse) -> bytes:
    # read(5) hands out up to 5 bytes of what has arrived: boundaries follow timing.
    return b"".join([chunk async for chunk in resp.content.iter_chunked(5)])


async def _any(resp: aiohttp.ClientResponse) -> bytes:
    return b"".join([chunk async for chunk in resp.content.iter_any()])


async def _chunks(resp: aiohttp.ClientResponse) -> bytes:
    return b"".join([chunk async for chunk, _end in resp.content.iter_chunks()])


async def _read(resp: aiohttp.ClientResponse) -> bytes:
    return await resp.read()


async def _text(resp: aiohttp.ClientResponse) -> str:
    return await resp.text()


READERS: dict[str, Reader] = {
    "async-for": _lines,
    "readline": _readline,
    "iter_chunked": _chunked,
    "iter_any": _any,
    "iter_chunks": _chunks,
    "read": _read,
    "text": _text,
}


async def _post(url: str, body: dict[str, Any], read: Reader) -> Any:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        return await read(resp)


@pytest.fixture
def fixed() -> Iterator[StaticServer]:
    routes = {
        "/api/chat": Route(NDJSON_CHAT),
        "/gz/api/chat": Route(NDJSON_CHAT, gzip=True),
        "/v1/chat/completions": Route(SSE_CHAT, content_type="text/event-stream"),
        "/once/api/chat": Route(location="/api/chat"),
        "/cut/api/chat": Route(NDJSON_CHAT[:2], cut=True),
        "/nonstream/api/chat": Route([CHAT_BODY], content_type="application/json"),
    }
    with StaticServer(routes) as server:
        yield server


class TestAiohttpOllama:
    async def test_generate_async_for(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """async for line in resp.content: one span, tokens of the done line, ended by it."""
        lines = await _post(f"{mock_ollama.url}/api/generate", PROMPT, _lines)
        done = json.loads(lines[-1])
        call = llm_trace.llm_calls().one()
        assert ("text_completion", "llama3.2", "ollama") == (
            call.operation,
            call.model,
            call.provider,
        )
        assert (done["prompt_eval_count"], done["eval_count"], "final") == (
            call.input_tokens,
            call.output_tokens,
            call.get(ENDED_BY),
        )
        llm_trace.assert_metrics_consistent()

    async def test_chat_json(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """resp.json() of a non-streamed /api/chat."""

        async def as_json(resp: aiohttp.ClientResponse) -> Any:
            return await resp.json()

        body = {"model": "llama3.2", "messages": MESSAGES, "stream": False}
        reply = await _post(f"{mock_ollama.url}/api/chat", body, as_json)
        call = llm_trace.llm_calls().one()
        assert ("chat", reply["prompt_eval_count"], reply["eval_count"]) == (
            call.operation,
            call.input_tokens,
            call.output_tokens,
        )
        llm_trace.assert_metrics_consistent()

    async def test_openai_sse(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """/v1/chat/completions as SSE read with iter_chunked: usage from the last event."""
        body = {
            "model": "llama3.2",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        raw = await _post(f"{mock_ollama.url}/v1/chat/completions", body, _chunked)
        events = [json.loads(e[6:]) for e in raw.split(b"\n\n") if e.startswith(b"data: {")]
        usage = events[-1]["usage"]
        call = llm_trace.llm_calls().one()
        assert (usage["prompt_tokens"], usage["completion_tokens"], "ollama") == (
            call.input_tokens,
            call.output_tokens,
            call.provider,
        )

    async def test_embeddings(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """/api/embed with data= bytes: an embeddings span with the reply's facts."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{mock_ollama.url}/api/embed", data=b'{"model": "all-minilm", "input": "a b"}'
            ) as resp,
        ):
            reply = json.loads(await resp.read())
        call = llm_trace.llm_calls().one()
        assert ("embeddings", "all-minilm", reply["prompt_eval_count"]) == (
            call.operation,
            call.model,
            call.input_tokens,
        )

    async def test_early_release(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """Leaving async-with after one line ends the call once, by close (release)."""

        async def first(resp: aiohttp.ClientResponse) -> bytes:
            return await resp.content.readline()

        await _post(f"{mock_ollama.url}/api/generate", PROMPT, first)
        assert "close" == llm_trace.llm_calls().one().get(ENDED_BY)
        llm_trace.assert_metrics_consistent()

    @pytest.mark.mock_ollama(scenarios={"slow": Scenario(chunk_delay=0.2, chunks=20)})
    async def test_cancelled(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """A task cancelled while reading: CancelledError reaches it, the span ends with it."""
        started = asyncio.Event()

        async def reading(resp: aiohttp.ClientResponse) -> None:
            async for _line in resp.content:
                started.set()

        body = {"model": "slow", "prompt": "hi"}
        task = asyncio.ensure_future(_post(f"{mock_ollama.url}/api/generate", body, reading))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        call = llm_trace.llm_calls().one()
        assert ("CancelledError", "error") == (call.error_type, call.get(ENDED_BY))

    async def test_garbage_collected(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """A response dropped unread ends its call when collected (its connection gone)."""
        async with aiohttp.ClientSession() as session:
            resp = await session.post(f"{mock_ollama.url}/api/generate", json=PROMPT)
            del resp
        gc.collect()
        assert "gc" == llm_trace.llm_calls().one().get(ENDED_BY)

    async def test_traceparent(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """The server receives our span's traceparent; the app's headers object is untouched."""
        mine = {"X-App": "1"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{mock_ollama.url}/api/generate", json={**PROMPT, "stream": False}, headers=mine
            ) as resp,
        ):
            await resp.read()
        call = llm_trace.llm_calls().one()
        sent = mock_ollama.requests[-1].headers
        assert (["00", call.trace_id, call.span_id], "1") == (
            sent["traceparent"].split("-")[:3],
            sent["x-app"],
        )
        assert {"X-App": "1"} == mine

    @pytest.mark.mock_ollama(scenarios={"down": Scenario(status=500)})
    async def test_http_error(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """A 500 reaches the app unchanged; the span says 500."""

        async def status(resp: aiohttp.ClientResponse) -> int:
            await resp.read()
            return resp.status

        body = {"model": "down", "messages": MESSAGES}
        assert 500 == await _post(f"{mock_ollama.url}/api/chat", body, status)
        assert "500" == llm_trace.llm_calls().one().error_type

    async def test_connection_refused(self, llm_trace: CaptureLLM) -> None:
        """The app gets aiohttp's own error; the span ends with it."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(aiohttp.ClientConnectorError):
            await _post(f"http://127.0.0.1:{port}/api/chat", {"model": "m"}, _read)
        assert "ClientConnectorError" == llm_trace.llm_calls().one().error_type

    async def test_not_an_llm_call(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """GET /api/tags is left alone."""
        async with aiohttp.ClientSession() as session, session.get(mock_ollama.url + "/api/tags"):
            pass
        llm_trace.spans().assert_none()


class TestAiohttpBytes:
    @pytest.mark.parametrize("how", sorted(READERS))
    @pytest.mark.parametrize("path", ["/api/chat", "/gz/api/chat", "/v1/chat/completions"])
    async def test_identical_with_and_without_us(
        self, fixed: StaticServer, collected: Any, path: str, how: str
    ) -> None:
        """Every read API gives the same values either way; each call ends with its tokens."""
        body = {"model": "qwen3:8b", "messages": MESSAGES, "stream": True}
        plain = await _post(fixed.url + path, body, READERS[how])
        otel_llm.instrument()
        assert plain == await _post(fixed.url + path, body, READERS[how])
        attrs = collected.one().attributes
        assert (True, "final") == (
            attrs["gen_ai.usage.output_tokens"] in (41, 10),
            attrs[ENDED_BY],
        )

    async def test_readexactly_and_read_nowait(self, fixed: StaticServer, collected: Any) -> None:
        """readexactly then read_nowait are fed in order: the done line still parses."""
        otel_llm.instrument()
        total = len(b"".join(NDJSON_CHAT))

        async def mixed(resp: aiohttp.ClientResponse) -> bytes:
            head = await resp.content.readexactly(10)
            rest = await resp.content.readexactly(total - 20)
            await asyncio.sleep(0)
            tail = await resp.content.read()
            return head + rest + tail + resp.content.read_nowait()

        assert b"".join(NDJSON_CHAT) == await _post(fixed.url + "/api/chat", {}, mixed)
        assert 41 == collected.one().attributes["gen_ai.usage.output_tokens"]

    async def test_cut_mid_body(self, fixed: StaticServer, collected: Any) -> None:
        """A connection dropped mid-chunk: the same aiohttp exception either way; span ends."""

        async def read() -> str:
            body = {"model": "qwen3:8b", "stream": True}
            try:
                await _post(fixed.url + "/cut/api/chat", body, _lines)
            except aiohttp.ClientError as exc:
                return type(exc).__name__
            return "no error"

        plain = await read()
        otel_llm.instrument()
        assert (plain, plain, "error") == (
            await read(),
            collected.one().attributes["error.type"],
            collected.one().attributes[ENDED_BY],
        )

    async def test_redirect_is_one_span(self, fixed: StaticServer, collected: Any) -> None:
        """A 307 followed inside _request stays one call, with the final reply's tokens."""
        otel_llm.instrument()
        await _post(fixed.url + "/once/api/chat", {"model": "qwen3:8b"}, _read)
        span = collected.one()
        assert 41 == span.attributes["gen_ai.usage.output_tokens"]
        parents = {h["traceparent"].split("-")[2] for h in fixed.received}
        assert {f"{span.context.span_id:016x}"} == parents

    async def test_non_streamed_body(self, fixed: StaticServer, collected: Any) -> None:
        """A single JSON body: ended at the end of the body with its tokens."""
        otel_llm.instrument()
        await _post(fixed.url + "/nonstream/api/chat", {"model": "llama3.2"}, _read)
        attrs = collected.one().attributes
        assert (26, 10) == (
            attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"],
        )


class TestAiohttpUnderHttpx:
    async def test_one_span(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """httpx on the aiohttp transport (LiteLLM, httpx-aiohttp): httpx's span only."""
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            reply = (
                await client.post(
                    f"{mock_ollama.url}/api/chat",
                    json={"model": "llama3.2", "messages": MESSAGES, "stream": False},
                )
            ).json()
        call = llm_trace.llm_calls().one()
        assert (reply["eval_count"], 1) == (call.output_tokens, len(llm_trace.spans()))
        llm_trace.assert_metrics_consistent()


class TestAiohttpPatch:
    def test_uninstrument_restores(self, collected: Any) -> None:
        """instrument() wraps, uninstrument() puts the very same functions back."""
        session, response = aiohttp.ClientSession, aiohttp.ClientResponse
        before = (session._request, response.release, response.close)
        otel_llm.instrument()
        assert _patch_aiohttp.patched()
        assert before[0] is not session._request
        otel_llm.uninstrument()
        assert before == (session._request, response.release, response.close)

    def test_not_installed_is_a_no_op(
        self, collected: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without aiohttp, instrument() patches the rest without error."""
        monkeypatch.setitem(sys.modules, "aiohttp", None)
        otel_llm.instrument()
        assert not _patch_aiohttp.patched()
