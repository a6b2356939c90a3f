"""Real clients (ollama, openai on httpx2 and on httpx, raw httpx/httpx2) against the mock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import ollama
import openai
import pytest
from opentelemetry.trace import StatusCode

import otel_llm
from otel_llm.testing.mock_ollama import MockOllama, Scenario, ToolCall
from tests.conftest import Spans

REPLY = "Hello there friend"  # 3 tokens by the mock's rule
MESSAGES = [{"role": "user", "content": "Say hello to me"}]  # 4 prompt tokens
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    scenarios = {
        "qwen3:8b": Scenario(
            reply="Sunny",
            thinking="Let me think",
            tool_calls=[ToolCall("get_weather", {"city": "Tokyo"})],
        ),
        "slow": Scenario(reply=REPLY, ttft=0.3, chunk_delay=0.05),
        "broken": Scenario(reply=REPLY, error_after=2),
        "down": Scenario(status=500, error_message="runner crashed"),
    }
    server = MockOllama(
        scenarios, default=Scenario(reply=REPLY), models=["llama3.2", "all-minilm", "slow"]
    )
    with server:
        yield server


@pytest.fixture
def traced(mock: MockOllama, collected: Spans, monkeypatch: pytest.MonkeyPatch) -> Spans:
    monkeypatch.setenv("OLLAMA_HOST", mock.host)
    otel_llm.instrument()
    return collected


class TestOllamaClient:
    def test_chat(self, mock: MockOllama, traced: Spans) -> None:
        """Non-streaming chat: exact tokens, Ollama timings, OK status."""
        reply = ollama.Client(host=mock.url).chat(model="llama3.2", messages=MESSAGES)
        assert REPLY == reply.message.content
        span = traced.one()
        attrs = span.attributes
        assert "chat llama3.2" == span.name
        assert StatusCode.UNSET == span.status.status_code
        assert (4, 3) == (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"])
        assert "gen_ai.request.stream" not in attrs
        assert pytest.approx(0.03) == attrs["ollama.eval_duration"]
        assert pytest.approx(100.0) == attrs["ollama.decode.tokens_per_second"]
        assert mock.port == attrs["server.port"]

    def test_chat_stream(self, mock: MockOllama, traced: Spans) -> None:
        """Streaming chat: every chunk observed, ended by the done record."""
        parts = list(
            ollama.Client(host=mock.url).chat(model="llama3.2", messages=MESSAGES, stream=True)
        )
        assert REPLY == "".join(p.message.content for p in parts)
        attrs = traced.one().attributes
        assert (True, "final", 4) == (
            attrs["gen_ai.request.stream"],
            attrs["otel_llm.stream.ended_by"],
            attrs["otel_llm.stream.chunks"],
        )
        assert 3 == attrs["gen_ai.usage.output_tokens"]

    def test_async_chat_stream(self, mock: MockOllama, traced: Spans) -> None:
        """The async client, streaming."""

        async def run() -> str:
            client = ollama.AsyncClient(host=mock.url)
            stream = await client.chat(model="llama3.2", messages=MESSAGES, stream=True)
            return "".join([p.message.content async for p in stream])

        assert REPLY == asyncio.run(run())
        assert 3 == traced.one().attributes["gen_ai.usage.output_tokens"]

    def test_generate_embed_embeddings(self, mock: MockOllama, traced: Spans) -> None:
        """generate → text_completion; embed and the legacy embeddings → embeddings."""
        client = ollama.Client(host=mock.url)
        client.generate(model="llama3.2", prompt="Why is the sky blue?")
        client.embed(model="all-minilm", input=["one two", "three"])
        client.embeddings(model="all-minilm", prompt="four five")
        names = [s.name for s in traced.llm()]
        assert [
            "text_completion llama3.2",
            "embeddings all-minilm",
            "embeddings all-minilm",
        ] == names
        embed = traced.llm()[1].attributes
        assert (3, 8) == (
            embed["gen_ai.usage.input_tokens"],
            embed["gen_ai.embeddings.dimension.count"],
        )

    def test_tool_call_and_thinking(self, mock: MockOllama, traced: Spans) -> None:
        """A streamed tool call and thinking show up on the span."""
        mock.models.append("qwen3:8b")
        stream = ollama.Client(host=mock.url).chat(
            model="qwen3:8b", messages=MESSAGES, tools=[WEATHER], think=True, stream=True
        )
        calls = [c for part in stream for c in part.message.tool_calls or []]
        assert ["get_weather"] == [c.function.name for c in calls]
        attrs = traced.one().attributes
        assert ("get_weather",) == attrs["otel_llm.tool_calls.names"]
        assert attrs["otel_llm.response.thinking"] is True

    def test_unknown_model(self, mock: MockOllama, traced: Spans) -> None:
        """404: the client raises as usual, the span says 404."""
        with pytest.raises(ollama.ResponseError) as info:
            ollama.Client(host=mock.url).chat(model="llama9", messages=MESSAGES)
        assert 404 == info.value.status_code
        span = traced.one()
        assert ("404", StatusCode.ERROR) == (span.attributes["error.type"], span.status.status_code)

    def test_mid_stream_error(self, mock: MockOllama, traced: Spans) -> None:
        """A mid-stream error line: ResponseError for the app, stream_error on the span."""
        mock.models.append("broken")
        with pytest.raises(ollama.ResponseError):
            for _ in ollama.Client(host=mock.url).chat(
                model="broken", messages=MESSAGES, stream=True
            ):
                pass
        assert "stream_error" == traced.one().attributes["error.type"]

    def test_time_to_first_chunk(self, mock: MockOllama, traced: Spans) -> None:
        """TTFC and duration follow the server's delays (generous bounds)."""
        for _ in ollama.Client(host=mock.url).generate(model="slow", prompt="hi", stream=True):
            pass
        span = traced.one()
        ttfc = float(span.attributes["gen_ai.response.time_to_first_chunk"])  # type: ignore[arg-type]
        duration = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        assert 0.3 <= ttfc < 2.0
        assert ttfc + 0.1 <= duration < 4.0  # 3 more chunks 50 ms apart


class TestOpenAIClient:
    def client(self, mock: MockOllama, **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=mock.url + "/v1", api_key="sk-never-recorded", **kw)

    def test_chat_on_httpx2(self, mock: MockOllama, traced: Spans) -> None:
        """openai >= 3 sends through httpx2: labelled ollama, usage from the body."""
        reply = self.client(mock).chat.completions.create(model="llama3.2", messages=MESSAGES)  # type: ignore[arg-type]
        span = traced.one()
        assert REPLY == reply.choices[0].message.content
        assert ("ollama", 4, 3) == (
            span.attributes["gen_ai.provider.name"],
            span.attributes["gen_ai.usage.input_tokens"],
            span.attributes["gen_ai.usage.output_tokens"],
        )
        assert str(span.attributes["gen_ai.response.id"]).startswith("chatcmpl-")
        assert "sk-never-recorded" not in repr(dict(span.attributes))

    def test_stream_with_usage(self, mock: MockOllama, traced: Spans) -> None:
        """include_usage: counts from the usage chunk; openai closes at [DONE]."""
        stream = self.client(mock).chat.completions.create(
            model="llama3.2",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert REPLY == text
        attrs = traced.one().attributes
        assert (4, 3, "final") == (
            attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"],
            attrs["otel_llm.stream.ended_by"],
        )

    def test_stream_without_usage(self, mock: MockOllama, traced: Spans) -> None:
        """No include_usage: no token counts, and an attribute that says so."""
        stream = self.client(mock).chat.completions.create(
            model="llama3.2",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
        )
        for _ in stream:
            pass
        attrs = traced.one().attributes
        assert attrs["otel_llm.usage.missing"] is True
        assert "gen_ai.usage.output_tokens" not in attrs
        assert ("stop",) == attrs["gen_ai.response.finish_reasons"]

    def test_async_stream(self, mock: MockOllama, traced: Spans) -> None:
        """AsyncOpenAI on httpx2."""

        async def run() -> None:
            client = openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="x")
            stream = await client.chat.completions.create(
                model="llama3.2",
                messages=MESSAGES,
                stream=True,  # type: ignore[arg-type]
                stream_options={"include_usage": True},
            )
            async for _ in stream:
                pass

        asyncio.run(run())
        assert 3 == traced.one().attributes["gen_ai.usage.output_tokens"]

    def test_legacy_httpx_client(self, mock: MockOllama, traced: Spans) -> None:
        """The escape hatch http_client=httpx.Client() is traced through httpx."""
        client = self.client(mock, http_client=httpx.Client())  # type: ignore[arg-type]
        client.embeddings.create(model="all-minilm", input=["a b c"])
        attrs = traced.one().attributes
        assert ("embeddings", 3) == (
            attrs["gen_ai.operation.name"],
            attrs["gen_ai.usage.input_tokens"],
        )

    def test_completions(self, mock: MockOllama, traced: Spans) -> None:
        """/v1/completions → text_completion."""
        self.client(mock).completions.create(model="llama3.2", prompt="Say hello to me")
        span = traced.one()
        assert ("text_completion llama3.2", 3) == (
            span.name,
            span.attributes["gen_ai.usage.output_tokens"],
        )

    def test_not_found(self, mock: MockOllama, traced: Spans) -> None:
        """openai raises NotFoundError; the span records 404."""
        with pytest.raises(openai.NotFoundError):
            self.client(mock).chat.completions.create(model="llama9", messages=MESSAGES)  # type: ignore[arg-type]
        assert "404" == traced.one().attributes["error.type"]

    def test_server_error_retried_each_attempt_a_span(
        self, mock: MockOllama, traced: Spans
    ) -> None:
        """openai retries a 500 twice: each attempt is its own HTTP exchange and span."""
        mock.models.append("down")
        with pytest.raises(openai.InternalServerError):
            self.client(mock, max_retries=2).chat.completions.create(
                model="down",
                messages=MESSAGES,  # type: ignore[arg-type]
            )
        assert ["500", "500", "500"] == [s.attributes["error.type"] for s in traced.llm()]


CREATED = re.compile(rb'"created(_at)?":("[^"]*"|\d+)')


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_raw_bytes_identical(module: Any, mock: MockOllama, collected: Spans) -> None:
    """Raw clients read the same bytes from the real server with and without us."""

    def fetch() -> list[bytes]:
        out = []
        with module.Client(base_url=mock.url) as client:
            for path, body in (
                ("/api/chat", {"model": "llama3.2", "messages": MESSAGES}),
                ("/api/chat", {"model": "llama3.2", "messages": MESSAGES, "stream": False}),
                (
                    "/v1/chat/completions",
                    {"model": "llama3.2", "messages": MESSAGES, "stream": True},
                ),
                ("/api/embed", {"model": "all-minilm", "input": ["x"] * 40}),
            ):
                with client.stream("POST", path, json=body) as response:
                    out.append(CREATED.sub(b"T", b"".join(response.iter_raw())))
        return out

    bare = fetch()
    otel_llm.instrument()
    traced = fetch()
    assert [re.sub(rb"chatcmpl-\d+", b"ID", b) for b in bare] == [
        re.sub(rb"chatcmpl-\d+", b"ID", b) for b in traced
    ]
    assert 4 == len(collected.llm())


def test_observer_twins_match() -> None:
    """The sync and async observers mirror each other: same methods, a-prefixed."""
    from otel_llm._observe import AsyncObservedStream, ObservedStream

    sync = {n for n in vars(ObservedStream) if not n.startswith("__") or n == "__iter__"}
    async_ = {n for n in vars(AsyncObservedStream) if not n.startswith("__") or n == "__aiter__"}
    assert {"__iter__", "close"} == sync
    assert {"__aiter__", "aclose"} == async_
