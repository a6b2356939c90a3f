"""A span the sampler drops costs no attribute work, and its call still counts in metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

import otel_llm
from otel_llm import _content, _span
from otel_llm.testing.mock_ollama import MockOllama


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama(models=("llama3.2",)) as server:
        yield server


def _run(
    mock: MockOllama, sampler: Sampler, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, dict[str, int], int]:
    """(spans exported, calls to the attribute builders, duration count) for two calls."""
    counted = {"response_attributes": 0, "encode": 0}

    def counting(module: Any, name: str) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counting(_span, "response_attributes")
    counting(_content, "encode")
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=sampler)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    otel_llm.instrument(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        capture_content=True,
    )
    try:
        body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=mock.url) as client:
            client.post("/api/chat", json={**body, "stream": False})
            with client.stream("POST", "/api/chat", json={**body, "stream": True}) as r:
                for _ in r.iter_bytes():
                    pass
    finally:
        otel_llm.uninstrument()
    data = reader.get_metrics_data()
    count = sum(
        p.count  # type: ignore[union-attr,misc]
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "gen_ai.client.operation.duration"
        for p in m.data.data_points
    )
    return len(exporter.get_finished_spans()), counted, count


def test_dropped_span_computes_no_attributes(
    mock: MockOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (0, {"response_attributes": 0, "encode": 0}, 2) == _run(mock, ALWAYS_OFF, monkeypatch)


def test_sampled_span_gets_them(mock: MockOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the same calls, sampled, build both (content capture is on)."""
    spans, counted, count = _run(mock, ALWAYS_ON, monkeypatch)
    assert (2, 2, 2) == (spans, counted["response_attributes"], count)
    assert counted["encode"] >= 2  # the prompt of each call, and the answers
