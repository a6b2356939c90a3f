"""One call, one count: our span inside an SDK's own GenAI span (otel_llm/_sdk_span.py)."""

from __future__ import annotations

import httpx
import pytest
import requests
from opentelemetry import trace

import otel_llm
from otel_llm.testing import CaptureLLM
from otel_llm.testing.mock_ollama import MockOllama

BODY = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}
NESTED = "otel_llm.nested_in_sdk_span"
SDK_ATTRS = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "ollama"}


def _sdk_call(url: str, client: str) -> None:
    """What an SDK instrumentation does: its own inference span around the HTTP call."""
    tracer = trace.get_tracer("some-sdk")
    with tracer.start_as_current_span("chat llama3.2", attributes=SDK_ATTRS):
        if client == "requests":
            requests.post(f"{url}/api/chat", json=BODY).json()
        else:
            httpx.post(f"{url}/api/chat", json=BODY).json()


@pytest.mark.parametrize("client", ["requests", "httpx"])
class TestNestPolicy:
    def test_nested_span_counted_once(
        self, mock_ollama: MockOllama, llm_trace: CaptureLLM, client: str
    ) -> None:
        """Default: our span nests under the SDK's, is marked, and records no metrics."""
        _sdk_call(mock_ollama.url, client)
        sdk = llm_trace.llm_calls().one()
        ours = llm_trace.spans(name="chat llama3.2", attributes={NESTED: True}).one()
        assert ("some-sdk", sdk.span_id) == (
            sdk.record.scope,
            ours.parent.span_id if ours.parent else None,
        )
        assert 0 == llm_trace.metric_count("gen_ai.client.operation.duration")
        llm_trace.assert_metrics_consistent()

    def test_ignore_policy_counts_twice(
        self,
        mock_ollama: MockOllama,
        llm_trace: CaptureLLM,
        client: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """OTEL_LLM_SDK_SPANS=ignore: the old behaviour, two calls and our metrics too."""
        monkeypatch.setenv("OTEL_LLM_SDK_SPANS", "ignore")
        otel_llm.uninstrument()
        otel_llm.instrument(
            meter_provider=llm_trace.meter_provider, ollama_hosts=[mock_ollama.host]
        )
        _sdk_call(mock_ollama.url, client)
        assert 2 == len(llm_trace.llm_calls())
        assert 1 == llm_trace.metric_count("gen_ai.client.operation.duration")

    def test_no_sdk_span(self, mock_ollama: MockOllama, llm_trace: CaptureLLM, client: str) -> None:
        """A non-GenAI parent span changes nothing: one call, counted by us."""
        with trace.get_tracer("app").start_as_current_span("handler"):
            if client == "requests":
                requests.post(f"{mock_ollama.url}/api/chat", json=BODY)
            else:
                httpx.post(f"{mock_ollama.url}/api/chat", json=BODY)
        call = llm_trace.llm_calls().one()
        assert (None, 1) == (
            call.get(NESTED),
            llm_trace.metric_count("gen_ai.client.operation.duration"),
        )
