"""The requests front-end against the mock Ollama (and a fixed-bytes server) on 127.0.0.1."""

from __future__ import annotations

import gc
import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import otel_llm
from otel_llm import _patch_requests
from otel_llm.testing import CaptureLLM
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.static_server import Route, StaticServer
from tests.wire import CHAT_BODY, NDJSON_CHAT, SSE_CHAT

PROMPT = {"model": "llama3.2", "prompt": "Say hello to me"}
MESSAGES = [{"role": "user", "content": "Say hello to me"}]
ENDED_BY = "otel_llm.stream.ended_by"


def _last_record(lines: list[bytes]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(lines[-1])
    return record


def _sse_usage(lines: list[bytes]) -> dict[str, Any]:
    events = [json.loads(line[6:]) for line in lines if line.startswith(b"data: {")]
    usage: dict[str, Any] = events[-1]["usage"]
    return usage


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


class TestRequestsOllama:
    def test_generate_stream_iter_lines(
        self, mock_ollama: MockOllama, llm_trace: CaptureLLM
    ) -> None:
        """stream=True + iter_lines: one span, tokens as sent, ended by the done line."""
        with requests.post(f"{mock_ollama.url}/api/generate", json=PROMPT, stream=True) as r:
            lines = list(r.iter_lines())
        done = _last_record(lines)
        call = llm_trace.llm_calls().one()
        assert ("text_completion", "llama3.2", "ollama") == (
            call.operation,
            call.model,
            call.provider,
        )
        assert (done["prompt_eval_count"], done["eval_count"]) == (
            call.input_tokens,
            call.output_tokens,
        )
        assert "final" == call.get(ENDED_BY)
        llm_trace.assert_metrics_consistent()

    def test_generate_not_streamed(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """A plain requests.post + .json(): one span with the reply's token counts."""
        reply = requests.post(
            f"{mock_ollama.url}/api/generate", json={**PROMPT, "stream": False}
        ).json()
        call = llm_trace.llm_calls().one()
        assert (reply["prompt_eval_count"], reply["eval_count"]) == (
            call.input_tokens,
            call.output_tokens,
        )
        llm_trace.assert_metrics_consistent()

    def test_chat_session(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """/api/chat through a Session made before instrument(): the class patch reaches it."""
        otel_llm.uninstrument()
        session = requests.Session()
        otel_llm.instrument(ollama_hosts=[mock_ollama.host])
        reply = session.post(
            f"{mock_ollama.url}/api/chat",
            json={"model": "llama3.2", "messages": MESSAGES, "stream": False},
        ).json()
        call = llm_trace.llm_calls().one()
        assert ("chat", reply["eval_count"]) == (call.operation, call.output_tokens)

    def test_openai_sse(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """/v1/chat/completions streamed as SSE: usage from the last event, ended by [DONE]."""
        body = {
            "model": "llama3.2",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        r = requests.post(f"{mock_ollama.url}/v1/chat/completions", json=body, stream=True)
        usage = _sse_usage(list(r.iter_lines()))
        call = llm_trace.llm_calls().one()
        assert (usage["prompt_tokens"], usage["completion_tokens"], "ollama") == (
            call.input_tokens,
            call.output_tokens,
            call.provider,
        )
        llm_trace.assert_metrics_consistent()

    def test_embeddings(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """/api/embed: an embeddings span with the reply's dimension and input tokens."""
        reply = requests.post(
            f"{mock_ollama.url}/api/embed", json={"model": "all-minilm", "input": ["a b", "c"]}
        ).json()
        call = llm_trace.llm_calls().one()
        assert ("embeddings", reply["prompt_eval_count"], len(reply["embeddings"][0])) == (
            call.operation,
            call.input_tokens,
            call.get("gen_ai.embeddings.dimension.count"),
        )

    def test_early_close(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """Leaving the with-block after one line ends the call once, by close."""
        with requests.post(f"{mock_ollama.url}/api/generate", json=PROMPT, stream=True) as r:
            for _line in r.iter_lines():
                break
        call = llm_trace.llm_calls().one()
        assert "close" == call.get(ENDED_BY)
        llm_trace.assert_metrics_consistent()

    def test_close_before_reading(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """A streamed response closed unread ends its call by close."""
        r = requests.post(f"{mock_ollama.url}/api/generate", json=PROMPT, stream=True)
        r.close()
        assert "close" == llm_trace.llm_calls().one().get(ENDED_BY)

    def test_garbage_collected(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """A streamed response dropped unread ends its call when collected."""
        r = requests.post(f"{mock_ollama.url}/api/generate", json=PROMPT, stream=True)
        del r
        gc.collect()
        assert "gc" == llm_trace.llm_calls().one().get(ENDED_BY)

    def test_traceparent(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """The server receives our span's traceparent."""
        requests.post(f"{mock_ollama.url}/api/generate", json={**PROMPT, "stream": False})
        call = llm_trace.llm_calls().one()
        sent = mock_ollama.requests[-1].headers["traceparent"]
        assert ["00", call.trace_id, call.span_id] == sent.split("-")[:3]

    @pytest.mark.mock_ollama(scenarios={"down": Scenario(status=500)})
    def test_http_error(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """A 500 reaches the app unchanged; the span says 500."""
        r = requests.post(
            f"{mock_ollama.url}/api/chat", json={"model": "down", "messages": MESSAGES}
        )
        assert 500 == r.status_code
        assert "500" == llm_trace.llm_calls().one().error_type

    def test_connection_refused(self, llm_trace: CaptureLLM) -> None:
        """The app gets requests' own ConnectionError; the span ends with it."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(requests.ConnectionError):
            requests.post(f"http://127.0.0.1:{port}/api/chat", json={"model": "m"})
        assert "ConnectionError" == llm_trace.llm_calls().one().error_type

    def test_not_an_llm_call(self, mock_ollama: MockOllama, llm_trace: CaptureLLM) -> None:
        """GET /api/tags is left alone."""
        assert 200 == requests.get(f"{mock_ollama.url}/api/tags").status_code
        llm_trace.spans().assert_none()


class TestRequestsBytes:
    @pytest.mark.parametrize(
        "path", ["/api/chat", "/gz/api/chat", "/v1/chat/completions", "/nonstream/api/chat"]
    )
    def test_identical_with_and_without_us(
        self, fixed: StaticServer, collected: Any, path: str
    ) -> None:
        """content, iter_content and iter_lines(decode_unicode) give the same values either way."""

        def read() -> tuple[bytes, list[bytes], list[Any]]:
            body = {"model": "qwen3:8b", "messages": MESSAGES}
            whole = requests.post(fixed.url + path, json=body).content
            with requests.post(fixed.url + path, json=body, stream=True) as r:
                pieces = list(r.iter_content(7))
            with requests.post(fixed.url + path, json=body, stream=True) as r:
                texts = list(r.iter_lines(decode_unicode=True))
            return whole, pieces, texts

        plain = read()
        otel_llm.instrument()
        assert plain == read()
        assert 3 == len(collected.llm())

    def test_cut_mid_body(self, fixed: StaticServer, collected: Any) -> None:
        """A connection dropped mid-chunk: the same requests exception either way; span ends."""

        def read() -> str:
            body = {"model": "qwen3:8b", "stream": True}
            with requests.post(fixed.url + "/cut/api/chat", json=body, stream=True) as r:
                try:
                    list(r.iter_lines())
                except requests.RequestException as exc:
                    return type(exc).__name__
            return "no error"

        plain = read()
        otel_llm.instrument()
        assert (plain, plain, "error") == (
            read(),
            collected.one().attributes["error.type"],
            collected.one().attributes[ENDED_BY],
        )

    def test_gzip_observed_decoded(self, fixed: StaticServer, collected: Any) -> None:
        """A gzip body is parsed after urllib3 decodes it: tokens of the done line."""
        otel_llm.instrument()
        lines = requests.post(fixed.url + "/gz/api/chat", json={"model": "qwen3:8b"}).content
        assert NDJSON_CHAT == lines.splitlines(keepends=True)
        attrs = collected.one().attributes
        assert (173, 41) == (
            attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"],
        )

    def test_redirect_is_one_span(self, fixed: StaticServer, collected: Any) -> None:
        """A 307 hop inside Session.send stays one call, with the final reply's tokens."""
        otel_llm.instrument()
        r = requests.post(fixed.url + "/once/api/chat", json={"model": "qwen3:8b"})
        assert (307, 200) == (r.history[0].status_code, r.status_code)
        span = collected.one()
        assert 41 == span.attributes["gen_ai.usage.output_tokens"]
        # the hop and the final request both carried our span's traceparent
        parents = {h["traceparent"].split("-")[2] for h in fixed.received}
        assert {f"{span.context.span_id:016x}"} == parents

    def test_hook_reads_body(self, fixed: StaticServer, collected: Any) -> None:
        """A response hook that reads the body inside send: the call still gets its tokens."""
        otel_llm.instrument()

        def hook(r: requests.Response, **kwargs: Any) -> None:
            r.content  # noqa: B018

        requests.post(fixed.url + "/api/chat", json={"model": "qwen3:8b"}, hooks={"response": hook})
        assert 41 == collected.one().attributes["gen_ai.usage.output_tokens"]


class TestRequestsPatch:
    def test_uninstrument_restores(self, collected: Any) -> None:
        """instrument() wraps, uninstrument() puts the very same functions back."""
        before = (requests.Session.send, requests.Response.iter_content, requests.Response.close)
        otel_llm.instrument()
        assert _patch_requests.patched()
        assert before != (requests.Session.send, requests.Response.iter_content)
        otel_llm.uninstrument()
        after = (requests.Session.send, requests.Response.iter_content, requests.Response.close)
        assert before == after

    def test_not_installed_is_a_no_op(
        self, collected: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without requests, instrument() patches httpx and nothing else, without error."""
        monkeypatch.setitem(sys.modules, "requests", None)
        otel_llm.instrument()
        assert not _patch_requests.patched()
