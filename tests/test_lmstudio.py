"""LM Studio's REST API v0 (``adapters/lmstudio.py``), against a real server on 127.0.0.1.

The loopback server answers as LM Studio's documentation shows
(lmstudio.ai/docs/developer/rest/endpoints): OpenAI-shaped bodies plus ``stats``,
``model_info`` and ``runtime``; streams as SSE ``data:`` events ending in ``[DONE]``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

import otel_llm
from tests.conftest import Spans

MODEL = "granite-3.0-2b-instruct"
EMBED_MODEL = "text-embedding-nomic-embed-text-v1.5"
_EXTRAS: dict[str, Any] = {
    "stats": {
        "tokens_per_second": 51.43,
        "time_to_first_token": 0.111,
        "generation_time": 0.954,
        "stop_reason": "eosFound",
    },
    "model_info": {"arch": "granite", "quant": "Q4_K_M", "format": "gguf", "context_length": 4096},
    "runtime": {"name": "llama.cpp-linux", "version": "1.3.0", "supported_formats": ["gguf"]},
}


def _chat(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-i3gkjwthhw96whukek9tz",
        "object": "chat.completion",
        "created": 1731990317,
        "model": model,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Greetings, in rhyme."},
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 53, "total_tokens": 77},
        **_EXTRAS,
    }


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "cmpl-p9rtxv6fky2v9k8jrd8cc",
        "object": "text_completion",
        "created": 1731990488,
        "model": model,
        "choices": [
            {"index": 0, "text": " to find it", "logprobs": None, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
        **_EXTRAS,
    }


def _embeddings(model: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.25, -0.5, 0.125, 0.0], "index": 0}],
        "model": f"{model}@q4_k_m",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


def _stream(model: str, include_usage: bool) -> Iterator[bytes]:
    head = {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1, "model": model}
    for i, piece in enumerate(["Greetings", ", in", " rhyme."]):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        yield b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"
    last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    yield b"data: " + json.dumps({**head, "choices": [last]}).encode() + b"\n\n"
    if include_usage:
        usage = {"prompt_tokens": 24, "completion_tokens": 3, "total_tokens": 27}
        yield b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


class _LMStudio(BaseHTTPRequestHandler):
    """LM Studio's /api/v0 (and its OpenAI-compatible /v1), optionally behind a path prefix."""

    sent: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.removeprefix("/lmstudio")
        route = path.removeprefix("/api/v0").removeprefix("/v1")
        model = body.get("model", MODEL)
        answers = {
            "/chat/completions": _chat,
            "/completions": _completion,
            "/embeddings": _embeddings,
        }
        if route not in answers or path == route:
            self._send(404, b'{"error":"Unexpected endpoint or method."}', "application/json")
            return
        if body.get("stream") is True:
            options = body.get("stream_options") or {}
            frames = b"".join(_stream(model, options.get("include_usage") is True))
            self._send(200, frames, "text/event-stream")
            return
        self._send(200, json.dumps(answers[route](model)).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.sent.append(payload)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LMStudio:
    def __init__(self) -> None:
        handler = type("Handler", (_LMStudio,), {"sent": []})
        self.sent: list[bytes] = handler.sent
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def lmstudio() -> Iterator[LMStudio]:
    server = LMStudio()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def traced(collected: Spans, tracer_provider: TracerProvider) -> Spans:
    otel_llm.instrument(tracer_provider=tracer_provider, metrics=False)
    return collected


CHAT_REQUEST = {"model": MODEL, "messages": [{"role": "user", "content": "Introduce yourself."}]}


class TestLMStudio:
    def test_chat(self, lmstudio: LMStudio, traced: Spans) -> None:
        """/api/v0/chat/completions: provider lm_studio, tokens and finish from the body."""
        response = httpx.post(f"{lmstudio.url}/api/v0/chat/completions", json=CHAT_REQUEST)
        span = traced.one()
        assert lmstudio.sent == [response.content]
        assert f"chat {MODEL}" == span.name
        assert {
            "gen_ai.provider.name": "lm_studio",
            "gen_ai.operation.name": "chat",
            "gen_ai.response.id": "chatcmpl-i3gkjwthhw96whukek9tz",
            "gen_ai.usage.input_tokens": 24,
            "gen_ai.usage.output_tokens": 53,
            "gen_ai.response.finish_reasons": ("stop",),
            "server.port": lmstudio.port,
        }.items() <= dict(span.attributes or {}).items()

    def test_chat_streamed(self, lmstudio: LMStudio, traced: Spans) -> None:
        """A streamed chat with include_usage: the app reads the same bytes; tokens counted."""
        body = {**CHAT_REQUEST, "stream": True, "stream_options": {"include_usage": True}}
        with httpx.stream("POST", f"{lmstudio.url}/api/v0/chat/completions", json=body) as r:
            received = b"".join(r.iter_raw())
        span = traced.one()
        assert lmstudio.sent == [received]
        attrs = dict(span.attributes or {})
        assert ("lm_studio", 24, 3, ("stop",)) == (
            attrs["gen_ai.provider.name"],
            attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"],
            attrs["gen_ai.response.finish_reasons"],
        )

    def test_completion(self, lmstudio: LMStudio, traced: Spans) -> None:
        """/api/v0/completions is a text completion."""
        httpx.post(f"{lmstudio.url}/api/v0/completions", json={"model": MODEL, "prompt": "life"})
        attrs = dict(traced.one().attributes or {})
        assert ("text_completion", "lm_studio", 5, 9) == (
            attrs["gen_ai.operation.name"],
            attrs["gen_ai.provider.name"],
            attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"],
        )

    def test_embeddings(self, lmstudio: LMStudio, traced: Spans) -> None:
        """/api/v0/embeddings: dimension count from the vector, the server's model name."""
        httpx.post(f"{lmstudio.url}/api/v0/embeddings", json={"model": EMBED_MODEL, "input": "x"})
        attrs = dict(traced.one().attributes or {})
        assert ("embeddings", "lm_studio", 4, f"{EMBED_MODEL}@q4_k_m") == (
            attrs["gen_ai.operation.name"],
            attrs["gen_ai.provider.name"],
            attrs["gen_ai.embeddings.dimension.count"],
            attrs["gen_ai.response.model"],
        )

    def test_openai_client_on_api_v0(self, lmstudio: LMStudio, traced: Spans) -> None:
        """The openai SDK pointed at /api/v0 (as LM Studio's docs allow) is traced the same."""
        client = openai.OpenAI(base_url=f"{lmstudio.url}/api/v0", api_key="lm-studio")
        reply = client.chat.completions.create(model=MODEL, messages=CHAT_REQUEST["messages"])
        attrs = dict(traced.one().attributes or {})
        assert ("Greetings, in rhyme.", "lm_studio", 53) == (
            reply.choices[0].message.content,
            attrs["gen_ai.provider.name"],
            attrs["gen_ai.usage.output_tokens"],
        )

    def test_behind_a_path_prefix(self, lmstudio: LMStudio, traced: Spans) -> None:
        """Mounted under /lmstudio by a reverse proxy, the suffix still matches."""
        httpx.post(f"{lmstudio.url}/lmstudio/api/v0/chat/completions", json=CHAT_REQUEST)
        assert "lm_studio" == dict(traced.one().attributes or {})["gen_ai.provider.name"]

    def test_v1_is_labelled_by_host(self, lmstudio: LMStudio, traced: Spans) -> None:
        """Its OpenAI-compatible /v1 is any /v1: the host decides (openai unless configured)."""
        httpx.post(f"{lmstudio.url}/v1/chat/completions", json=CHAT_REQUEST)
        assert "openai" == dict(traced.one().attributes or {})["gen_ai.provider.name"]

    def test_providers_option_wins(
        self, lmstudio: LMStudio, collected: Spans, tracer_provider: TracerProvider
    ) -> None:
        """providers= relabels a server whatever its API implies."""
        otel_llm.instrument(
            tracer_provider=tracer_provider,
            metrics=False,
            providers={f"127.0.0.1:{lmstudio.port}": "my_lab"},
        )
        httpx.post(f"{lmstudio.url}/api/v0/chat/completions", json=CHAT_REQUEST)
        assert "my_lab" == dict(collected.one().attributes or {})["gen_ai.provider.name"]

    def test_models_listing_is_not_a_call(self, lmstudio: LMStudio, traced: Spans) -> None:
        """GET /api/v0/models (and other paths) make no LLM span."""
        httpx.get(f"{lmstudio.url}/api/v0/models")
        assert [] == traced.llm()
