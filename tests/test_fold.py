"""Deferred metrics: the hand-off buffer, folding at collection, and the two fold paths.

The recorder only appends a finished call to a buffer; collection (any reader), a
full buffer and ``uninstrument()`` fold it into the SDK. These tests check that no
measurement is lost or counted twice on any of those paths, that the buffer stays
bounded, and that the SDK fast path writes exactly what the public API would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Counter,
    Histogram,
    MeterProvider,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

import otel_llm
from otel_llm import metrics
from otel_llm._config import Settings
from otel_llm._fold import Batch, Folder
from otel_llm._types import LLMCall
from otel_llm.testing.mock_ollama import MockOllama, Scenario
from tests.conftest import Spans

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"


@pytest.fixture(scope="module")
def mock() -> Iterator[MockOllama]:
    with MockOllama(models=("llama3.2",)) as server:
        server.default = Scenario(load_duration_ns=1_000_000)
        yield server


def _collect(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    return {
        m.name: m
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
    }


def _count(metric: Metric | None) -> int:
    return sum(p.count for p in metric.data.data_points) if metric else 0  # type: ignore[union-attr,misc]


def _chat(mock: MockOllama, stream: bool = False) -> None:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    with httpx.Client(base_url=mock.url) as client:
        if stream:
            with client.stream("POST", "/api/chat", json=body) as response:
                for _ in response.iter_bytes():
                    pass
        else:
            client.post("/api/chat", json=body)


def _span_tokens(spans: list[ReadableSpan]) -> int:
    return sum(
        int(s.attributes.get("gen_ai.usage.input_tokens", 0))  # type: ignore[union-attr,arg-type,misc]
        + int(s.attributes.get("gen_ai.usage.output_tokens", 0))  # type: ignore[union-attr,arg-type]
        for s in spans
    )


@pytest.fixture
def instrumented(
    collected: Spans, tracer_provider: TracerProvider
) -> Iterator[Callable[..., InMemoryMetricReader]]:
    def start(**options: Any) -> InMemoryMetricReader:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        otel_llm.instrument(tracer_provider=tracer_provider, meter_provider=provider, **options)
        return reader

    yield start
    otel_llm.uninstrument()


def test_concurrent_calls_and_collections_lose_nothing(
    mock: MockOllama,
    collected: Spans,
    instrumented: Callable[..., InMemoryMetricReader],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls from many threads, a tiny buffer (folded by the calls themselves) and a
    reader collecting meanwhile: every call is counted once, token sums equal spans'."""
    monkeypatch.setattr(metrics, "BUFFER_LIMIT", 3)
    reader = instrumented()
    stop = threading.Event()

    def collector() -> None:
        while not stop.is_set():
            _collect(reader)  # cumulative: the last one read wins

    def caller(i: int) -> None:
        for n in range(8):
            _chat(mock, stream=(i + n) % 2 == 0)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
    watcher = threading.Thread(target=collector)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    got = _collect(reader)
    spans = collected.llm()
    assert (48, 48) == (len(spans), _count(got.get(DURATION)))
    assert _span_tokens(spans) == sum(p.sum for p in got[TOKENS].data.data_points)  # type: ignore[union-attr,misc]


def test_pending_calls_reach_the_reader_after_uninstrument(
    mock: MockOllama, collected: Spans, instrumented: Callable[..., InMemoryMetricReader]
) -> None:
    """Nothing collected before ``uninstrument()``: its flush hands every call over."""
    reader = instrumented()
    for stream in (False, True, False):
        _chat(mock, stream)
    otel_llm.uninstrument()
    got = _collect(reader)
    assert 3 == _count(got.get(DURATION))
    assert 1 == _count(got.get("gen_ai.client.operation.time_to_first_chunk"))
    assert _span_tokens(collected.llm()) == sum(p.sum for p in got[TOKENS].data.data_points)  # type: ignore[union-attr,misc]


def test_every_reader_gets_each_call_once(
    mock: MockOllama, collected: Spans, tracer_provider: TracerProvider
) -> None:
    """The first reader's collection folds for all readers of the provider."""
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first, second])
    otel_llm.instrument(tracer_provider=tracer_provider, meter_provider=provider)
    try:
        _chat(mock)
        assert 1 == _count(_collect(first).get(DURATION))
        _chat(mock)
        assert 2 == _count(_collect(second).get(DURATION))
        assert 2 == _count(_collect(first).get(DURATION))
    finally:
        otel_llm.uninstrument()


def _call(n: int, span: Any = None, model: str = "llama3.2", error: str | None = None) -> LLMCall:
    return LLMCall(
        operation="chat",
        provider="ollama",
        adapter=cast(Any, None),  # the recorder never reads it
        settings=Settings(),
        server_address="127.0.0.1",
        server_port=11434,
        start_ns=1_000,
        start_wall_ns=1_700_000_000_000_000_000,
        request_model=model,
        response_model=model,
        end_ns=1_000 + (n + 1) * 7_000_000,
        input_tokens=10 + n,
        output_tokens=3 * n,
        total_duration_ns=5_000_000 * (n + 1),
        load_duration_ns=1_000,
        prompt_eval_duration_ns=2_000_000,
        eval_duration_ns=9_000_000,
        stream=n % 2 == 0,
        first_chunk_ns=1_000 + 3_000_000 * (n + 1),
        chunks=n + 2,
        span=span,
        error_type=error,
    )


def test_buffer_is_bounded() -> None:
    """The call that fills the buffer folds it: pending stays under the limit."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    rec = metrics.recorder(meter, False, metrics.ModelCap(), Settings(), limit=4)
    seen = []
    for n in range(10):
        rec(_call(n))
        seen.append(rec.pending)
    assert [1, 2, 3, 0, 1, 2, 3, 0, 1, 2] == seen
    assert 10 == _count(_collect(reader).get(DURATION))
    assert 0 == rec.pending


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, Any], Any]:
    """Every point as comparable data (exemplars by trace, span and value)."""
    out: dict[tuple[str, Any], Any] = {}
    for name, metric in _collect(reader).items():
        for p in metric.data.data_points:
            key = (name, tuple(sorted(dict(p.attributes or {}).items())))
            if isinstance(p, HistogramDataPoint):
                out[key] = (
                    p.count,
                    round(p.sum, 9),
                    list(p.bucket_counts),
                    p.min,
                    p.max,
                    sorted((e.trace_id, e.span_id, e.value) for e in p.exemplars),
                )
            else:
                out[key] = p.value  # type: ignore[union-attr]
    return out


@pytest.mark.parametrize("latest", [False, True])
@pytest.mark.parametrize(
    "setup", ["cumulative", "delta", "view", "always_on", "always_off", "overflow"]
)
def test_fast_fold_writes_what_the_public_api_writes(
    tracer_provider: TracerProvider, latest: bool, setup: str
) -> None:
    """The SDK fast path and ``record``/``add`` give identical points and exemplars:
    with delta temporality, a view that drops attributes, each of the SDK's exemplar
    filters, and a cardinality limit that sends later label sets to the overflow point."""
    tracer = tracer_provider.get_tracer("t")
    spans = [tracer.start_span(f"s{n}") for n in range(12)]
    calls = [
        _call(n, spans[n], model=("a", "b")[n % 2], error="500" if n == 7 else None)
        for n in range(12)
    ]
    results = []
    for fast in (True, False):
        kwargs: dict[str, Any] = {}
        if setup == "delta":
            kwargs["preferred_temporality"] = {
                Histogram: AggregationTemporality.DELTA,
                Counter: AggregationTemporality.DELTA,
            }
        if setup == "overflow":
            kwargs["cardinality_limits"] = {Histogram: 2, Counter: 2}
        reader = InMemoryMetricReader(**kwargs)
        views = (
            [View(instrument_name="*", attribute_keys={"gen_ai.request.model"})]
            if setup == "view"
            else []
        )
        exemplar_filter = {
            "always_on": AlwaysOnExemplarFilter(),
            "always_off": AlwaysOffExemplarFilter(),
        }.get(setup)
        meter = MeterProvider(
            metric_readers=[reader], views=views, exemplar_filter=exemplar_filter
        ).get_meter("t")
        rec = metrics.recorder(meter, latest, metrics.ModelCap(), Settings(), limit=100)
        rec._folder = Folder(meter, fast=fast)
        assert fast == rec._folder.fast
        for call in calls[:6]:
            rec(call)
        first = _points(reader)
        for call in calls[6:]:
            rec(call)
        results.append((first, _points(reader)))
    assert results[0] == results[1]
    assert results[0][0] and results[0][1]
    exemplars = [
        e for point in results[0][1].values() if isinstance(point, tuple) for e in point[5]
    ]
    assert bool(exemplars) == (setup != "always_off")
    if setup == "overflow":
        assert any(("otel.metric.overflow", True) in key[1] for key in results[0][1])


def test_unusable_values_are_dropped_as_record_would() -> None:
    """Negative or non-finite values never reach an aggregation, on either path."""
    for fast in (True, False):
        reader = InMemoryMetricReader()
        meter = MeterProvider(metric_readers=[reader]).get_meter("t")
        histogram = meter.create_histogram("h")
        batch = Batch()
        attrs = {"k": "v"}
        for value in (1.0, -1.0, float("nan"), float("inf"), 2.0):
            batch.add(histogram, value, attrs)
        Folder(meter, fast=fast).fold(batch)
        (point,) = _collect(reader)["h"].data.data_points
        assert (fast, 2, 3.0) == (fast, point.count, point.sum)  # type: ignore[union-attr]


def test_no_sdk_writes_each_call_at_once() -> None:
    """An API-only meter (no collection will come): nothing is kept pending."""
    from opentelemetry.metrics import NoOpMeter

    rec = metrics.recorder(NoOpMeter("t"), False, metrics.ModelCap(), Settings())
    rec(_call(1))
    assert 0 == rec.pending


def test_meter_provider_shutdown_exports_pending_calls(
    mock: MockOllama, collected: Spans, tracer_provider: TracerProvider
) -> None:
    """A periodic reader that never ticked: the provider's shutdown collects one last
    time, and that collection folds every pending call (still instrumented)."""
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        MetricsData,
        PeriodicExportingMetricReader,
    )

    class Kept(MetricExporter):
        def __init__(self) -> None:
            super().__init__()
            self.exported: list[MetricsData] = []

        def export(
            self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            self.exported.append(metrics_data)
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            pass

    exporter = Kept()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    otel_llm.instrument(tracer_provider=tracer_provider, meter_provider=provider)
    try:
        for stream in (False, True, True):
            _chat(mock, stream)
        provider.shutdown()
    finally:
        otel_llm.uninstrument()
    counts = [
        sum(p.count for p in m.data.data_points)  # type: ignore[union-attr,misc]
        for data in exporter.exported
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == DURATION
    ]
    assert [3] == counts
    assert 3 == len(collected.llm())
