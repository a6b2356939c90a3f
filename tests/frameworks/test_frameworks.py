"""The framework matrix: real, pinned frameworks against the mock Ollama on 127.0.0.1.

Runs in its own environment (``make frameworks`` builds ``.venv-frameworks`` from
``tests/frameworks/requirements.txt``); the main suite skips this folder. Every test
drives one framework the way its docs show, then ``_check`` pairs each LLM request
the mock received with the span whose id its ``traceparent`` carries: one span per
wire request, with the model asked for, provider ``ollama``, the tokens the mock
sent (its documented counting rule), streams ended, and metrics equal to spans.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from otel_llm.adapters import match
from otel_llm.semconv import MODEL_OPERATIONS
from otel_llm.testing import CaptureLLM
from otel_llm.testing.mock_ollama import MockOllama, Scenario

REPLY = "Hello there friend"
PROMPT_TOKENS = 7
STRUCTURED = '{"name": "Ada", "age": 36}'
CHAT = "llama3.2"
EMBED = "all-minilm"

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.mock_ollama(
        default=Scenario(reply=REPLY, prompt_tokens=PROMPT_TOKENS),
        scenarios={"structured": Scenario(reply=STRUCTURED, prompt_tokens=PROMPT_TOKENS)},
        models=[CHAT, EMBED],
    ),
]


def _tokens(text: str) -> int:
    """The mock's token rule (otel_llm/testing/mock_ollama.py docstring)."""
    return len(re.findall(r"\s*\S+", text))


def _embed_tokens(body: dict[str, Any]) -> int:
    texts = body.get("input", body.get("prompt"))
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    return sum(max(1, _tokens(t)) for t in texts)


def _check(trace: CaptureLLM, mock: MockOllama, expected: int) -> None:
    """One correct span per LLM request the mock received; ``expected`` such requests."""
    # LLM requests: inference and embeddings (a framework's own /api/show is a model operation).
    endpoints = [(r, match(r.method, r.path)) for r in mock.requests]
    wire = [r for r, e in endpoints if e is not None and e.operation not in MODEL_OPERATIONS]
    assert expected == len(wire), [r.path for r in mock.requests]
    spans = {c.span_id: c for c in trace.llm_calls()}
    assert len(wire) == len(spans), sorted(c.name for c in spans.values())
    for request in wire:
        body = json.loads(request.body)
        call = spans[request.headers["traceparent"].split("-")[2]]
        reply = STRUCTURED if body["model"] == "structured" else REPLY
        facts = (call.provider, call.model, call.input_tokens, call.output_tokens)
        if call.operation == "embeddings":
            legacy = request.path == "/api/embeddings"  # answers no token count
            tokens = None if legacy else _embed_tokens(body)
            assert ("ollama", body["model"], tokens, None) == facts
        else:
            v1_stream = request.path.startswith("/v1/") and body.get("stream")
            usage = not v1_stream or (body.get("stream_options") or {}).get("include_usage")
            tokens = (PROMPT_TOKENS, _tokens(reply)) if usage else (None, None)
            assert ("ollama", body["model"], *tokens) == facts
        if call.get("gen_ai.request.stream"):
            assert call.get("otel_llm.stream.ended_by") in ("final", "exhausted")
    trace.assert_metrics_consistent()


MESSAGES = [{"role": "user", "content": "Say hello to me"}]


class TestRaw:
    def test_requests(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """The tutorial pattern: requests.post(stream=True) + iter_lines, and embeddings."""
        import requests

        url = mock_ollama.url
        body = {"model": CHAT, "messages": MESSAGES}
        with requests.post(f"{url}/api/chat", json=body, stream=True) as r:
            lines = [json.loads(line) for line in r.iter_lines()]
        requests.post(f"{url}/api/embed", json={"model": EMBED, "input": "hi there"}).json()
        assert REPLY == "".join(x["message"]["content"] for x in lines)
        _check(llm_trace, mock_ollama, 2)

    def test_aiohttp(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """The async tutorial pattern: aiohttp, async for over resp.content; resp.json()."""
        import aiohttp

        async def main() -> None:
            url = mock_ollama.url
            async with aiohttp.ClientSession() as s:
                body = {"model": CHAT, "prompt": "Say hello"}
                async with s.post(f"{url}/api/generate", json=body) as resp:
                    async for _line in resp.content:
                        pass
                body = {"model": EMBED, "input": ["a", "b c"]}
                async with s.post(f"{url}/api/embed", json=body) as resp:
                    await resp.json()

        asyncio.run(main())
        _check(llm_trace, mock_ollama, 2)


class TestLangchainOllama:
    def test_chat_stream_embed(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """ChatOllama invoke, stream and ainvoke; OllamaEmbeddings."""
        from langchain_ollama import ChatOllama, OllamaEmbeddings

        llm = ChatOllama(model=CHAT, base_url=mock_ollama.url)
        assert REPLY == llm.invoke("Say hello").content
        assert REPLY == "".join(str(c.content) for c in llm.stream("Say hello"))
        asyncio.run(llm.ainvoke("Say hello"))
        OllamaEmbeddings(model=EMBED, base_url=mock_ollama.url).embed_query("hi there")
        _check(llm_trace, mock_ollama, 4)


class TestLangchainCommunityLegacy:
    def test_requests_and_aiohttp(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """The legacy Ollama (requests sync, aiohttp async) and OllamaEmbeddings (requests)."""
        from langchain_community.embeddings.ollama import OllamaEmbeddings
        from langchain_community.llms.ollama import Ollama

        llm = Ollama(model=CHAT, base_url=mock_ollama.url)
        assert REPLY == llm.invoke("Say hello")
        assert REPLY == asyncio.run(llm.ainvoke("Say hello"))
        OllamaEmbeddings(model=EMBED, base_url=mock_ollama.url).embed_query("hi there")
        _check(llm_trace, mock_ollama, 3)


class TestLangchainOpenAI:
    def test_chat_stream_embed(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """ChatOpenAI on Ollama's /v1: invoke, stream with usage, ainvoke; OpenAIEmbeddings."""
        from langchain_openai import ChatOpenAI, OpenAIEmbeddings

        base = f"{mock_ollama.url}/v1"
        llm = ChatOpenAI(model=CHAT, base_url=base, api_key="ollama", stream_usage=True)  # type: ignore[arg-type]
        assert REPLY == llm.invoke("Say hello").content
        assert REPLY == "".join(str(c.content) for c in llm.stream("Say hello"))
        asyncio.run(llm.ainvoke("Say hello"))
        embeddings = OpenAIEmbeddings(
            model=EMBED,
            base_url=base,
            api_key="ollama",
            check_embedding_ctx_length=False,  # type: ignore[arg-type]
        )
        embeddings.embed_query("hi there")
        _check(llm_trace, mock_ollama, 4)


class TestLlamaIndex:
    def test_llm_and_embeddings(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """llama-index Ollama: complete, stream_complete, achat; OllamaEmbedding."""
        from llama_index.core.llms import ChatMessage
        from llama_index.embeddings.ollama import OllamaEmbedding
        from llama_index.llms.ollama import Ollama

        llm = Ollama(model=CHAT, base_url=mock_ollama.url, request_timeout=30)
        assert REPLY == llm.complete("Say hello").text
        assert REPLY == "".join(r.delta or "" for r in llm.stream_complete("Say hello"))
        asyncio.run(llm.achat([ChatMessage(role="user", content="Say hello")]))
        OllamaEmbedding(model_name=EMBED, base_url=mock_ollama.url).get_text_embedding("hi")
        _check(llm_trace, mock_ollama, 4)


class TestPydanticAI:
    def test_run_sync_stream_async(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """pydantic-ai's OpenAI model on Ollama's /v1: run_sync, run, run_stream."""
        from pydantic_ai import Agent
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.ollama import OllamaProvider

        def agent() -> Agent[None, str]:
            # One provider (one cached httpx client) per event loop, as pydantic-ai expects.
            provider = OllamaProvider(base_url=f"{mock_ollama.url}/v1")
            return Agent(OpenAIChatModel(CHAT, provider=provider))

        assert REPLY == agent().run_sync("Say hello").output

        async def main() -> None:
            in_loop = agent()
            await in_loop.run("Say hello")
            async with in_loop.run_stream("Say hello") as run:
                assert REPLY == await run.get_output()

        asyncio.run(main())
        _check(llm_trace, mock_ollama, 3)

    def test_own_instrumentation_on(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """pydantic-ai's own tracing on: its span is the call, ours nests, tokens count once."""
        from pydantic_ai import Agent
        from pydantic_ai.models.instrumented import InstrumentationSettings
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.ollama import OllamaProvider

        provider = OllamaProvider(base_url=f"{mock_ollama.url}/v1")
        settings = InstrumentationSettings(
            tracer_provider=llm_trace.tracer_provider, meter_provider=llm_trace.meter_provider
        )
        agent = Agent(OpenAIChatModel(CHAT, provider=provider))
        Agent.instrument_all(settings)
        try:
            assert REPLY == agent.run_sync("Say hello").output
        finally:
            Agent.instrument_all(False)
        sdk = llm_trace.llm_calls().one()
        ours = llm_trace.spans(attributes={"otel_llm.nested_in_sdk_span": True}).one()
        assert ("pydantic-ai", sdk.span_id) == (
            sdk.record.scope,
            ours.parent.span_id if ours.parent else None,
        )
        assert (PROMPT_TOKENS, _tokens(REPLY)) == (ours.input_tokens, ours.output_tokens)
        # input and output recorded once each, by pydantic-ai; none by us
        assert 2 == llm_trace.metric_count("gen_ai.client.token.usage")


class TestInstructor:
    def test_structured(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """instructor over the openai client in JSON mode: a parsed model, one span."""
        import instructor
        from openai import OpenAI
        from pydantic import BaseModel

        class Person(BaseModel):
            name: str
            age: int

        client = instructor.from_openai(
            OpenAI(base_url=f"{mock_ollama.url}/v1", api_key="ollama"), mode=instructor.Mode.JSON
        )
        person = client.chat.completions.create(
            model="structured", response_model=Person, messages=MESSAGES
        )
        assert ("Ada", 36) == (person.name, person.age)
        _check(llm_trace, mock_ollama, 1)


class TestHaystack:
    def test_generators_and_embedder(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """ollama-haystack: OllamaChatGenerator, plain and streamed; OllamaTextEmbedder."""
        from haystack.dataclasses import ChatMessage
        from haystack_integrations.components.embedders.ollama import OllamaTextEmbedder
        from haystack_integrations.components.generators.ollama import OllamaChatGenerator

        url = mock_ollama.url
        replies = OllamaChatGenerator(model=CHAT, url=url).run([ChatMessage.from_user("Hi")])
        assert REPLY == replies["replies"][0].text
        pieces: list[str] = []
        chat = OllamaChatGenerator(
            model=CHAT, url=url, streaming_callback=lambda c: pieces.append(c.content)
        )
        chat.run([ChatMessage.from_user("Say hello")])
        assert REPLY == "".join(pieces)
        OllamaTextEmbedder(model=EMBED, url=url).run("hi there")
        _check(llm_trace, mock_ollama, 3)


class TestLiteLLM:
    def test_sync_async_stream_embed(
        self, mock_ollama: MockOllama, llm_trace: CaptureLLM, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """litellm ollama/ and ollama_chat/: completion, stream, acompletion, embedding."""
        monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
        import litellm

        url = mock_ollama.url
        reply = litellm.completion(model=f"ollama/{CHAT}", api_base=url, messages=MESSAGES)
        assert REPLY == reply.choices[0].message.content
        stream = litellm.completion(
            model=f"ollama_chat/{CHAT}", api_base=url, messages=MESSAGES, stream=True
        )
        assert REPLY == "".join(c.choices[0].delta.content or "" for c in stream)

        async def main() -> None:
            await litellm.acompletion(model=f"ollama_chat/{CHAT}", api_base=url, messages=MESSAGES)

        asyncio.run(main())
        litellm.embedding(model=f"ollama/{EMBED}", api_base=url, input=["hi there"])
        _check(llm_trace, mock_ollama, 4)


class TestDSPy:
    def test_vendored_transport(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """dspy.LM("ollama_chat/...") over its own socket client: sync and async calls."""
        import dspy

        from otel_llm import _patch_dspy

        assert _patch_dspy.patched(), "this DSPy's vendored lm15 is not in _patch_dspy.TESTED"
        lm = dspy.LM(f"ollama_chat/{CHAT}", api_base=f"{mock_ollama.url}/v1", api_key="ollama")
        assert [REPLY] == lm("Say hello", cache=False)

        async def main() -> list[str]:
            return await lm.acall("Say hello again", cache=False)  # type: ignore[no-any-return]

        assert [REPLY] == asyncio.run(main())
        _check(llm_trace, mock_ollama, 2)

    def test_uninstrument_restores(self, llm_trace: CaptureLLM) -> None:
        """uninstrument() puts the vendored transport's own methods back."""
        from dspy._vendor.lm15.transports import StdlibAsyncTransport, StdlibTransport

        import otel_llm

        assert hasattr(StdlibTransport.stream, "__otel_llm_original__")
        otel_llm.uninstrument()
        wrapped = (StdlibTransport.stream, StdlibAsyncTransport._do_stream)
        assert [False, False] == [hasattr(f, "__otel_llm_original__") for f in wrapped]
