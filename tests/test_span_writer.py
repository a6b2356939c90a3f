"""The lean span path (``_span_writer``) hands processors what ``Tracer.start_span`` would.

Every other test runs on the lean path (conftest's provider has one simple processor);
these compare it with the SDK's own path on the same calls, and check where it must
step aside: a processor that acts in ``on_start``, span attribute limits, samplers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
)

import otel_llm
from otel_llm import _state
from otel_llm._span_writer import PendingSpan, SpanWriter
from otel_llm.testing.mock_ollama import MockOllama, Scenario

BODY = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    scenarios = {"broken": Scenario(status=500)}
    with MockOllama(scenarios, models=("llama3.2", "broken")) as server:
        yield server


class Started(SpanProcessor):
    """A processor that acts in ``on_start`` (as logfire's or a baggage processor does)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span.name)
        span.set_attribute("started.by", "processor")


def _calls(mock: MockOllama) -> list[dict[str, Any]]:
    """One unstreamed call, one stream, one HTTP error; the traceparent each sent."""
    sent: list[dict[str, Any]] = []

    def hook(request: httpx.Request) -> None:
        sent.append({"traceparent": request.headers.get("traceparent")})

    with httpx.Client(base_url=mock.url, event_hooks={"request": [hook]}) as client:
        client.post("/api/chat", json={**BODY, "stream": False})
        with client.stream("POST", "/api/chat", json={**BODY, "stream": True}) as response:
            for _ in response.iter_bytes():
                pass
        client.post("/api/chat", json={**BODY, "model": "broken", "stream": False})
    return sent


def _traced(
    mock: MockOllama, provider: TracerProvider, exporter: InMemorySpanExporter
) -> tuple[list[ReadableSpan], list[dict[str, Any]], bool]:
    otel_llm.instrument(tracer_provider=provider, metrics=False)
    try:
        lean = _state.current is not None and _state.current.spans.lean
        sent = _calls(mock)
    finally:
        otel_llm.uninstrument()
    return list(exporter.get_finished_spans()), sent, lean


def _provider(*extra: SpanProcessor, **kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**kwargs)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for processor in extra:
        provider.add_span_processor(processor)
    return provider, exporter


def _view(span: ReadableSpan) -> dict[str, Any]:
    """What a backend receives of a span, less ids, times and the processor's own mark."""
    attributes = dict(span.attributes or {})
    attributes.pop("started.by", None)
    for volatile in ("gen_ai.response.time_to_first_chunk", "ollama.wait.duration"):
        attributes.pop(volatile, None)
    for key in [k for k in attributes if k.startswith("ollama.context.")]:
        del attributes[key]  # known once a background lookup returns (test_insight.py)
    return {
        "name": span.name,
        "kind": span.kind,
        "status": (span.status.status_code, span.status.description),
        "attributes": attributes,
        "events": list(span.events),
        "links": list(span.links),
        "resource": dict(span.resource.attributes),
        "scope": span.instrumentation_scope,
        "sampled": span.context.trace_flags.sampled if span.context else None,
        "dropped": span.dropped_attributes,
    }


def test_lean_path_gives_processors_what_the_sdk_path_gives(mock: MockOllama) -> None:
    lean_provider, lean_exporter = _provider()
    sdk_started = Started()
    sdk_provider, sdk_exporter = _provider(sdk_started)
    lean_spans, lean_sent, lean = _traced(mock, lean_provider, lean_exporter)
    sdk_spans, _, on_sdk_path = _traced(mock, sdk_provider, sdk_exporter)
    assert (lean, on_sdk_path) == (True, False)
    assert sdk_started.started == [s.name for s in sdk_spans]  # on_start saw every span
    assert [_view(s) for s in lean_spans] == [_view(s) for s in sdk_spans]
    assert [s.status.status_code for s in lean_spans] == [
        StatusCode.UNSET,
        StatusCode.UNSET,
        StatusCode.ERROR,
    ]
    for span, sent in zip(lean_spans, lean_sent, strict=True):
        ctx = span.context
        assert ctx is not None and span.kind is SpanKind.CLIENT
        assert ctx.trace_flags.sampled
        assert (
            sent["traceparent"]
            == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
        )
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time < span.end_time
        assert isinstance(span.attributes, type(sdk_spans[0].attributes))  # read-only view


def test_processor_added_later_switches_to_the_sdk_path(mock: MockOllama) -> None:
    provider, exporter = _provider()
    otel_llm.instrument(tracer_provider=provider, metrics=False)
    try:
        writer = _state.current.spans  # type: ignore[union-attr]
        assert writer.lean
        started = Started()
        provider.add_span_processor(started)
        assert not writer.lean
        _calls(mock)
    finally:
        otel_llm.uninstrument()
    spans = exporter.get_finished_spans()
    assert started.started == [s.name for s in spans] and len(spans) == 3
    assert {(s.attributes or {}).get("started.by") for s in spans} == {"processor"}


class Batched(BatchSpanProcessor):
    """A subclass that changes only what it exports through."""


def test_batch_processor_and_its_subclasses_stay_lean(mock: MockOllama) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(Batched(exporter))
    spans, _, lean = _traced(mock, provider, exporter)
    assert lean and spans == []  # not exported before a flush, as with any batched span
    provider.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["chat llama3.2"] * 2 + [
        "chat broken"
    ]


def test_attribute_limits_take_the_sdk_path(mock: MockOllama) -> None:
    provider, exporter = _provider(span_limits=SpanLimits(max_span_attribute_length=5))
    spans, _, lean = _traced(mock, provider, exporter)
    assert not lean
    assert spans[0].attributes is not None
    assert spans[0].attributes["gen_ai.request.model"] == "llama"  # the SDK truncated it


class RecordOnly(Sampler):
    """Records without sampling, and adds an attribute of its own."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        attributes = dict(args[4] if len(args) > 4 else kwargs.get("attributes") or {})
        attributes["sampler.note"] = "kept"
        return SamplingResult(Decision.RECORD_ONLY, attributes)

    def get_description(self) -> str:
        return "RecordOnly"


class Every(SpanProcessor):
    """Quiet on start; keeps every ended span, sampled or not."""

    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


@pytest.mark.parametrize("sampler", [ALWAYS_OFF, RecordOnly(), ParentBased(RecordOnly())])
def test_sampler_decisions_as_the_sdk(mock: MockOllama, sampler: Sampler) -> None:
    every = Every()
    provider, exporter = _provider(every, sampler=sampler)
    spans, sent, lean = _traced(mock, provider, exporter)
    assert lean and spans == []  # the simple processor exports sampled spans only
    assert [int(s["traceparent"][-2:], 16) & 1 for s in sent] == [0] * 3  # not sampled
    if sampler is ALWAYS_OFF:
        assert every.ended == []
    else:
        assert len(every.ended) == 3
        assert {(s.attributes or {}).get("sampler.note") for s in every.ended} == {"kept"}
        assert not any(s.context.trace_flags.sampled for s in every.ended if s.context)


def _parents() -> list[Context | None]:
    """No parent, and local and remote parents, sampled or not, with a trace state."""
    state = TraceState([("vendor", "x")])
    contexts: list[Context | None] = [None]
    for remote in (False, True):
        for flags in (TraceFlags.SAMPLED, TraceFlags.DEFAULT):
            parent = SpanContext(0xABC, 0xDEF, remote, TraceFlags(flags), state)
            contexts.append(trace.set_span_in_context(NonRecordingSpan(parent)))
    return contexts


@pytest.mark.parametrize("sampler", [DEFAULT_ON, ALWAYS_ON])
def test_default_samplers_answered_as_they_would(sampler: Sampler) -> None:
    """The SDK's default samplers are not asked, only answered for: the same decision,
    flags, trace state and attributes as the sampler itself gives through ``start_span``."""
    provider, _ = _provider(sampler=sampler)
    tracer = provider.get_tracer("test")
    writer = SpanWriter(tracer)
    assert writer.lean
    for ctx in _parents():
        attrs = {"gen_ai.operation.name": "chat"}
        ours = writer.start("chat m", dict(attrs), 0, ctx)
        sdk = tracer.start_span("chat m", ctx, kind=SpanKind.CLIENT, attributes=attrs)
        ours_ctx, sdk_ctx = ours.get_span_context(), sdk.get_span_context()
        assert ours.is_recording() == sdk.is_recording()
        assert ours_ctx.trace_flags == sdk_ctx.trace_flags
        assert ours_ctx.trace_state == sdk_ctx.trace_state
        if ctx is not None:
            assert ours_ctx.trace_id == sdk_ctx.trace_id == 0xABC
        if sdk.is_recording():
            assert isinstance(sdk, Span) and isinstance(ours, PendingSpan)
            assert dict(ours.attributes or {}) == dict(sdk.attributes or {})
        sdk.end()
        ours.end()
    # whether a parent was sampled decides, for DEFAULT_ON; ALWAYS_ON records every span
    recorded = [writer.start("x", {}, 0, ctx).is_recording() for ctx in _parents()]
    assert recorded == ([True, True, False, True, False] if sampler is DEFAULT_ON else [True] * 5)


def test_child_of_the_current_span(mock: MockOllama) -> None:
    provider, exporter = _provider()
    tracer = provider.get_tracer("app")
    otel_llm.instrument(tracer_provider=provider, metrics=False)
    try:
        with (
            tracer.start_as_current_span("handler") as parent,
            httpx.Client(base_url=mock.url) as client,
        ):
            client.post("/api/chat", json={**BODY, "stream": False})
    finally:
        otel_llm.uninstrument()
    ours, handler = exporter.get_finished_spans()
    assert handler.name == "handler" and ours.parent is not None and ours.context is not None
    assert ours.parent.span_id == parent.get_span_context().span_id
    assert ours.context.trace_id == parent.get_span_context().trace_id


def test_pending_span_api() -> None:
    """Whatever calls the span API on our span mid-call lands in the written span."""
    provider, exporter = _provider()
    writer = SpanWriter(provider.get_tracer("t"))
    span = writer.start("chat m", {"a": 1}, 1_000)
    assert span.is_recording()
    span.set_attribute("b", [1, 2])
    span.set_attributes({"c": "x"})
    span.update_name("chat n")
    span.add_event("e", {"k": "v"}, timestamp=1_500)
    span.set_status(StatusCode.ERROR, "bad")
    span.set_status(StatusCode.UNSET)  # ignored, as in the SDK
    span.end(2_000)
    span.end(3_000)  # a second end is ignored
    span.set_attribute("late", True)  # after the end: ignored
    assert not span.is_recording()
    (written,) = exporter.get_finished_spans()
    assert (written.name, dict(written.attributes or {})) == (
        "chat n",
        {"a": 1, "b": (1, 2), "c": "x"},
    )
    assert (written.start_time, written.end_time) == (1_000, 2_000)
    assert (written.status.status_code, written.status.description) == (StatusCode.ERROR, "bad")
    assert [(e.name, dict(e.attributes or {}), e.timestamp) for e in written.events] == [
        ("e", {"k": "v"}, 1_500)
    ]
    # Every ReadableSpan field is there: an exporter that prints the span reads them all.
    printed = json.loads(written.to_json())
    assert (printed["name"], printed["kind"], printed["parent_id"]) == (
        "chat n",
        "SpanKind.CLIENT",
        None,
    )
    assert (printed["links"], printed["resource"]["attributes"]) == (
        [],
        dict(provider.resource.attributes),
    )
